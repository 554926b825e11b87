"""Clip sampling arithmetic: fps resampling, clip counts, 1:2 crops and box transforms."""

from __future__ import annotations

import math
from dataclasses import replace

from drivesim.data.labels import Box


def resample_indices(src_fps: float, dst_fps: float, start_s: float, num_frames: int) -> list[int]:
    """Source frame index nearest to each target time start_s + k / dst_fps."""
    return [math.floor((start_s + k / dst_fps) * src_fps + 0.5 + 1e-9) for k in range(num_frames)]


def num_clips(duration_s: float, num_frames: int, dst_fps: float, stride_s: float) -> int:
    """How many clips of num_frames at dst_fps start every stride_s within duration_s."""
    span = (num_frames - 1) / dst_fps
    if duration_s < span:
        return 0
    return math.floor((duration_s - span) / stride_s + 1e-9) + 1


def center_crop_to_aspect(src_h: int, src_w: int, aspect_w_over_h: float = 2.0) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the largest centred crop with width / height = aspect."""
    if src_w / src_h > aspect_w_over_h:  # too wide: crop columns
        w = round(src_h * aspect_w_over_h)
        x0 = (src_w - w) // 2
        return 0, src_h, x0, x0 + w
    h = round(src_w / aspect_w_over_h)
    y0 = (src_h - h) // 2
    return y0, y0 + h, 0, src_w


def transform_box(box: Box, crop: tuple[int, int, int, int], out_hw: tuple[int, int]) -> Box | None:
    """Map a source-pixel box through crop + resize, clipped to the output; None if outside."""
    y0, y1, x0, x1 = crop
    sy, sx = out_hw[0] / (y1 - y0), out_hw[1] / (x1 - x0)
    mapped = ((box.x1 - x0) * sx, (box.y1 - y0) * sy, (box.x2 - x0) * sx, (box.y2 - y0) * sy)
    out_h, out_w = out_hw
    nx1, nx2 = (min(max(v, 0.0), out_w) for v in mapped[0::2])
    ny1, ny2 = (min(max(v, 0.0), out_h) for v in mapped[1::2])
    if nx2 - nx1 <= 0 or ny2 - ny1 <= 0:
        return None
    slack = 1e-6 * max(out_hw)  # a box ending on the crop's edge maps to it only up to rounding
    if all(abs(a - b) <= slack for a, b in zip((nx1, ny1, nx2, ny2), mapped)):
        return replace(box, x1=nx1, y1=ny1, x2=nx2, y2=ny2)
    # The crop cut the object. Its silhouette is not known here: the share of the box kept
    # estimates the share of what was seen that is left.
    kept = (nx2 - nx1) * (ny2 - ny1) / ((mapped[2] - mapped[0]) * (mapped[3] - mapped[1]))
    visibility = box.visibility * kept
    return replace(box, x1=nx1, y1=ny1, x2=nx2, y2=ny2, visibility=visibility, truncated=True)
