"""Labelled source clips for `drivesim augment`: every video / frame folder of a folder, or every
row of a catalog, with its frame reader, per-frame labels and scene conditions.

A folder clip's id is its path below the folder without suffix ('/' -> '__'); a catalog clip keeps
its clip_id. Time of day comes from the labels' `timeofday` (BDD names) or the catalog row;
crowdedness from a `crowdedness` attribute (a bucket name or a car count), else the most boxes
in any labelled frame, else unknown (None).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivesim.data.catalog import INFO, read_clips
from drivesim.data.catalog_dataset import boxes_by_frame
from drivesim.data.catalog_query import catalog_filter
from drivesim.data.conditions import CROWDEDNESS, crowdedness_of_count
from drivesim.data.labels import TIME_OF_DAY_FROM_BDD, FrameLabel
from drivesim.data.video_folder import decode_frames, find_sources


@dataclass(frozen=True)
class SourceClip:
    """A real (or catalog) clip to make variants of."""

    clip_id: str
    path: str  # the video file, frame folder, or `catalog_root#clip_id`
    fps: float
    num_frames: int
    labels: dict[int, FrameLabel] | None  # by frame index; None = no label file (boxes unknown)
    time_of_day: str | None
    crowdedness: str | None
    reader: Callable[[list[int]], list[np.ndarray]]

    @property
    def duration_s(self) -> float:
        """Seconds of frames (num_frames / fps)."""
        return self.num_frames / self.fps

    @property
    def boxes_known(self) -> bool:
        """Whether every frame has annotated boxes (an empty list = no cars)."""
        labels = self.labels
        return labels is not None and all(
            labels.get(i) is not None and labels[i].boxes is not None for i in range(self.num_frames)
        )

    def read_frames(self, indices: list[int]) -> list[np.ndarray]:
        """RGB uint8 [H,W,3] frames at the given indices."""
        return self.reader(indices)


def scene_of_labels(labels: dict[int, FrameLabel] | None) -> tuple[str | None, str | None]:
    """(time_of_day, crowdedness) from per-frame labels (first frame that says, else box counts)."""
    frames = [labels[i] for i in sorted(labels)] if labels else []
    tod = next(
        (
            TIME_OF_DAY_FROM_BDD.get(f.attributes["timeofday"])
            for f in frames
            if f.attributes.get("timeofday")
        ),
        None,
    )
    crowd = next((f.attributes["crowdedness"] for f in frames if f.attributes.get("crowdedness")), None)
    if crowd is not None and crowd not in CROWDEDNESS:
        crowd = crowdedness_of_count(int(crowd)) if crowd.isdigit() else None
    counts = [len(f.boxes) for f in frames if f.boxes is not None]
    if crowd is None and counts:
        crowd = crowdedness_of_count(max(counts))
    return tod, crowd


def folder_sources(root: str | Path, source_fps: float | None = None) -> list[SourceClip]:
    """Every video and image-sequence folder under root (or the one file / folder root is)."""
    root = Path(root)
    out = []
    for info in find_sources(root, source_fps):
        rel = info.path.relative_to(root) if info.path != root and root.is_dir() else Path(info.path.name)
        clip_id = "__".join(rel.with_suffix("").parts) if rel.parts else info.path.name
        tod, crowd = scene_of_labels(info.labels)
        out.append(
            SourceClip(
                clip_id, str(info.path), info.fps, info.num_frames, info.labels, tod, crowd, info.read_frames
            )
        )
    return out


def catalog_sources(root: str | Path, filter=None) -> list[SourceClip]:
    """Every catalog row matching `filter` (drivesim.data.catalog_query) as a source clip."""
    root = Path(root)
    columns = ["clip_id", "mp4_path", "fps", "frames", "time_of_day", "crowdedness", "boxes", "boxes_known"]
    out = []
    for row in read_clips(root, catalog_filter(filter), columns).to_pylist():
        labels = None
        if row["boxes_known"] is not False:
            by_frame = boxes_by_frame(row["boxes"] or [])
            labels = {i: FrameLabel(i, by_frame.get(i, []), {}) for i in range(row["frames"])}
        path, fps = root / row["mp4_path"], row["fps"]
        out.append(
            SourceClip(
                row["clip_id"],
                f"{root}#{row['clip_id']}",
                fps,
                row["frames"],
                labels,
                row["time_of_day"],
                row["crowdedness"],
                lambda idx, path=path, fps=fps: decode_frames(path, idx, fps),
            )
        )
    return sorted(out, key=lambda s: s.clip_id)


def open_sources(input: str | Path, source_fps: float | None = None, filter=None) -> list[SourceClip]:
    """A catalog (it has meta/info.json) or a folder / file of real clips -> source clips."""
    input = Path(input)
    if (input / INFO).is_file():
        return catalog_sources(input, filter)
    if filter is not None:
        raise ValueError(f"{input}: --where filters catalog rows; this is a folder, not a catalog")
    return folder_sources(input, source_fps)
