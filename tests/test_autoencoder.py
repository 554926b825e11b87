"""Autoencoder: small untrained models (random weights), checked for structure and exactness."""

import re

import pytest
import torch
from conftest import TINY_AE
from diffusers import AutoencoderKL as DiffusersAutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors.torch import save_file

from drivesim.metrics import reference_flicker
from drivesim.models.autoencoder import AutoencoderConfig, AutoencoderKL
from drivesim.models.autoencoder_keys import is_ldm_layout, ldm_to_diffusers, load_vae_weights
from drivesim.models.discriminators import (
    PatchDiscriminator2D,
    VideoPatchDiscriminator3D,
    hinge_d_loss,
    hinge_g_loss,
    shuffle_frames,
)
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.models.temporal_layers import is_temporal
from drivesim.models.weights import CheckpointError, load_checkpoint, save_checkpoint
from drivesim.train.ae_losses import motion_loss


def diffusers_twin(cfg: AutoencoderConfig) -> DiffusersAutoencoderKL:
    n = len(cfg.block_out_channels)
    return DiffusersAutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        latent_channels=4,
        norm_num_groups=cfg.norm_num_groups,
    )


def perturbed(model: torch.nn.Module, temporal_only: bool = False, scale: float = 0.05):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not temporal_only or is_temporal(name):
                p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


def diffusers_to_ldm(state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """Test-only inverse of the key conversion (diffusers names -> original CompVis names)."""
    out = {}
    for key, v in state.items():
        k = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        k = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)", r"encoder.down.\1.block.\2", k)
        k = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0", r"encoder.down.\1.downsample", k)
        k = re.sub(
            r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)",
            lambda m: f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}",
            k,
        )
        k = re.sub(
            r"decoder\.up_blocks\.(\d+)\.upsamplers\.0",
            lambda m: f"decoder.up.{levels - 1 - int(m[1])}.upsample",
            k,
        )
        k = re.sub(r"mid_block\.resnets\.(\d)", lambda m: f"mid.block_{int(m[1]) + 1}", k)
        k = k.replace("mid_block.attentions.0.group_norm", "mid.attn_1.norm")
        for a, b in (("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")):
            k = k.replace(f"mid_block.attentions.0.{a}", f"mid.attn_1.{b}")
        if ".attn_1." in k and k.endswith("weight") and v.dim() == 2:
            v = v[:, :, None, None]
        out[k] = v
    return out


def test_diffusers_file_loads_without_conversion(tmp_path):
    twin = perturbed(diffusers_twin(TINY_AE)).eval()
    path = tmp_path / "vae.safetensors"
    save_file({k: v.contiguous() for k, v in twin.state_dict().items()}, str(path))
    ours = AutoencoderKL(TINY_AE).eval()
    assert set(ours.state_dict()) == set(twin.state_dict())
    load_vae_weights(ours, path)
    x = torch.rand(2, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x).mean, twin.encode(x).latent_dist.mean, atol=1e-4, rtol=1e-4)
        z = torch.randn(2, 4, 4, 8)
        torch.testing.assert_close(ours.decode(z), twin.decode(z).sample, atol=1e-4, rtol=1e-4)


def test_original_ldm_layout_converts_like_diffusers(tmp_path):
    twin = perturbed(diffusers_twin(TINY_AE))
    state = twin.state_dict()
    ldm = diffusers_to_ldm(state, len(TINY_AE.block_out_channels))
    assert is_ldm_layout(ldm) and not is_ldm_layout(state)
    ours = ldm_to_diffusers(ldm, len(TINY_AE.block_out_channels))
    reference = convert_ldm_vae_checkpoint(ldm, dict(twin.config))  # diffusers' own converter
    assert set(ours) == set(state) == set(reference)
    for k in state:
        assert torch.equal(ours[k], reference[k]) and torch.equal(ours[k], state[k]), k
    path = tmp_path / "sd_vae_original.safetensors"  # as cut out of a full SD checkpoint
    save_file({f"first_stage_model.{k}": v.contiguous() for k, v in ldm.items()}, str(path))
    model = AutoencoderKL(TINY_AE)
    load_vae_weights(model, path)
    assert torch.equal(model.decoder.conv_out.weight, state["decoder.conv_out.weight"])


def test_temporal_decoder_starts_equal_to_image_decoder():
    # float64: exact up to rounding (in float32 oneDNN picks different conv kernels for the
    # two memory layouts, ~1e-5 apart, which says nothing about the model).
    ae = perturbed(AutoencoderKL(TINY_AE)).double().eval()
    td = TemporalDecoder.from_image_autoencoder(ae).double().eval()
    z = torch.randn(2, 5, 4, 4, 8, dtype=torch.float64)
    with torch.no_grad():
        video = td(z)
        frames = ae.decode(z.flatten(0, 1)).unflatten(0, (2, 5))
    torch.testing.assert_close(video, frames, atol=1e-6, rtol=0)
    perturbed(td, temporal_only=True)
    with torch.no_grad():
        assert (td(z) - frames).abs().max() > 1e-4  # temporal layers now act
        torch.testing.assert_close(td(z, image_only=True), frames, atol=1e-6, rtol=0)
    assert all(n.startswith("temporal") for n, _ in td.named_parameters() if is_temporal(n))
    assert set(td.state_dict()) - {k for k in td.state_dict() if is_temporal(k)} == {
        k for k in ae.state_dict() if k.startswith(("decoder.", "post_quant_conv."))
    }


def test_temporal_finetune_step_leaves_frozen_weights_unchanged():
    ae = perturbed(AutoencoderKL(TINY_AE))
    td = TemporalDecoder.from_image_autoencoder(ae)
    for n, p in td.named_parameters():
        p.requires_grad_(is_temporal(n))
    before = {n: p.detach().clone() for n, p in td.named_parameters()}
    encoder_before = {n: p.detach().clone() for n, p in ae.encoder.named_parameters()}
    opt = torch.optim.Adam([p for n, p in td.named_parameters() if is_temporal(n)], lr=1e-2)
    x = torch.rand(1, 4, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        z = ae.encode(x.flatten(0, 1)).mode().unflatten(0, (1, 4))
    (td(z) - x).abs().mean().backward()
    opt.step()
    for n, p in td.named_parameters():
        assert is_temporal(n) or torch.equal(p, before[n]), n
    assert any(not torch.equal(p, before[n]) for n, p in td.named_parameters() if is_temporal(n))
    assert all(torch.equal(p, encoder_before[n]) for n, p in ae.encoder.named_parameters())


@pytest.mark.parametrize("frames,chunk", [(11, 4), (7, 16), (16, 5)])
def test_chunked_decode_equals_full_decode(frames, chunk):
    td = perturbed(
        TemporalDecoder.from_image_autoencoder(perturbed(AutoencoderKL(TINY_AE))),
        temporal_only=True,
        scale=0.2,
    ).eval()
    z = torch.randn(1, frames, 4, 4, 8)
    with torch.no_grad():
        full = td(z)
    chunked = td.decode_chunked(z, chunk=chunk)
    torch.testing.assert_close(chunked, full, atol=1e-4, rtol=1e-4)
    pieces = torch.cat([td(z[:, s : s + chunk]) for s in range(0, frames, chunk)], 1)
    if frames > chunk:  # without context the chunk borders differ (what SVD's decoder does)
        assert (pieces - full).abs().max() > 1e-4


def test_video_discriminator_is_a_patch_grid_and_losses():
    disc = VideoPatchDiscriminator3D(channels=8)
    logits = disc(torch.randn(2, 3, 8, 64, 128))
    assert logits.shape == (2, 1, 2, 8, 16)  # (t, h, w) patches
    assert PatchDiscriminator2D(channels=8)(torch.randn(1, 3, 64, 128)).shape == (1, 1, 8, 16)
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (0.25 + 0.5))
    assert hinge_g_loss(fake).item() == pytest.approx(1.0)
    video = torch.arange(6.0).view(1, 1, 6, 1, 1).expand(1, 3, 6, 2, 2)
    for seed in range(20):
        shuffled = shuffle_frames(video, torch.Generator().manual_seed(seed))
        assert not torch.equal(shuffled, video)
        assert torch.equal(shuffled.sort(dim=2).values, video)


def test_checkpoint_errors_name_the_file_and_keys(tmp_path):
    ae = AutoencoderKL(TINY_AE)
    path = save_checkpoint(ae, tmp_path / "ae", {"autoencoder": TINY_AE.to_dict()})
    build = lambda c: AutoencoderKL(AutoencoderConfig.from_dict(c["autoencoder"]))
    loaded = load_checkpoint(tmp_path / "ae", build)
    assert torch.equal(loaded.decoder.conv_out.weight, ae.decoder.conv_out.weight)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"ae\.safetensors.*corrupt or truncated"):
        load_checkpoint(tmp_path / "ae", build)
    other = AutoencoderConfig(block_out_channels=(16, 16, 32, 64), norm_num_groups=8)
    save_checkpoint(AutoencoderKL(other), tmp_path / "wide", {"autoencoder": TINY_AE.to_dict()})
    with pytest.raises(CheckpointError, match=r"shape mismatches: .*expected \(32,"):
        load_checkpoint(tmp_path / "wide", build)
    (tmp_path / "missing.json").write_text("{}")  # a config without its tensors
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing", lambda c: ae)


def test_flicker_metric():
    ref = torch.rand(1, 6, 3, 8, 8)
    assert reference_flicker(ref + 0.1, ref) == pytest.approx(0.0, abs=1e-6)  # constant offset: no flicker
    noise = torch.randn(1, 6, 3, 8, 8) * 0.1
    assert reference_flicker(ref + noise, ref) > 0.05


def test_paper_profile_is_the_sd_vae_size():
    with torch.device("meta"):
        model = AutoencoderKL(AutoencoderConfig.paper())
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(83.65e6, rel=0.01)


def test_motion_loss_sees_flicker_not_offsets():
    target = torch.rand(1, 5, 3, 8, 8)
    assert motion_loss(target + 0.2, target).item() == pytest.approx(0.0, abs=1e-6)
    flickering = target + 0.2 * (torch.arange(5) % 2).view(1, 5, 1, 1, 1)
    assert motion_loss(flickering, target).item() == pytest.approx(0.2, abs=1e-5)


def test_warped_motion_loss_is_the_evals_warped_flicker_and_trains():
    from drivesim.data.procedural import ProceduralClipDataset
    from drivesim.metrics import warped_reference_flicker
    from drivesim.train.ae_losses import reference_flows, warped_motion_loss

    clip, _ = ProceduralClipDataset(num_frames=4, fps=30.0, size=(64, 128), seed=5)[0]
    noise = 0.05 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(0))
    recon = (clip + noise).clamp(-1, 1).requires_grad_(True)
    flows = reference_flows(clip[None])
    assert flows.shape == (1, 3, 64, 128, 2)
    loss = warped_motion_loss(recon[None], clip[None], flows)
    metric = warped_reference_flicker([recon.detach()], clip, border=0)[0] / 127.5  # 0-255 -> [-1,1]
    assert float(loss.detach()) == pytest.approx(metric, rel=0.02)  # grid_sample vs cv2.remap, same flow
    loss.backward()
    assert recon.grad is not None and recon.grad.abs().sum() > 0
    moving = clip[None] + 0.1  # a residual constant in time is no flicker, whatever the motion
    assert float(warped_motion_loss(moving, clip[None], flows)) == pytest.approx(0.0, abs=1e-5)
