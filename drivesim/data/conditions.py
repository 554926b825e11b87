"""Condition vocabulary and the per-clip condition dict that every dataset yields.

A sample is ``(frames, conditions)``: frames ``[T,3,H,W]`` float32 in [-1,1] (``[3,H,W]`` in
image mode) and a dict of tensors (batched by torch's default collate):

- ``time_of_day``  long []          index into TIME_OF_DAY, -1 unknown
- ``crowdedness``  long []          index into CROWDEDNESS, -1 unknown
- ``boxes``        float [T,N,4]    x1,y1,x2,y2 normalised to [0,1] of the output frame
- ``box_class``    long [T,N]       index into BOX_CLASSES
- ``box_track``    long [T,N]       track id, -1 for padding
- ``box_mask``     bool [T,N]       True where a box is real (not padding)
- ``boxes_known``  bool []          False when the source has no box annotations
- ``ego_speed``    float []         m/s, NaN unknown
- ``fps``          float []         frame rate of the sampled clip
(image mode drops the T axis of the box tensors.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NotRequired, TypedDict, cast

import torch

from drivesim.world.categories import CATEGORIES
from drivesim.world.labels import CROWDEDNESS_CARS, Box

TIME_OF_DAY = ("day", "night")
CROWDEDNESS = ("empty", "light", "moderate", "crowded")
BOX_CLASSES = CATEGORIES  # BDD100K names the world renders, car first (index 0 = a 1-class model's)
MAX_BOXES = 32
PER_FRAME_KEYS = ("boxes", "box_class", "box_track", "box_mask")  # the condition tensors with a T axis
UNKNOWN = -1


class Conditions(TypedDict):
    """The condition dict (layouts in the module docstring; batched: a leading B axis)."""

    time_of_day: torch.Tensor
    crowdedness: torch.Tensor
    boxes: torch.Tensor
    box_class: torch.Tensor
    box_track: torch.Tensor
    box_mask: torch.Tensor
    boxes_known: torch.Tensor
    ego_speed: torch.Tensor
    fps: torch.Tensor
    # VideoUNet.prepare_conditions: box tokens and layout raster computed once per sampling run
    prepared_tokens: NotRequired[torch.Tensor]
    prepared_layout: NotRequired[torch.Tensor]


def as_conditions(values: Mapping[str, torch.Tensor]) -> Conditions:
    """A mapping built key by key (e.g. from tensor_dict) as Conditions."""
    return cast(Conditions, dict(values))


def tensor_dict(cond: Conditions) -> dict[str, torch.Tensor]:
    """A plain copy of cond, for code that treats every key alike (batching, slicing, moving)."""
    return cast("dict[str, torch.Tensor]", dict(cond))


def crowdedness_of_count(n_cars: int) -> str:
    """Bucket name for a car count (counts above the last bucket are 'crowded')."""
    for name, (lo, hi) in CROWDEDNESS_CARS.items():
        if lo <= n_cars <= hi:
            return name
    return "crowded"


def _index(vocab: tuple[str, ...], value: str | None) -> int:
    return vocab.index(value) if value in vocab else UNKNOWN


def clip_conditions(
    frame_boxes: list[list[Box]] | None,
    frame_size: tuple[int, int],
    time_of_day: str | None,
    crowdedness: str | None,
    fps: float,
    ego_speed: float | None = None,
    max_boxes: int = MAX_BOXES,
    num_frames: int | None = None,
) -> Conditions:
    """Build the condition dict; frame_boxes in pixels of frame_size=(H,W), None = unknown."""
    h, w = frame_size
    t = len(frame_boxes) if frame_boxes is not None else int(num_frames or 1)
    boxes = torch.zeros(t, max_boxes, 4)
    box_class = torch.zeros(t, max_boxes, dtype=torch.long)
    box_track = torch.full((t, max_boxes), -1, dtype=torch.long)
    box_mask = torch.zeros(t, max_boxes, dtype=torch.bool)
    for i, frame in enumerate(frame_boxes or []):
        # Keep the largest boxes when a frame has more than max_boxes.
        for j, b in enumerate(sorted(frame, key=lambda b: -b.area)[:max_boxes]):
            boxes[i, j] = torch.tensor([b.x1 / w, b.y1 / h, b.x2 / w, b.y2 / h]).clamp(0, 1)
            box_class[i, j] = BOX_CLASSES.index(b.category) if b.category in BOX_CLASSES else 0
            box_track[i, j] = b.track_id
            box_mask[i, j] = True
    return {
        "time_of_day": torch.tensor(_index(TIME_OF_DAY, time_of_day)),
        "crowdedness": torch.tensor(_index(CROWDEDNESS, crowdedness)),
        "boxes": boxes,
        "box_class": box_class,
        "box_track": box_track,
        "box_mask": box_mask,
        "boxes_known": torch.tensor(frame_boxes is not None),
        "ego_speed": torch.tensor(math.nan if ego_speed is None else float(ego_speed)),
        "fps": torch.tensor(float(fps)),
    }


def to_image_conditions(cond: Conditions) -> Conditions:
    """Drop the T axis (T must be 1) of a clip condition dict for image mode."""
    values = tensor_dict(cond)
    return as_conditions(
        {k: (v[0] if v.dim() >= 1 and k in PER_FRAME_KEYS else v) for k, v in values.items()}
    )
