"""Per-frame box labels and the BDD100K / Scalabel video label JSON format.

A Scalabel video label file is a JSON list with one entry per frame:
``{"name", "videoName", "frameIndex", "attributes": {"timeofday", "crowdedness", ...},
"labels": [{"id", "category", "box2d": {"x1","y1","x2","y2"}, "attributes": {...}}]}``.
A frame with no ``"labels"`` key has *unknown* boxes (not annotated), which differs from
``"labels": []`` (annotated, no objects).
"""

from __future__ import annotations

import json
from pathlib import Path

from drivesim.world.labels import Box, FrameLabel

__all__ = [
    "TIME_OF_DAY_FROM_BDD",
    "Box",
    "FrameLabel",
    "LabelFormatError",
    "from_scalabel",
    "read_scalabel",
    "to_scalabel",
]

# Scalabel/BDD100K names -> drivesim names (drivesim.world.labels.BDD_TIME_OF_DAY: the other way).
TIME_OF_DAY_FROM_BDD = {"daytime": "day", "night": "night", "dawn/dusk": "day"}

VISIBILITY_DECIMALS = 4  # what a label file keeps of a box's visible share (and a catalog row too)


def to_scalabel(frames: list[FrameLabel], video_name: str) -> list[dict]:
    """FrameLabels -> Scalabel/BDD100K video label entries (JSON-ready)."""
    out = []
    for frame in frames:
        entry = {
            "name": f"{video_name}/{frame.frame_index:05d}.jpg",
            "videoName": video_name,
            "frameIndex": frame.frame_index,
            "attributes": dict(frame.attributes),
        }
        if frame.boxes is not None:
            entry["labels"] = [
                {
                    "id": str(b.track_id),
                    "category": b.category,
                    "attributes": {
                        "occluded": b.occluded,
                        "truncated": b.truncated,
                        "visibility": round(b.visibility, VISIBILITY_DECIMALS),
                    },
                    "box2d": {"x1": b.x1, "y1": b.y1, "x2": b.x2, "y2": b.y2},
                }
                for b in frame.boxes
            ]
        out.append(entry)
    return out


class LabelFormatError(ValueError):
    """A label file that does not follow the Scalabel video format."""


def from_scalabel(entries: list[dict], source: str = "<labels>") -> list[FrameLabel]:
    """Scalabel/BDD100K video label entries -> FrameLabels sorted by frame index."""
    if not isinstance(entries, list):
        raise LabelFormatError(f"{source}: expected a JSON list of frames, got {type(entries).__name__}")
    frames = []
    for i, entry in enumerate(entries):
        if "frameIndex" not in entry:
            raise LabelFormatError(f"{source}: frame entry {i} has no 'frameIndex'")
        boxes = None
        if "labels" in entry and entry["labels"] is not None:
            boxes = []
            for lab in entry["labels"]:
                if "box2d" not in lab:
                    continue  # polygons / poly2d etc. are not boxes
                b = lab["box2d"]
                try:
                    track = int(lab.get("id", -1))
                except (TypeError, ValueError):
                    track = abs(hash(lab.get("id"))) % (2**31)
                attributes = lab.get("attributes") or {}
                visibility = float(attributes.get("visibility", 1.0))
                boxes.append(
                    Box(
                        float(b["x1"]),
                        float(b["y1"]),
                        float(b["x2"]),
                        float(b["y2"]),
                        str(lab.get("category", "car")),
                        track,
                        visibility,
                        bool(attributes.get("occluded", Box.occluded_by_visibility(visibility))),
                        bool(attributes.get("truncated", False)),
                    )
                )
        attrs = {k: str(v) for k, v in (entry.get("attributes") or {}).items()}
        frames.append(FrameLabel(int(entry["frameIndex"]), boxes, attrs))
    frames.sort(key=lambda f: f.frame_index)
    return frames


def read_scalabel(path: str | Path) -> list[FrameLabel]:
    """Read a Scalabel/BDD100K video label JSON file."""
    try:
        entries = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise LabelFormatError(f"{path}: not valid JSON ({e})") from e
    return from_scalabel(entries, str(path))
