"""Pictures for the scene editor: the layout frame boxes are drawn on, and clips with their
conditioning boxes drawn over every frame (the page's boxes toggle)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import cv2
import numpy as np

from drivesim.data.labels import FrameLabel
from drivesim.eval.montage import draw_boxes
from drivesim.export.video import Mp4Writer
from drivesim.preview.boxes import BoxRow
from drivesim.scenario import Scenario
from drivesim.world import World

LAYOUT_SIZE = (256, 512)  # height, width of the layout frame in the page
LAYOUT_BOXES = (0, 255, 255)  # every conditioning box the world lays out (cyan)
TABLE_START, TABLE_END = (255, 220, 0), (255, 120, 0)  # the table's boxes: start (yellow), end (orange)


def normalised_boxes(label: FrameLabel, size: tuple[int, int]) -> np.ndarray:
    """A frame's boxes in pixels of a (H,W) frame -> normalised xyxy [N,4]."""
    h, w = size
    return np.array(
        [[b.x1 / w, b.y1 / h, b.x2 / w, b.y2 / h] for b in label.boxes or []], np.float32
    ).reshape(-1, 4)


def line_width(size: tuple[int, int]) -> int:
    """Box outline width in pixels for a (H,W) frame: 1 at 128x256, 4 at 512x1024."""
    return max(1, size[0] // 128)


def draw_clip_boxes(frames: np.ndarray, labels: list[FrameLabel]) -> np.ndarray:
    """uint8 [T,H,W,3] + per-frame labels in pixels of those frames -> copy with the boxes drawn."""
    if not len(frames):
        return frames.copy()
    size = frames.shape[1:3]
    return np.stack(
        [
            draw_boxes(f, normalised_boxes(lab, size), LAYOUT_BOXES, line_width(size))
            if lab.boxes
            else f.copy()
            for f, lab in zip(frames, labels)
        ]
    )


def boxed_copy(video: str | Path, labels: list[FrameLabel], out: str | Path, fps: float) -> Path:
    """An mp4 -> the same clip with its labels' boxes drawn on every frame (H.264, atomic)."""
    with av.open(str(video)) as container, Mp4Writer(out, fps) as writer:
        for i, frame in enumerate(container.decode(video=0)):
            image = frame.to_ndarray(format="rgb24")
            if i < len(labels) and labels[i].boxes:
                size = image.shape[:2]
                image = draw_boxes(image, normalised_boxes(labels[i], size), LAYOUT_BOXES, line_width(size))
            writer.write(image)
    return Path(out)


def _pixel(box, size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    h, w = size
    x1, y1, x2, y2 = box
    return (int(x1 * w), int(y1 * h)), (max(int(x2 * w) - 1, 0), max(int(y2 * h) - 1, 0))


def layout_frame(
    scenario: Scenario | None,
    rows: list[BoxRow],
    size: tuple[int, int] = LAYOUT_SIZE,
    time_of_day: str = "day",
) -> np.ndarray:
    """The scene's first frame as the procedural world lays it out (road, cars, every conditioning
    box in cyan) with the table's boxes over it (start yellow, end orange) -> uint8 [H,W,3] RGB.
    scenario None (an invalid scene): a plain frame of `time_of_day` with the table's boxes."""
    h, w = size
    if scenario is not None:
        spec = dataclasses.replace(scenario.to_world_spec(), num_frames=1, height=h, width=w)
        image, label = next(World(spec).frames())
        image = draw_boxes(image, normalised_boxes(label, size), LAYOUT_BOXES)
    else:
        image = np.full((h, w, 3), 150 if time_of_day == "day" else 30, np.uint8)
    for row in rows:
        (a, b), end = _pixel(row.box, size), row.end_box()
        cv2.rectangle(image, a, b, TABLE_START, 2)
        cv2.putText(
            image,
            str(row.id) if row.category == "car" else f"{row.id} {row.category}",
            (a[0] + 2, max(a[1] - 3, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            TABLE_START,
            1,
            cv2.LINE_AA,
        )
        if end is not None:
            (c, d) = _pixel(end, size)
            cv2.rectangle(image, c, d, TABLE_END, 1)
            cv2.arrowedLine(
                image,
                ((a[0] + b[0]) // 2, b[1]),
                ((c[0] + d[0]) // 2, d[1]),
                TABLE_END,
                1,
                cv2.LINE_AA,
                tipLength=0.2,
            )
    return image
