"""Batching clips whose frames hold different numbers of boxes.

Datasets pad every frame to a fixed `max_boxes` slots (drivesim.data.conditions), or, with
`max_boxes=None`, only to the clip's own largest count. `collate_clips` cuts the slots no clip
of the batch uses and pads the rest to the batch's largest count, so a batch is as wide as its
busiest frame: boxes [B,T,N,4], box_class / box_track / box_mask [B,T,N] (image mode: no T).
"""

from __future__ import annotations

import torch
from torch.utils.data import default_collate

from drivesim.data.conditions import Conditions, as_conditions, tensor_dict

# per-frame box keys -> (value for padding slots, box axis counted from the end)
BOX_KEYS = {"boxes": (0.0, -2), "box_class": (0, -1), "box_track": (-1, -1), "box_mask": (False, -1)}


def used_slots(cond: Conditions) -> int:
    """Box slots in use: 1 + the last slot any frame fills (0 when there are no boxes)."""
    mask = cond["box_mask"]
    if mask.numel() == 0 or not mask.any():
        return 0
    per_slot = mask.reshape(-1, mask.shape[-1]).any(0)
    return int(per_slot.nonzero().max()) + 1


def pad_boxes(cond: Conditions, slots: int) -> Conditions:
    """Condition dict -> the same with exactly `slots` box slots (cut unused ones, pad with padding)."""
    out = tensor_dict(cond)
    for key, (fill, axis) in BOX_KEYS.items():
        value = out[key]
        have = value.shape[axis]
        if have >= slots:
            out[key] = value.narrow(value.dim() + axis, 0, slots)
            continue
        shape = list(value.shape)
        shape[axis] = slots - have
        out[key] = torch.cat([value, torch.full(shape, fill, dtype=value.dtype)], dim=axis)
    return as_conditions(out)


def collate_clips(
    batch: list[tuple[torch.Tensor, Conditions]],
) -> tuple[torch.Tensor, Conditions]:
    """[(frames [T,3,H,W], cond)] with any box counts -> (frames [B,T,3,H,W], cond with N = batch max)."""
    slots = max(used_slots(cond) for _, cond in batch)
    return default_collate([(frames, pad_boxes(cond, slots)) for frames, cond in batch])
