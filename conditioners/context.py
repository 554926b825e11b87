"""Context conditioning of the prediction / interpolation models (paper section 3.2-3.3).

Context frames are given as latents with a binary mask over frames: the masked latents
(unknown frames zeroed) and the mask are concatenated on the channel axis and encoded by
a small conv net with learned stride-2 downsampling to every UNet resolution level; the
features are consumed by the temporal conv blocks. A stage label (0 = prediction,
1 = interpolation T->4T, 2 = interpolation 4T->16T) is a learned embedding added to the
first features, so one network serves both interpolation steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

CONTEXT_STAGES = ("prediction", "interpolate_4x", "interpolate_16x")  # Context.stage labels


@dataclass
class Context:
    """Known frames of a clip: latents [B,T,C,h,w] (the model's scaled latent space; unknown
    frames may hold anything, they are zeroed), mask [B,T] (1 = known), stage [B] (CONTEXT_STAGES index)."""

    latents: torch.Tensor
    mask: torch.Tensor
    stage: torch.Tensor

    @classmethod
    def empty(cls, x: torch.Tensor, stage: int = 0) -> Context:
        """No known frame (the unconditional branch of context guidance) for x [B,T,C,h,w]."""
        b, t = x.shape[:2]
        return cls(
            torch.zeros_like(x), x.new_zeros(b, t), torch.full((b,), stage, dtype=torch.long, device=x.device)
        )

    def to(self, device: torch.device | str) -> Context:
        """The same context with its tensors on `device`."""
        return Context(self.latents.to(device), self.mask.to(device), self.stage.to(device))

    def without_frames(self) -> Context:
        """Same stage, no known frames."""
        return Context(torch.zeros_like(self.latents), torch.zeros_like(self.mask), self.stage)

    @classmethod
    def cat(cls, contexts: list[Context]) -> Context:
        """Contexts stacked on the batch axis (guidance branches in one forward)."""
        return cls(*(torch.cat(parts) for parts in zip(*((c.latents, c.mask, c.stage) for c in contexts))))


def context_input(latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """latents [B,T,C,h,w], mask [B,T] (1 = known frame) -> [B,T,C+1,h,w] masked latents + mask."""
    m = repeat(mask.to(latents.dtype), "b t -> b t 1 h w", h=latents.shape[-2], w=latents.shape[-1])
    return torch.cat([latents * m, m], dim=2)


def leading_mask(batch: int, num_frames: int, count: torch.Tensor | int) -> torch.Tensor:
    """[B,T] mask with the first `count` frames known (count: int or [B])."""
    count = torch.as_tensor(count).expand(batch)
    return (torch.arange(num_frames)[None] < count[:, None]).float()


def keyframe_mask(batch: int, num_frames: int, every: int = 4) -> torch.Tensor:
    """[B,T] mask with frames 0, every, 2*every, ... known (interpolation)."""
    return (torch.arange(num_frames) % every == 0).float().expand(batch, num_frames).clone()


class ContextEncoder(nn.Module):
    """(latents [B,T,C,h,w], mask [B,T], stage [B]) -> per-level features [(B T),D,h/2^l,w/2^l]."""

    def __init__(
        self,
        latent_channels: int,
        levels: int,
        out_channels: int,
        hidden: int = 64,
        stages: int = len(CONTEXT_STAGES),
    ):
        super().__init__()
        self.conv_in = nn.Conv2d(latent_channels + 1, hidden, 3, padding=1)
        self.stage = nn.Embedding(stages, hidden)
        self.down = nn.ModuleList(
            nn.Conv2d(hidden, hidden, 3, stride=2, padding=1) for _ in range(levels - 1)
        )
        self.out = nn.ModuleList(nn.Conv2d(hidden, out_channels, 1) for _ in range(levels))

    def forward(self, latents: torch.Tensor, mask: torch.Tensor, stage: torch.Tensor) -> list[torch.Tensor]:
        """-> one feature map per UNet level (level 0 = full latent resolution)."""
        t = latents.shape[1]
        x = rearrange(context_input(latents, mask), "b t c h w -> (b t) c h w")
        h = self.conv_in(x) + repeat(self.stage(stage), "b d -> (b t) d 1 1", t=t)
        feats = [self.out[0](F.silu(h))]
        for down, out in zip(self.down, self.out[1:]):
            h = F.silu(down(F.silu(h)))
            feats.append(out(h))
        return feats
