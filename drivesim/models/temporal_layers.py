"""Temporal layers l_phi of the Video LDM (paper section 3.1), inserted after spatial blocks.

Every temporal parameter lives in a module whose name contains TEMPORAL_PREFIX, so the
video fine-tuning stage selects / freezes parameters by name. Each layer returns
alpha * spatial + (1 - alpha) * temporal(spatial) with a learned alpha per layer; the
temporal branch is residual with a zero-initialised output, so at init it returns its
input and the video model equals the image model frame by frame. `image_only=True`
forces alpha = 1 (image batches in mixed training).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

TEMPORAL_PREFIX = "temporal"


def frame_position_embedding(num_frames: int, dim: int, device=None) -> torch.Tensor:
    """Sinusoidal embedding of frame indices 0..T-1 -> [T,dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=device) / max(half, 1))
    angles = torch.arange(num_frames, device=device)[:, None].float() * freqs[None]
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(emb, (0, dim - emb.shape[-1]))


class AlphaBlend(nn.Module):
    """alpha * spatial + (1 - alpha) * temporal, alpha = sigmoid(learned logit).

    The temporal branch is spatial + delta, so this is spatial + (1 - alpha) * delta: one
    fused multiply-add and no stored copy of the temporal branch's output.
    """

    def __init__(self, init_alpha: float = 0.5):
        super().__init__()
        self.logit = nn.Parameter(torch.tensor(math.log(init_alpha / (1 - init_alpha))))

    def forward(self, spatial: torch.Tensor, delta: torch.Tensor, image_only: bool) -> torch.Tensor:
        """spatial, delta: same shape -> blended."""
        if image_only:
            return spatial
        return torch.addcmul(spatial, delta, 1 - torch.sigmoid(self.logit))


class TemporalConvBlock(nn.Module):
    """3D-conv residual block over time (kernel 3x1x1): x [(b t),c,h,w] -> same shape."""

    def __init__(self, channels: int, groups: int = 32, kernel_t: int = 3, extra_channels: int = 0):
        super().__init__()
        groups = math.gcd(groups, channels)
        pad = (kernel_t // 2, 0, 0)
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv1 = nn.Conv3d(channels + extra_channels, channels, (kernel_t, 1, 1), padding=pad)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.conv2 = nn.Conv3d(channels, channels, (kernel_t, 1, 1), padding=pad)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.blend = AlphaBlend()

    def forward(self, x: torch.Tensor, num_frames: int, image_only: bool = False,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """[(b t),c,h,w] (+ extra [(b t),e,h,w] concatenated before conv1) -> [(b t),c,h,w]."""
        if image_only:
            return x
        video = rearrange(x, "(b t) c h w -> b c t h w", t=num_frames)
        h = F.silu(self.norm1(video))
        if extra is not None:
            h = torch.cat([h, rearrange(extra, "(b t) c h w -> b c t h w", t=num_frames)], dim=1)
        h = self.conv2(F.silu(self.norm2(self.conv1(h))))
        out = self.blend(video, h, image_only)
        return rearrange(out, "b c t h w -> (b t) c h w")


class TemporalAttention(nn.Module):
    """Self-attention over frames at every pixel: x [(b t),c,h,w] -> same shape."""

    def __init__(self, channels: int, heads: int = 4, extra_channels: int = 0):
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = nn.LayerNorm(channels)
        self.to_qkv = nn.Linear(channels, 3 * channels, bias=False)
        self.extra_proj = nn.Linear(extra_channels, channels) if extra_channels else None
        self.to_out = nn.Linear(channels, channels)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)
        self.blend = AlphaBlend()

    def forward(self, x: torch.Tensor, num_frames: int, image_only: bool = False,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """[(b t),c,h,w] (+ extra [(b t),e,h,w] added to the tokens) -> [(b t),c,h,w]."""
        if image_only:
            return x
        _, c, h, w = x.shape
        seq = rearrange(x, "(b t) c h w -> (b h w) t c", t=num_frames)
        tokens = self.norm(seq) + frame_position_embedding(num_frames, c, x.device).to(x.dtype)
        if extra is not None and self.extra_proj is not None:
            tokens = tokens + self.extra_proj(rearrange(extra, "(b t) e h w -> (b h w) t e",
                                                        t=num_frames))
        q, k, v = rearrange(self.to_qkv(tokens), "n t (three hd d) -> three n hd t d",
                            three=3, hd=self.heads)
        attn = F.scaled_dot_product_attention(q, k, v)
        out = self.blend(seq, self.to_out(rearrange(attn, "n hd t d -> n t (hd d)")), image_only)
        return rearrange(out, "(b h w) t c -> (b t) c h w", h=h, w=w)


def is_temporal(name: str) -> bool:
    """True for a parameter/module name inside a temporal layer."""
    return any(part.startswith(TEMPORAL_PREFIX) for part in name.split("."))


def temporal_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of the temporal layers, selected by name."""
    return [p for n, p in model.named_parameters() if is_temporal(n)]


def spatial_parameters(model: nn.Module) -> list[nn.Parameter]:
    """All parameters that are not temporal (the image model)."""
    return [p for n, p in model.named_parameters() if not is_temporal(n)]
