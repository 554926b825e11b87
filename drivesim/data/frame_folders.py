"""Clips stored as image sequences: one folder of JPEG/PNG frames per clip, and the BDD100K MOT
layout.

    <any>/<clip>/000001.jpg ...              labels (optional): <any>/<clip>.json (Scalabel)
    <bdd>/images/track/<split>/<video>/<video>-0000001.jpg
    <bdd>/labels/box_track_20/<split>/<video>.json

Frames are ordered by file name. A label entry is matched to its frame by the file name in its
`name` field when that file exists, else by `frameIndex` (0 = the first file). The frame rate is
the one given, else read from the labels (the median step of their `timestamp` fields in ms, or
an `fps` frame attribute), else 5 fps for the BDD100K MOT layout (its published frame rate);
any other folder without one is an error that says how to give it.
"""

from __future__ import annotations

import itertools
import json
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from drivesim.data.labels import FrameLabel, LabelFormatError, from_scalabel

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
BDD_MOT_FPS = 5.0  # BDD100K MOT: frames sampled at 5 fps from the 30 fps videos
BDD_MOT_LABELS = ("labels", "box_track_20")
logger = logging.getLogger(__name__)


class FrameFolderError(ValueError):
    """An image-sequence folder that cannot be used; the message names the folder and the fix."""


@dataclass(frozen=True)
class FrameSequence:
    """One clip stored as image files; the same fields as a probed video (VideoInfo)."""

    path: Path
    fps: float
    num_frames: int
    labels: dict[int, FrameLabel] | None  # by frame position; None when there is no label file
    files: tuple[Path, ...]

    @property
    def duration_s(self) -> float:
        """Seconds of frames (num_frames / fps)."""
        return self.num_frames / self.fps

    def read_frames(self, indices: list[int]) -> list[np.ndarray]:
        """RGB uint8 [H,W,3] frames at the given positions (each file read once)."""
        cache: dict[int, np.ndarray] = {}
        for i in sorted(set(indices)):
            image = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
            if image is None:
                raise FrameFolderError(f"{self.files[i]}: cannot read this image (truncated or not an image)")
            cache[i] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return [cache[i] for i in indices]


def image_files(folder: Path) -> list[Path]:
    """The frame files directly inside `folder`, sorted by name (hidden files skipped)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def bdd_mot_labels(folder: Path) -> Path | None:
    """<bdd>/labels/box_track_20/<split>/<video>.json for <bdd>/images/track/<split>/<video>, else None."""
    parts = folder.resolve().parts
    if len(parts) < 5 or parts[-4:-2] != ("images", "track"):
        return None
    return Path(*parts[:-4], *BDD_MOT_LABELS, parts[-2], f"{parts[-1]}.json")


def labels_fps(entries: list[dict]) -> float | None:
    """Frame rate from Scalabel entries: median step of `timestamp` (ms), or an `fps` attribute."""
    stamps = sorted(
        (e["frameIndex"], float(e["timestamp"]))
        for e in entries
        if isinstance(e, dict) and "timestamp" in e and "frameIndex" in e
    )
    steps = [
        (t1 - t0) / (i1 - i0) for (i0, t0), (i1, t1) in itertools.pairwise(stamps) if i1 > i0 and t1 > t0
    ]
    if steps:
        return 1000.0 / statistics.median(steps)
    for entry in entries:
        fps = (entry.get("attributes") or {}).get("fps") if isinstance(entry, dict) else None
        if fps is not None:
            return float(fps)
    return None


def _by_position(frames: list[FrameLabel], entries: list[dict], files: list[Path]) -> dict[int, FrameLabel]:
    """Label entries -> {frame position: FrameLabel}: by file name when it matches, else frameIndex."""
    position = {p.name: i for i, p in enumerate(files)}
    names = {int(e["frameIndex"]): Path(str(e.get("name", ""))).name for e in entries}
    out = {}
    for frame in frames:
        i = position.get(names.get(frame.frame_index, ""), frame.frame_index)
        if 0 <= i < len(files):
            out[i] = FrameLabel(i, frame.boxes, frame.attributes)
    return out


def probe_frame_folder(
    folder: str | Path, fps: float | None = None, labels: str | Path | None = None
) -> FrameSequence:
    """An image-sequence folder -> FrameSequence (frame rate: `fps`, else the labels, else BDD MOT's)."""
    folder = Path(folder)
    files = image_files(folder)
    if not files:
        raise FrameFolderError(f"{folder}: no {'/'.join(IMAGE_SUFFIXES)} frames in this folder")
    bdd = bdd_mot_labels(folder)
    label_path = Path(labels) if labels else bdd if bdd is not None else folder.with_suffix(".json")
    entries = None
    if label_path.is_file():
        try:
            entries = json.loads(label_path.read_text())
        except json.JSONDecodeError as e:
            raise LabelFormatError(f"{label_path}: not valid JSON ({e})") from None
    frames = from_scalabel(entries, str(label_path)) if entries is not None else None
    rate = fps or (labels_fps(entries) if entries else None)
    if rate is None and bdd is not None:
        rate = BDD_MOT_FPS
        logger.info("%s: BDD100K MOT layout, no frame rate in its labels: %g fps", folder, rate)
    if not rate or rate <= 0:
        raise FrameFolderError(
            f"{folder}: image sequence without a frame rate; give it (source_fps=, "
            "--source-fps) or put `timestamp` (ms) fields or an `fps` attribute in "
            f"{label_path.name}"
        )
    # frames come from the entries: both are there or neither
    by_position = _by_position(frames, cast("list[dict]", entries), files) if frames is not None else None
    return FrameSequence(folder, float(rate), len(files), by_position, tuple(files))


def find_frame_folders(root: str | Path, skip_suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Folders under root (root included) holding frame images and no file ending in skip_suffixes
    (a folder with videos is a video folder, its PNGs are thumbnails)."""
    root = Path(root)
    found = []
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        if any(part.startswith(".") for part in folder.relative_to(root).parts):
            continue
        names = [p.suffix.lower() for p in folder.iterdir() if p.is_file()]
        if any(s in IMAGE_SUFFIXES for s in names) and not any(s in skip_suffixes for s in names):
            found.append(folder)
    return found
