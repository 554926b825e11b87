"""A PNG of clips with their labels (green) and the real-photo detector's vehicles (magenta).

One row per clip: its first, middle and last frame (of a reference video: from `from_s` on),
each scaled to one tile height, so real footage and generated clips sit side by side.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from drivesim.eval.detector import VEHICLES, Detector
from drivesim.eval.detector_score import HIT_CONF, clip_sources
from drivesim.eval.montage import _write_png

LABEL_RGB = (60, 230, 60)
DETECTION_RGB = (255, 0, 255)


def annotate(frame: np.ndarray, boxes, detections, scale: float) -> np.ndarray:
    """uint8 [H,W,3] -> scaled copy with label boxes and vehicle detections (>= HIT_CONF, scored)."""
    tile = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    for b in boxes or []:
        p1, p2 = (round(b.x1 * scale), round(b.y1 * scale)), (round(b.x2 * scale), round(b.y2 * scale))
        cv2.rectangle(tile, p1, p2, LABEL_RGB, 1)
    for d in detections:
        if d.category in VEHICLES and d.score >= HIT_CONF:
            p1, p2 = (round(d.x1 * scale), round(d.y1 * scale)), (round(d.x2 * scale), round(d.y2 * scale))
            cv2.rectangle(tile, p1, p2, DETECTION_RGB, 1)
            cv2.putText(
                tile,
                f"{d.score:.2f}",
                (p1[0], max(p1[1] - 2, 8)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.35,
                DETECTION_RGB,
                1,
                cv2.LINE_AA,
            )
    return tile


def detector_montage(
    paths: list[tuple[str | Path, float]],
    detector: Detector,
    out: str | Path,
    frames_per_clip: int = 3,
    tile_height: int = 256,
    max_clips: int = 6,
) -> Path:
    """(clip set, from_s) pairs -> PNG at `out`: a row per clip (up to max_clips per set)."""
    rows = []
    for path, from_s in paths:
        for source in clip_sources(path)[:max_clips]:
            first = int(from_s * source.fps)
            indices = np.linspace(first, source.num_frames - 1, frames_per_clip).round().astype(int).tolist()
            tiles = []
            for index, frame in zip(indices, source.read_frames(indices)):
                label = (source.labels or {}).get(index)
                tile = annotate(
                    frame,
                    label.boxes if label else None,
                    detector.detect(frame),
                    tile_height / frame.shape[0],
                )
                cv2.putText(
                    tile,
                    f"{source.path.name} #{index}",
                    (4, 14),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.45,
                    (255, 255, 255),
                    1,
                    cv2.LINE_AA,
                )
                tiles.append(tile)
            rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return _write_png(out, np.concatenate(rows, axis=0))
