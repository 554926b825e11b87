"""A PNG grid of frames with their conditioning boxes drawn over them (for eyes, not metrics)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from drivesim.utils import atomic_write, to_uint8


def draw_boxes(frame: np.ndarray, boxes: np.ndarray, colour=(255, 200, 0)) -> np.ndarray:
    """uint8 [H,W,3] + normalised xyxy boxes [N,4] -> copy with 1-px box outlines."""
    out = frame.copy()
    h, w = out.shape[:2]
    for x1, y1, x2, y2 in boxes:
        cv2.rectangle(out, (int(x1 * w), int(y1 * h)), (int(x2 * w) - 1, int(y2 * h) - 1), colour, 1)
    return out


def save_montage(path: str | Path, panels: list[tuple[str, torch.Tensor, dict, int]], columns: int,
                 scale: int = 2) -> Path:
    """panels: (title, frame [3,H,W] in [-1,1], condition dict, frame index) -> PNG grid at `path`."""
    tiles = []
    for title, frame, cond, index in panels:
        image = to_uint8(frame[None])[0]
        mask = cond["box_mask"][index].numpy().astype(bool)
        image = draw_boxes(image, cond["boxes"][index].numpy()[mask])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        cv2.putText(image, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(image)
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[r:r + columns], axis=1) for r in range(0, len(tiles), columns)]
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(png.tobytes()))
    return path
