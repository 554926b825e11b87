"""Parameter counts of every cascade model in the paper and tiny profiles, built on the meta device
from the profile's YAML config (what `unet=paper`, `autoencoder=paper`, `upsampler=paper` select).

Paper figures are derived from the public Stable Diffusion sizes the configs name, plus each of
drivesim's own additions written out (not read back from the code). The Video LDM paper's appendix
table of its driving-model sizes was not at hand when this was written; README "Profiles: model
sizes and memory" says what that leaves open. Tiny figures are the tensor element counts of the
shipped fp16 checkpoints (drivesim/assets/tiny, tiny-20261128-r6 and -r7; probes in drivesim/assets/eval).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors import safe_open

from drivesim.models.autoencoder import AutoencoderConfig, AutoencoderKL
from drivesim.models.probes import BoxProbe, ClipProbe, ProbeConfig
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.models.temporal_layers import is_temporal
from drivesim.models.unet import VideoUNet, unet_config
from drivesim.models.upsampler import UpsamplerUNet, upsampler_config
from drivesim.utils import DEFAULT_MODEL_DIR

CONFIGS = Path(__file__).resolve().parents[1] / "drivesim" / "configs"
CONTEXT_CHANNELS = 32  # train_prediction.yaml / train_interpolation.yaml


def conv_block(c: int, convs: int = 2, extra: int = 0) -> int:
    """Temporal 3D-conv residual block (DESIGN.md): `convs` (3x1x1) convs, a GroupNorm before each,
    one alpha; the first conv also reads `extra` context channels."""
    return 3 * (c + extra) * c + c + (convs - 1) * (3 * c * c + c) + convs * 2 * c + 1


def attention(c: int) -> int:
    """Temporal self-attention: LayerNorm, qkv without bias, out-projection, one alpha."""
    return 2 * c + 3 * c * c + c * c + c + 1


# --- paper profile -------------------------------------------------------------------------------
SD_VAE = 83_653_863  # Stable Diffusion KL-f8 VAE (diffusers AutoencoderKL of sd-vae-ft-mse), "83.7 M"
SD_VAE_ENCODER = 34_163_664  # its encoder + quant_conv (the other 49.49 M: decoder + post_quant_conv)
# Temporal decoder: a one-conv block after the mid block and each of the 4 up blocks (512, 512, 512,
# 256, 128 channels) and a windowed attention after the mid block.
PAPER_TEMPORAL_DECODER = (
    SD_VAE - SD_VAE_ENCODER + sum(conv_block(c, 1) for c in (512, 512, 512, 256, 128)) + attention(512)
)

SD1_UNET = 859_520_964  # SD 1.x UNet ("860M UNet", SD v1 model card; diffusers UNet2DConditionModel)
# Where drivesim's spatial UNet differs from SD 1.x (counted by layer):
TRANSFORMER_WIDTHS = [320] * 2 + [640] * 2 + [1280] * 2 + [1280] + [1280] * 3 + [640] * 3 + [320] * 3
RESNET_WIDTHS = [320] * 2 + [640] * 2 + [1280] * 4 + [1280] * 2 + [1280] * 6 + [640] * 3 + [320] * 3
TOKENS_1024 = 2 * (1024 - 768) * sum(TRANSFORMER_WIDTHS)  # box/scene tokens 1024 wide (SD 2.x width): K, V
ADAGN = (1280 + 1) * sum(RESNET_WIDTHS)  # scale-shift: each resnet's time projection gives 2C, not C
LAYOUT = 3 * 9 * 320  # 3 rasterised box-layout channels into conv_in
SCENE = (3 + 5) * 1280 + (3 + 5) * 1024  # time of day (2 + null) + crowdedness (4 + null): embedding, tokens
BOXES = 128 + (4 * 2 * 8 + 128) * 128 + 128 + 128 * 1024 + 1024 + 1024  # class, Fourier MLP, null token
PAPER_SPATIAL = SD1_UNET + TOKENS_1024 + ADAGN + LAYOUT + SCENE + BOXES  # = the image LDM
TRANSFORMER_AT = {320: 5, 640: 5, 1280: 6}  # temporal attention after every spatial transformer
PAPER_TEMPORAL = sum(conv_block(c) for c in RESNET_WIDTHS) + sum(
    n * attention(c) for c, n in TRANSFORMER_AT.items()
)
# Prediction / interpolation: the context encoder (conv_in 5 -> 64, stage embedding, 3 stride-2 convs,
# 4 1x1 outputs to 32 channels) and 32 more input channels in every temporal block's first conv.
CONTEXT = (
    (5 * 64 * 9 + 64)
    + 3 * 64
    + 3 * (64 * 64 * 9 + 64)
    + 4 * (64 * 32 + 32)
    + 3 * CONTEXT_CHANNELS * sum(RESNET_WIDTHS)
)

# Upsampler (no SD counterpart: the paper's driving upsampler is a pixel-space DM): 4 levels
# (128, 256, 512, 512), 2 resblocks down and 3 up per level. A resblock cin -> cout is two 3x3 convs,
# two pixel norms, a 512 -> 2 cout scale-shift projection and a 1x1 skip when cin != cout.


def resblock(cin: int, cout: int, emb: int = 512) -> int:
    skip = cin * cout + cout if cin != cout else 0
    convs = 9 * cin * cout + cout + 9 * cout * cout + cout
    return convs + 2 * cin + 2 * cout + emb * 2 * cout + 2 * cout + skip  # + norms, scale-shift


UP_CH = (128, 256, 512, 512)
PAPER_UPSAMPLER_SPATIAL = (
    2 * (128 * 512 + 512 + 512 * 512 + 512)  # timestep and noise-level embeddings (128 -> 512 -> 512)
    + 9 * (48 + 3) * 128
    + 128  # conv_in: 4x4-unshuffled noisy frame + low-res frame
    + sum(2 * resblock(c, c) for c in UP_CH)  # down
    + sum(9 * a * b + b for a, b in itertools.pairwise(UP_CH))  # stride-2 downsampling convs
    + resblock(512, 512)  # mid
    + sum(resblock(2 * c, c) + 2 * resblock(c, c) for c in UP_CH)  # up, skip concatenated
    + sum(9 * b * a + a for a, b in itertools.pairwise(UP_CH))  # upsampling convs
    + 2 * 128
    + 9 * 128 * 48
    + 48
)  # norm_out, conv_out
PAPER_UPSAMPLER_TEMPORAL = sum(conv_block(c, 1) for c in UP_CH[:3])  # levels 0-2 (pixel norm: 2c too)

PAPER = {  # part -> (expected parameters, expected temporal parameters)
    "autoencoder": (SD_VAE, 0),
    "temporal_decoder": (PAPER_TEMPORAL_DECODER, PAPER_TEMPORAL_DECODER - (SD_VAE - SD_VAE_ENCODER)),
    "video_ldm": (PAPER_SPATIAL + PAPER_TEMPORAL, PAPER_TEMPORAL),
    "prediction": (PAPER_SPATIAL + PAPER_TEMPORAL + CONTEXT, PAPER_TEMPORAL + CONTEXT),
    "upsampler": (PAPER_UPSAMPLER_SPATIAL + PAPER_UPSAMPLER_TEMPORAL, PAPER_UPSAMPLER_TEMPORAL),
}

# --- tiny profile: element counts of the shipped checkpoints ---------------------------------------
TINY = {  # part -> (parameters, temporal parameters)
    "autoencoder": (3_884_295, 0),  # autoencoder.safetensors
    "temporal_decoder": (2_650_429, 230_182),  # temporal_decoder.safetensors
    "video_ldm": (5_289_718, 902_674),  # unet.safetensors (the image LDM = its non-temporal part)
    "prediction": (5_462_038, 1_074_994),  # prediction.safetensors; interpolation.safetensors the same
    "upsampler": (2_786_722, 34_994),  # upsampler.safetensors
}
TINY_PROBES = {"clip": 227_560, "box": 23_873}  # drivesim/assets/eval/{clip,box}.safetensors
SHIPPED_FILE = {
    "autoencoder": "autoencoder",
    "temporal_decoder": "temporal_decoder",
    "video_ldm": "unet",
    "prediction": "prediction",
    "upsampler": "upsampler",
}


def profile_config(kind: str, profile: str) -> dict:
    """drivesim/configs/<kind>/<profile>.yaml as a dict."""
    return OmegaConf.to_container(OmegaConf.load(CONFIGS / kind / f"{profile}.yaml"))


def build(part: str, profile: str) -> torch.nn.Module:
    """The part of `profile` from its YAML config, on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        if part in ("autoencoder", "temporal_decoder"):
            cfg = AutoencoderConfig.from_dict(profile_config("autoencoder", profile))
            return AutoencoderKL(cfg) if part == "autoencoder" else TemporalDecoder(cfg)
        if part == "upsampler":
            return UpsamplerUNet(upsampler_config(profile_config("upsampler", profile)))
        cfg = unet_config(profile_config("unet", profile))
        if part == "prediction":
            cfg = dataclasses.replace(cfg, context_channels=CONTEXT_CHANNELS)
        return VideoUNet(cfg)


def counts(model: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, temporal parameters)."""
    named = list(model.named_parameters())
    return sum(p.numel() for _, p in named), sum(p.numel() for n, p in named if is_temporal(n))


@pytest.mark.parametrize(
    ("profile", "part"), [("paper", p) for p in sorted(PAPER)] + [("tiny", p) for p in sorted(TINY)]
)
def test_profile_parameter_count(profile, part):
    total, temporal = counts(build(part, profile))
    expected, expected_temporal = {"paper": PAPER, "tiny": TINY}[profile][part]
    assert total == pytest.approx(expected, rel=0.005), f"{part}: {total:,} parameters, expected {expected:,}"
    assert temporal == pytest.approx(expected_temporal, rel=0.005, abs=1)


def test_paper_image_ldm_is_the_sd_unet_plus_the_conditioning():
    spatial = sum(p.numel() for n, p in build("video_ldm", "paper").named_parameters() if not is_temporal(n))
    assert spatial == pytest.approx(PAPER_SPATIAL, rel=0.005)


def test_tiny_probe_parameter_counts():
    with torch.device("meta"):
        probes = {"clip": ClipProbe(ProbeConfig()), "box": BoxProbe(ProbeConfig())}
    for name, model in probes.items():
        assert sum(p.numel() for p in model.parameters()) == pytest.approx(TINY_PROBES[name], rel=0.005)


def shipped_elements(path: Path) -> int:
    with safe_open(path, "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118 (safe_open is no dict)


@pytest.mark.parametrize("part", sorted(TINY))
def test_tiny_figures_are_the_shipped_checkpoints(part):
    """The figures above are the shipped weights: a new round of different size must update them."""
    assert shipped_elements(DEFAULT_MODEL_DIR / f"{SHIPPED_FILE[part]}.safetensors") == TINY[part][0]
