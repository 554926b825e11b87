"""SourceGuide: a real clip that every generated frame of a variant follows (drivesim augment
--keep-structure), in two ways that act on its latents (one per output frame):

- per-frame SDEdit (Meng et al. 2022): each new frame starts from the source's own latents noised
  to `1 - keep` of the schedule and is denoised under the variant's conditions, the temporal
  layers keeping the frames coherent;
- detail transfer: the generated latents keep their low spatial frequencies (the light, the
  colours, the time of day) and take `detail` of the source's high frequencies (its edges: the
  street, the cars, the buildings), a Gaussian split at `sigma` latent pixels. The opposite split
  of ILVR (Choi et al. 2021), which keeps a reference's low frequencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange


def gaussian_blur(latents: torch.Tensor, sigma: float) -> torch.Tensor:
    """[B,T,C,h,w] -> the same blurred over h and w (separable Gaussian, replicated borders)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=latents.dtype, device=latents.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    b, t, c = latents.shape[:3]
    flat = rearrange(latents, "b t c h w -> (b t c) 1 h w")
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return rearrange(flat, "(b t c) 1 h w -> b t c h w", b=b, t=t, c=c)


@dataclass(frozen=True)
class SourceGuide:
    """A source clip's latents per output frame and how much of them a variant keeps."""

    latents: torch.Tensor  # [1,N,4,h,w] unscaled; output frame f (at the rollout's 30 fps) at index f
    keep: float  # per-frame SDEdit: 0 = start from noise, 1 = start from the source as it is
    detail: float = 1.0  # share of the source's high frequencies in every generated frame
    sigma: float = 1.5  # latent pixels: where low frequencies end and detail begins

    def __post_init__(self):
        for name in ("keep", "detail"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: use a share in 0..1")
        if self.sigma <= 0:
            raise ValueError(f"sigma={self.sigma}: use a positive number of latent pixels")

    @property
    def strength(self) -> float:
        """The SDEdit start (1 = pure noise)."""
        return 1.0 - self.keep

    def at(self, frames: list[int]) -> torch.Tensor:
        """Latents [1,len(frames),4,h,w] of output frames (past its end: its last frame)."""
        last = self.latents.shape[1] - 1
        return self.latents[:, [min(f, last) for f in frames]]

    def blend(self, latents: torch.Tensor, first: int, stride: int = 1) -> torch.Tensor:
        """Generated latents [1,n,4,h,w] of output frames first, first + 1, ... (source frame
        stride x f) -> their low frequencies + `detail` of the source's high frequencies."""
        if self.detail == 0:
            return latents
        source = self.at([(first + i) * stride for i in range(latents.shape[1])]).to(latents)
        own = latents - gaussian_blur(latents, self.sigma)
        theirs = source - gaussian_blur(source, self.sigma)
        return latents + self.detail * (theirs - own)
