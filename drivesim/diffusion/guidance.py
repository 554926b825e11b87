"""Classifier-free guidance over the condition set, with separate scene and box scales.

out = u + s_scene * (c_scene - u) + s_boxes * (c_full - c_scene), where u is the fully
unconditional prediction, c_scene sees only time of day and crowdedness, c_full sees
everything. Scales may ramp linearly over frames (a per-frame guidance ramp).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from conditioners.dropout import null_conditions


@dataclass(frozen=True)
class GuidanceScales:
    scene: float = 3.0
    boxes: float = 2.0
    frame_ramp: tuple[float, float] | None = None  # multiplier at first and last frame

    @property
    def is_identity(self) -> bool:
        return self.scene == 1.0 and self.boxes == 1.0 and self.frame_ramp is None


def _ramp(scales: GuidanceScales, num_frames: int, like: torch.Tensor) -> torch.Tensor:
    """Per-frame multiplier shaped [1,T,1,1,1]."""
    if scales.frame_ramp is None:
        return torch.ones(1, num_frames, 1, 1, 1, dtype=like.dtype)
    start, end = scales.frame_ramp
    return torch.linspace(start, end, num_frames, dtype=like.dtype).view(1, -1, 1, 1, 1)


def combine(uncond: torch.Tensor, scene: torch.Tensor, full: torch.Tensor,
            scales: GuidanceScales) -> torch.Tensor:
    """Three [B,T,...] predictions -> guided [B,T,...]."""
    ramp = _ramp(scales, uncond.shape[1], uncond)
    return uncond + scales.scene * ramp * (scene - uncond) + scales.boxes * ramp * (full - scene)


def _cat_conditions(conds: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([c[k] for c in conds]) for k in conds[0]}


def guided_prediction(model, x: torch.Tensor, timesteps: torch.Tensor,
                      cond: dict[str, torch.Tensor], scales: GuidanceScales) -> torch.Tensor:
    """x [B,T,C,h,w] -> guided prediction, the three branches in one batched forward."""
    b = x.shape[0]
    branches = [null_conditions(cond), null_conditions(cond, scene=False), cond]
    out = model(torch.cat([x] * 3), torch.cat([timesteps] * 3), _cat_conditions(branches))
    uncond, scene, full = out.split(b)
    return combine(uncond, scene, full, scales)


__all__ = ["GuidanceScales", "combine", "guided_prediction"]
