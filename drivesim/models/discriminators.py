"""Patch discriminators: 2D for the image autoencoder, 3D-conv video for the temporal decoder.

Neither diffusers nor sgm ships a video discriminator; this one follows the PatchGAN design
(strided convolutions, LeakyReLU, GroupNorm) with 3D kernels, so each output logit judges
one space-time patch of the clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4) or 1, channels)


class PatchDiscriminator2D(nn.Module):
    """x [B,3,H,W] -> patch logits [B,1,H/8,W/8] (PatchGAN, 3 strided layers)."""

    def __init__(self, channels: int = 32, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(3, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = channels
        for _ in range(layers - 1):
            mods += [nn.Conv2d(c, c * 2, 4, 2, 1), _norm(c * 2), nn.LeakyReLU(0.2)]
            c *= 2
        mods += [nn.Conv2d(c, c, 3, 1, 1), _norm(c), nn.LeakyReLU(0.2), nn.Conv2d(c, 1, 3, 1, 1)]
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VideoPatchDiscriminator3D(nn.Module):
    """video [B,3,T,H,W] -> patch logits [B,1,T',H',W'] over (t,h,w)."""

    def __init__(self, channels: int = 32, layers: int = 3, time_strides: tuple[int, ...] = (1, 2, 2)):
        super().__init__()
        mods: list[nn.Module] = []
        c_in, c = 3, channels
        for i in range(layers):
            st = time_strides[i] if i < len(time_strides) else 1
            mods += [nn.Conv3d(c_in, c, (3, 4, 4), (st, 2, 2), (1, 1, 1))]
            if i > 0:
                mods.append(_norm(c))
            mods.append(nn.LeakyReLU(0.2))
            c_in, c = c, c * 2
        mods += [nn.Conv3d(c_in, 1, 3, 1, 1)]
        self.net = nn.Sequential(*mods)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 - real)) + mean(relu(1 + fake)), halved."""
    return 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean(fake logits)."""
    return -fake_logits.mean()


def shuffle_frames(
    video: torch.Tensor, generator: torch.Generator | None = None, dim: int = 2
) -> torch.Tensor:
    """Copy of video with its frames (axis `dim`, T >= 2) in a random order != the original."""
    t = video.shape[dim]
    if t < 2:
        raise ValueError("shuffle_frames needs at least 2 frames")
    perm = torch.randperm(t, generator=generator)
    if torch.equal(perm, torch.arange(t)):
        perm = perm.roll(1)
    return video.index_select(dim, perm.to(video.device))
