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


def frame_position_embedding(num_frames: int, dim: int, device=None, offset: int = 0) -> torch.Tensor:
    """Sinusoidal embedding of frame indices offset..offset+T-1 -> [T,dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=device) / max(half, 1))
    angles = torch.arange(offset, offset + num_frames, device=device)[:, None].float() * freqs[None]
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


class ChannelNorm(nn.Module):
    """LayerNorm over channels at every pixel: [N,C,H,W] -> same. Unlike GroupNorm it sees one
    pixel, so a network built from it gives the same output on a tile as on the whole frame."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).square().mean(1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def norm_layer(kind: str, channels: int, groups: int = 32) -> nn.Module:
    """'group' (GroupNorm over each frame) or 'channel' (ChannelNorm, pixel-local)."""
    if kind == "group":
        return nn.GroupNorm(math.gcd(groups, channels), channels)
    if kind == "channel":
        return ChannelNorm(channels)
    raise ValueError(f"norm={kind!r}: use 'group' or 'channel'")


class TemporalConvBlock(nn.Module):
    """3D-conv residual block over time (kernel 3x1x1): x [(b t),c,h,w] -> same shape.

    `convs=2` is norm-act-conv twice (the UNet's block); `convs=1` is one norm-act-conv,
    which halves the temporal receptive field (the autoencoder decoder uses it so chunked
    decoding needs little overlap). The last conv is zero-initialised. `norm='channel'` keeps
    the block pixel-local (the tiled upsampler).
    """

    def __init__(
        self,
        channels: int,
        groups: int = 32,
        kernel_t: int = 3,
        extra_channels: int = 0,
        convs: int = 2,
        norm: str = "group",
    ):
        super().__init__()
        pad = (kernel_t // 2, 0, 0)
        self.receptive_radius = convs * (kernel_t // 2)
        self.norm1 = norm_layer(norm, channels, groups)
        self.conv1 = nn.Conv3d(channels + extra_channels, channels, (kernel_t, 1, 1), padding=pad)
        if convs == 2:
            self.norm2 = norm_layer(norm, channels, groups)
            self.conv2 = nn.Conv3d(channels, channels, (kernel_t, 1, 1), padding=pad)
        elif convs != 1:
            raise ValueError(f"convs={convs}: use 1 or 2")
        with torch.no_grad():  # extra (context) inputs start without effect
            self.conv1.weight[:, channels:].zero_()
        last = self.conv2 if convs == 2 else self.conv1
        nn.init.zeros_(last.weight)
        assert last.bias is not None  # both convs are built with a bias
        nn.init.zeros_(last.bias)
        self.blend = AlphaBlend()

    def forward(
        self, x: torch.Tensor, num_frames: int, image_only: bool = False, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[(b t),c,h,w] (+ extra [(b t),e,h,w] concatenated before conv1) -> [(b t),c,h,w]."""
        if image_only:
            return x
        # Norms are per frame: a GroupNorm over (t,h,w) would couple every frame of the clip
        # and make chunked processing differ from a full pass. contiguous(): GroupNorm's
        # channels-last backward segfaults in torch 2.13 when its input needs no grad.
        h = F.silu(self.norm1(x.contiguous()))
        if extra is not None:
            h = torch.cat([h, extra], dim=1)
        h = self.conv1(rearrange(h, "(b t) c h w -> b c t h w", t=num_frames))
        if hasattr(self, "conv2"):
            h = F.silu(self.norm2(rearrange(h, "b c t h w -> (b t) c h w").contiguous()))
            h = self.conv2(rearrange(h, "(b t) c h w -> b c t h w", t=num_frames))
        return self.blend(x, rearrange(h, "b c t h w -> (b t) c h w"), image_only)


class TemporalAttention(nn.Module):
    """Self-attention over frames at every pixel: x [(b t),c,h,w] -> same shape."""

    def __init__(self, channels: int, heads: int = 4, window: int | None = None):
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.window = window  # attend only to frames within +-window (bounded receptive field)
        self.receptive_radius = window if window is not None else math.inf
        self.norm = nn.LayerNorm(channels)
        self.to_qkv = nn.Linear(channels, 3 * channels, bias=False)
        self.to_out = nn.Linear(channels, channels)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)
        self.blend = AlphaBlend()

    def forward(
        self, x: torch.Tensor, num_frames: int, image_only: bool = False, frame_offset: int = 0
    ) -> torch.Tensor:
        """[(b t),c,h,w] -> [(b t),c,h,w].

        frame_offset: index of the first frame in the whole video, so a chunk of a longer
        video gets the same position embeddings as in a full pass."""
        if image_only:
            return x
        _, c, h, w = x.shape
        seq = rearrange(x, "(b t) c h w -> (b h w) t c", t=num_frames)
        pos = frame_position_embedding(num_frames, c, x.device, frame_offset).to(x.dtype)
        tokens = self.norm(seq) + pos
        q, k, v = rearrange(self.to_qkv(tokens), "n t (three hd d) -> three n hd t d", three=3, hd=self.heads)
        mask = None
        if self.window is not None:
            idx = torch.arange(num_frames, device=x.device)
            mask = (idx[:, None] - idx[None, :]).abs() <= self.window
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
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
