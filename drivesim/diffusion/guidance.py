"""Classifier-free guidance over the condition set and the context frames.

out = u + s_scene * (c_scene - u) + s_boxes * (c_full - c_scene) + (s_context - 1) * (c_full - c_free)
where u is the prediction without conditions, c_scene sees only time of day and
crowdedness, c_full sees everything (all three see the context frames, if any) and c_free
is c_full without context frames. Scales may ramp linearly over frames (a per-frame
guidance ramp). Context guidance has no effect when no frame is known (c_full == c_free).
`rescale` (phi, Lin et al. 2024 section 3.4) pulls the guided prediction's per-clip std back
towards c_full's: large scales on a zero-terminal-SNR v-model otherwise over-expose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from conditioners.context import Context
from conditioners.dropout import null_conditions
from drivesim.data.conditions import Conditions, as_conditions, tensor_dict


@dataclass(frozen=True)
class GuidanceScales:
    scene: float = 3.0
    boxes: float = 2.0
    frame_ramp: tuple[float, float] | None = None  # multiplier at first and last frame
    context: float = 1.0  # context-frame guidance (1 = off)
    rescale: float = 0.7  # CFG rescale phi in [0, 1] (0 = off)

    @property
    def is_identity(self) -> bool:
        return self.scene == 1.0 and self.boxes == 1.0 and self.frame_ramp is None and self.context == 1.0


def rescale_guidance(guided: torch.Tensor, full: torch.Tensor, phi: float) -> torch.Tensor:
    """[B,...] guided, [B,...] conditional -> phi * guided * std(full) / std(guided) + (1 - phi) * guided."""
    if phi == 0:
        return guided
    dims = tuple(range(1, guided.dim()))
    ratio = full.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True).clamp(min=1e-8)
    return phi * guided * ratio + (1 - phi) * guided


def _ramp(scales: GuidanceScales, num_frames: int, like: torch.Tensor) -> torch.Tensor:
    """Per-frame multiplier shaped [1,T,1,1,1]."""
    if scales.frame_ramp is None:
        return torch.ones(1, num_frames, 1, 1, 1, dtype=like.dtype, device=like.device)
    start, end = scales.frame_ramp
    return torch.linspace(start, end, num_frames, dtype=like.dtype, device=like.device).view(1, -1, 1, 1, 1)


def combine(
    uncond: torch.Tensor, scene: torch.Tensor, full: torch.Tensor, scales: GuidanceScales
) -> torch.Tensor:
    """Three [B,T,...] predictions -> guided [B,T,...]."""
    ramp = _ramp(scales, uncond.shape[1], uncond)
    return uncond + scales.scene * ramp * (scene - uncond) + scales.boxes * ramp * (full - scene)


def _cat_conditions(conds: list[Conditions]) -> Conditions:
    values = [tensor_dict(c) for c in conds]
    return as_conditions({k: torch.cat([v[k] for v in values]) for k in values[0]})


class GuidedDenoiser:
    """(x [B,T,C,h,w], timesteps [B]) -> the guided prediction; model(x, t, cond, context=...) runs
    all branches in one batched forward (three, or four with context guidance). The branches'
    conditions are built once per sampling run; `prepare` may add what depends on them alone
    (VideoUNet.prepare_conditions: the box layout and tokens), so no denoising step redoes it."""

    def __init__(
        self,
        model,
        cond: Conditions,
        scales: GuidanceScales,
        context: Context | None = None,
        prepare: Callable[[Conditions], Conditions] | None = None,
    ):
        self.model, self.scales = model, scales
        branches = [null_conditions(cond), null_conditions(cond, scene=False), cond]
        self.guide_context = context is not None and scales.context != 1.0
        if self.guide_context:
            branches.append(cond)
        self.n = len(branches)
        self.cond = _cat_conditions(branches)
        if prepare is not None:
            self.cond = prepare(self.cond)
        self.context = None
        if context is not None:
            extra = [context.without_frames()] if self.guide_context else []
            self.context = Context.cat([context] * 3 + extra)

    def __call__(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        b, n, scales = x.shape[0], self.n, self.scales
        out = self.model(torch.cat([x] * n), torch.cat([timesteps] * n), self.cond, context=self.context)
        uncond, scene, full, *free = out.split(b)
        guided = combine(uncond, scene, full, scales)
        if self.guide_context:
            guided = guided + (scales.context - 1.0) * _ramp(scales, x.shape[1], x) * (full - free[0])
        return rescale_guidance(guided, full, scales.rescale)


def guided_prediction(
    model,
    x: torch.Tensor,
    timesteps: torch.Tensor,
    cond: Conditions,
    scales: GuidanceScales,
    context: Context | None = None,
) -> torch.Tensor:
    """x [B,T,C,h,w] -> guided prediction in one call (GuidedDenoiser for a sampling loop)."""
    return GuidedDenoiser(model, cond, scales, context)(x, timesteps)


__all__ = ["GuidanceScales", "GuidedDenoiser", "combine", "guided_prediction", "rescale_guidance"]
