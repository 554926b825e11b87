"""4x video upsampler (paper section 3.4): a pixel-space diffusion UNet conditioned on the
low-resolution video, its noise-augmentation level and the diffusion timestep.

It diffuses the residual over a bicubic upsampling of the input, (high - bicubic(low)) x
residual_scale: a first run that diffused the frames themselves spent its first 1,000 steps
re-learning interpolation (x0 at t = T: 23.9 dB against bicubic's 33.5 dB on a held-out frame).
The network is preconditioned (EDM, Karras et al. 2022): x0 = c_skip(t) x_t + c_out(t) F(c_in(t) x_t),
and the pipeline turns that x0 into the v of the cascade's v-prediction schedule. c_in is 0 at
zero SNR: with pure noise in 48 of its 51 input channels a run had not learnt the t = T guess
from the low-res frame after 750 steps, which the same net regressed from a zero input in 300.
Predicting v itself (~ the noise at low t) asks level 0 to carry the 48 unshuffled noise values
of each pixel block through its 48 channels: a second run had not learnt it after 1,250 steps
(v MSE 0.97 at t = 20, where the noise variance is 1).

Cost shapes the layout (DESIGN.md, cost arithmetic at 512x1024): the noisy high-resolution
frame is pixel-unshuffled by the scale factor, so the first level already works at the
low-resolution size (128x256 for a 512x1024 output), where the low-resolution frame is
concatenated as is; the wide levels sit at 1/8 and 1/16 of the output. Every norm is
pixel-local (ChannelNorm), so a tile with enough margin gives exactly the full frame's output.
On the way up, a temporal conv block (kernel 3 over frames, one conv) follows the last resblock
of every level marked `temporal`: one frame of reach per block and step, so a clip streams in
chunks with few overlap frames. Zero-initialised, they leave the video model equal to the image
model.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from einops import rearrange
from torch import nn

from drivesim.models.temporal_layers import ChannelNorm, TemporalConvBlock
from drivesim.models.weights import load_checkpoint


@dataclass(frozen=True)
class UpsamplerConfig:
    scale: int = 4  # output size / input size
    channels: tuple[int, ...] = (48, 96, 128)  # per level; level 0 at the low-resolution size
    blocks: tuple[int, ...] = (1, 1, 1)  # resblocks per level (the up path has one more)
    temporal: tuple[bool, ...] = (True, True, False)  # a temporal block on the way up at this level
    embed_dim: int = 128
    # high - bicubic(low) has std ~0.06 (area-downsampled input) to ~0.13 (through the autoencoder)
    residual_scale: float = 8.0
    sigma_data: float = 0.75  # std of the scaled residual (0.46 area input, 1.0 decoded), x0 preconditioning

    def __post_init__(self):
        if not len(self.channels) == len(self.blocks) == len(self.temporal):
            raise ValueError(
                f"channels {self.channels}, blocks {self.blocks} and temporal "
                f"{self.temporal} need one entry per level"
            )

    @classmethod
    def paper(cls) -> UpsamplerConfig:
        """GPU profile (same layout, SD-like widths)."""
        return cls(
            channels=(128, 256, 512, 512),
            blocks=(2, 2, 2, 2),
            temporal=(True, True, True, False),
            embed_dim=512,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def size_multiple(self) -> int:
        """Output sizes (and tile offsets) must be multiples of this many pixels."""
        return self.scale * 2 ** (len(self.channels) - 1)

    @property
    def receptive_radius(self) -> int:
        """Output pixels on each side that can change one output pixel (an upper bound): every 3x3
        conv at a level whose pixels span s output pixels adds s; resampling and shuffles add slop."""
        spans = [self.scale * 2**i for i in range(len(self.channels))]
        resnets = sum((4 * n + 2) * s for n, s in zip(self.blocks, spans))  # 2 convs each, down + up
        resample = sum(2 * s for s in spans[:-1])  # strided conv + nearest upsample and its conv
        return resnets + resample + 2 * spans[-1] + 2 * spans[0] + 2 * self.scale  # mid, in/out, shuffles

    @property
    def temporal_radius(self) -> int:
        """Frames on each side that can change one output frame in one forward pass."""
        return sum(self.temporal)


def bicubic_upsample(frames: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """[B,T,3,h,w] -> [B,T,3,sh,sw] in [-1,1]: the base the upsampler's residual is added to."""
    b = frames.shape[0]
    out = F.interpolate(frames.flatten(0, 1), scale_factor=scale, mode="bicubic", align_corners=False)
    return out.clamp(-1, 1).unflatten(0, (b, -1))


def upsampler_config(values: dict) -> UpsamplerConfig:
    """UpsamplerConfig from a JSON/YAML mapping (lists become tuples)."""
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return UpsamplerConfig(**kwargs)


class ResBlock(nn.Module):
    """norm-act-conv twice with the embedding as scale-shift after the second norm (AdaGN)."""

    def __init__(self, cin: int, cout: int, embed_dim: int):
        super().__init__()
        self.norm1, self.conv1 = ChannelNorm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(embed_dim, 2 * cout)
        self.norm2, self.conv2 = ChannelNorm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x [N,cin,H,W], emb [N,D] -> [N,cout,H,W]."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = rearrange(self.emb(F.silu(emb)), "n (two c) -> two n c 1 1", two=2)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class UpsamplerUNet(nn.Module):
    """c_in x_t [B,T,3,H,W], low_res [B,T,3,H/s,W/s], timesteps [B], noise_level [B] -> F [B,T,3,H,W]
    (x0 = c_skip x_t + c_out F, see x0_preconditioning)."""

    def __init__(self, cfg: UpsamplerConfig):
        super().__init__()
        self.cfg = cfg
        ch, d, s = cfg.channels, cfg.embed_dim, cfg.scale
        self.time_proj = Timesteps(ch[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(ch[0], d)
        self.noise_level_embedding = TimestepEmbedding(ch[0], d)
        self.conv_in = nn.Conv2d(3 * s * s + 3, ch[0], 3, padding=1)
        self.down = nn.ModuleList(
            nn.ModuleList(ResBlock(ch[i], ch[i], d) for _ in range(n)) for i, n in enumerate(cfg.blocks)
        )
        self.downsample = nn.ModuleList(
            nn.Conv2d(ch[i], ch[i + 1], 3, stride=2, padding=1) for i in range(len(ch) - 1)
        )
        self.mid = ResBlock(ch[-1], ch[-1], d)
        self.up = nn.ModuleList(
            nn.ModuleList(ResBlock(c, ch[i], d) for c in [2 * ch[i]] + [ch[i]] * n)
            for i, n in enumerate(cfg.blocks)
        )
        self.temporal = nn.ModuleDict(
            {
                str(i): TemporalConvBlock(ch[i], convs=1, norm="channel")
                for i, t in enumerate(cfg.temporal)
                if t
            }
        )
        self.upsample = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 3, padding=1) for i in range(len(ch) - 1))
        self.norm_out = ChannelNorm(ch[0])
        self.conv_out = nn.Conv2d(ch[0], 3 * s * s, 3, padding=1)

    @classmethod
    def from_image_model(cls, image_model: UpsamplerUNet) -> UpsamplerUNet:
        """Video upsampler with the image model's spatial weights; temporal layers at identity."""
        cfg = image_model.cfg
        video = cls(cfg)
        missing, unexpected = video.load_state_dict(copy.deepcopy(image_model.state_dict()), strict=False)
        if unexpected or any(not k.startswith("temporal.") for k in missing):
            raise ValueError(f"image model does not match: missing {missing}, unexpected {unexpected}")
        return video

    def forward(
        self,
        x_t: torch.Tensor,
        low_res: torch.Tensor,
        timesteps: torch.Tensor,
        noise_level: torch.Tensor,
        image_only: bool = False,
    ) -> torch.Tensor:
        b, t = x_t.shape[:2]
        m = self.cfg.size_multiple
        if x_t.shape[-2] % m or x_t.shape[-1] % m:
            raise ValueError(
                f"upsampler input {tuple(x_t.shape[-2:])}: height and width must be multiples of {m}"
            )
        emb = self.time_embedding(self.time_proj(timesteps).to(x_t.dtype)) + self.noise_level_embedding(
            self.time_proj(noise_level).to(x_t.dtype)
        )
        emb = emb.repeat_interleave(t, dim=0)  # [(b t),D]
        x = F.pixel_unshuffle(rearrange(x_t, "b t c h w -> (b t) c h w"), self.cfg.scale)
        h = self.conv_in(torch.cat([x, rearrange(low_res, "b t c h w -> (b t) c h w")], 1))
        skips = []
        for i, resnets in enumerate(self.down):
            for resnet in cast(nn.ModuleList, resnets):
                h = resnet(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb)
        for i in reversed(range(len(self.up))):
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = torch.cat([h, skips[i]], 1)
            for resnet in cast(nn.ModuleList, self.up[i]):
                h = resnet(h, emb)
            if str(i) in self.temporal:
                h = self.temporal[str(i)](h, t, image_only)
        out = F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(h))), self.cfg.scale)
        return rearrange(out, "(b t) c h w -> b t c h w", b=b)


def load_upsampler_unet(prefix) -> UpsamplerUNet:
    """An upsampler checkpoint (safetensors + JSON with its `upsampler` config)."""
    return load_checkpoint(prefix, lambda c: UpsamplerUNet(upsampler_config(c["upsampler"])))
