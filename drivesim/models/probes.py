"""drivesim's own evaluation networks, trained on procedural clips (weights ship with the repo).

- `ClipProbe`: a small video network; its pooled features give a Frechet video distance that
  needs no outside weights (not comparable to literature FVD), and its heads classify time of
  day and crowdedness (condition adherence), regress ego motion per frame and detect shuffled
  frame order (so the features see motion, not only appearance). Each frame is seen with its
  difference to the previous frame.
- `BoxProbe`: car / no-car classifier on box crops (box adherence).
Both work at a fixed internal resolution, so any input size is resized the same way.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from drivesim.data.conditions import CROWDEDNESS, TIME_OF_DAY


@dataclass(frozen=True)
class ProbeConfig:
    size: tuple[int, int] = (64, 128)  # internal clip resolution (H, W)
    channels: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 128
    crop_size: int = 32  # box crops
    crop_channels: tuple[int, ...] = (16, 32, 64)

    def to_dict(self) -> dict:
        return asdict(self)


def probe_config(values: dict) -> ProbeConfig:
    """ProbeConfig from a JSON mapping (lists become tuples)."""
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return ProbeConfig(**kwargs)


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(8, cout), nn.SiLU())


class ClipProbe(nn.Module):
    """video [B,T,3,H,W] in [-1,1] -> dict(features [B,D], time_of_day [B,2], crowdedness [B,4],
    speed [B], shuffled [B])."""

    def __init__(self, cfg: ProbeConfig):
        super().__init__()
        self.cfg = cfg
        chans = (6, *cfg.channels)  # frame + difference to the previous frame
        self.frame_net = nn.Sequential(*(_conv(a, b) for a, b in itertools.pairwise(chans)))
        c = chans[-1]
        self.time_net = nn.Sequential(
            nn.Conv3d(c, c, (3, 1, 1), padding=(1, 0, 0)),
            nn.GroupNorm(8, c),
            nn.SiLU(),
            nn.Conv3d(c, c, (3, 1, 1), padding=(1, 0, 0)),
        )
        self.project = nn.Sequential(nn.Linear(2 * c, cfg.feature_dim), nn.LayerNorm(cfg.feature_dim))
        self.time_of_day = nn.Linear(cfg.feature_dim, len(TIME_OF_DAY))
        self.crowdedness = nn.Linear(cfg.feature_dim, len(CROWDEDNESS))
        self.speed = nn.Linear(cfg.feature_dim, 1)
        self.shuffled = nn.Linear(cfg.feature_dim, 1)

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """[B,T,3,H,W] -> [B,D] pooled appearance + motion features."""
        b = video.shape[0]
        x = F.interpolate(rearrange(video, "b t c h w -> (b t) c h w"), size=self.cfg.size, mode="area")
        x = rearrange(x, "(b t) c h w -> b t c h w", b=b)
        diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
        x = rearrange(torch.cat([x, diff], dim=2), "b t c h w -> (b t) c h w")
        x = rearrange(self.frame_net(x), "(b t) c h w -> b c t h w", b=b)
        motion = self.time_net(x)
        pooled = torch.cat([x.mean(dim=(2, 3, 4)), motion.abs().mean(dim=(2, 3, 4))], dim=1)
        return self.project(pooled)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """-> features and per-head logits (speed: ego metres per frame / 2)."""
        f = self.features(video)
        return {
            "features": f,
            "time_of_day": self.time_of_day(f),
            "crowdedness": self.crowdedness(f),
            "speed": self.speed(f)[:, 0],
            "shuffled": self.shuffled(f)[:, 0],
        }


def crop_boxes(frames: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """frames [N,3,H,W], boxes [N,4] normalised x1,y1,x2,y2 -> crops [N,3,size,size] (bilinear)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    theta = torch.zeros(len(boxes), 2, 3, dtype=frames.dtype, device=frames.device)
    theta[:, 0, 0], theta[:, 0, 2] = x2 - x1, x1 + x2 - 1
    theta[:, 1, 1], theta[:, 1, 2] = y2 - y1, y1 + y2 - 1
    grid = F.affine_grid(theta, [len(boxes), 3, size, size], align_corners=False)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)


class BoxProbe(nn.Module):
    """(frames [N,3,H,W], boxes [N,4] normalised) -> car logit [N]."""

    def __init__(self, cfg: ProbeConfig):
        super().__init__()
        self.cfg = cfg
        chans = (3, *cfg.crop_channels)
        self.net = nn.Sequential(
            *(_conv(a, b) for a, b in itertools.pairwise(chans)),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(chans[-1], 1),
        )

    def forward(self, frames: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """-> logits [N] that the box holds a car."""
        return self.net(crop_boxes(frames, boxes, self.cfg.crop_size))[:, 0]


def load_clip_probe(prefix) -> ClipProbe:
    """A ClipProbe checkpoint (safetensors + JSON config with a 'probe' entry)."""
    from drivesim.models.weights import load_checkpoint

    return load_checkpoint(prefix, lambda c: ClipProbe(probe_config(c["probe"])))


def load_box_probe(prefix) -> BoxProbe:
    """A BoxProbe checkpoint (safetensors + JSON config with a 'probe' entry)."""
    from drivesim.models.weights import load_checkpoint

    return load_checkpoint(prefix, lambda c: BoxProbe(probe_config(c["probe"])))
