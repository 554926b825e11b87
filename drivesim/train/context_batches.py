"""Training batches of the masked-context models: which frames are known, at which stage.

prediction: 0, 1 or 2 leading context frames at random (0 = the unconditional branch of
context guidance). interpolation: a window of 4k+1 frames whose every 4th frame is known,
stage 1 (T->4T) from key-rate clips or stage 2 (4T->16T) from 4x faster clips; the context
is dropped with probability `drop` so context guidance has an unconditional branch.
"""

from __future__ import annotations

import torch

from conditioners.context import CONTEXT_STAGES, Context, keyframe_mask, leading_mask
from drivesim.data.conditions import PER_FRAME_KEYS, Conditions, as_conditions, tensor_dict

INTERPOLATION_FACTOR = 4


def frame_window(
    latents: torch.Tensor, cond: Conditions, start: int, length: int
) -> tuple[torch.Tensor, Conditions]:
    """[B,T,C,h,w] + per-frame conditions -> frames start..start+length-1 of every clip."""
    if start < 0 or start + length > latents.shape[1]:
        raise ValueError(f"window {start}..{start + length - 1} outside {latents.shape[1]} frames")
    out = tensor_dict(cond)
    for k in PER_FRAME_KEYS:
        if k in out and out[k].dim() >= 2 and out[k].shape[1] == latents.shape[1]:
            out[k] = out[k][:, start : start + length]
    return latents[:, start : start + length], as_conditions(out)


def prediction_context(latents: torch.Tensor, generator: torch.Generator, max_context: int = 2) -> Context:
    """[B,T,C,h,w] (scaled) -> Context with 0..max_context leading known frames per clip."""
    b, t = latents.shape[:2]
    counts = torch.randint(0, max_context + 1, (b,), generator=generator)
    return Context(latents, leading_mask(b, t, counts), torch.full((b,), CONTEXT_STAGES.index("prediction")))


def interpolation_context(
    latents: torch.Tensor, stage: int, generator: torch.Generator, drop: float = 0.1
) -> Context:
    """[B,4k+1,C,h,w] (scaled) -> Context with every 4th frame known (dropped with prob. drop)."""
    b, t = latents.shape[:2]
    if (t - 1) % INTERPOLATION_FACTOR:
        raise ValueError(f"interpolation windows have 4k+1 frames, got {t}")
    mask = keyframe_mask(b, t, INTERPOLATION_FACTOR)
    mask[torch.rand(b, generator=generator) < drop] = 0
    return Context(latents, mask, torch.full((b,), stage, dtype=torch.long))


def random_window(
    latents: torch.Tensor, cond: Conditions, length: int, generator: torch.Generator
) -> tuple[torch.Tensor, Conditions]:
    """A random window of `length` frames (same start for the batch)."""
    start = int(torch.randint(0, latents.shape[1] - length + 1, (1,), generator=generator))
    return frame_window(latents, cond, start, length)
