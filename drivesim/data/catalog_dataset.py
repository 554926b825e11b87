"""Clips of a Parquet catalog (drivesim.data.catalog) as torch datasets.

`CatalogDataset` (map-style) reads the matching rows' small columns when it is built and
decodes a clip only when asked; a clip's boxes are read from its Parquet file on first use, per
process. `CatalogStream` (IterableDataset) opens the catalog inside each DataLoader worker and
streams rows in file order (optionally shuffled per epoch), each worker (and DDP rank) taking
every n-th row. Both yield the format of every drivesim dataset (drivesim.data.conditions):
frames [T,3,H,W] float in [-1,1] (image mode [3,H,W]) and the condition dict, boxes normalised
to the output frame after crop and resize. Clips are resampled to `fps` (default: the clip's
own), cropped (`center`, `random` or `none` = squash) to the aspect of `size` and resized. Rows
shorter than one window are skipped. Use drivesim.data.collate.collate_clips with max_boxes=None.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from drivesim.data.catalog import CatalogError, open_clips
from drivesim.data.catalog_query import catalog_filter
from drivesim.data.clips import center_crop_to_aspect, num_clips, resample_indices, transform_box
from drivesim.data.conditions import MAX_BOXES, Conditions, clip_conditions, to_image_conditions
from drivesim.data.labels import Box
from drivesim.data.procedural import frames_to_tensor
from drivesim.data.video_folder import decode_frames

INDEX_COLUMNS = [
    "clip_id",
    "mp4_path",
    "fps",
    "frames",
    "height",
    "width",
    "time_of_day",
    "crowdedness",
    "ego_speed_kmh",
    "boxes_known",
]
CROPS = ("center", "random", "none")


@dataclass(frozen=True)
class ClipSampling:
    """How a catalog clip becomes a training sample."""

    num_frames: int = 8
    fps: float | None = None  # None: the clip's own frame rate
    size: tuple[int, int] = (128, 256)  # (H, W) of the output frames
    crop: str = "center"  # center | random | none (resize the whole frame, aspect not kept)
    stride_s: float | None = None  # None: one window per clip from its start; else one every stride_s
    image_mode: bool = False
    max_boxes: int | None = MAX_BOXES  # None: pad only to the clip's own largest box count
    seed: int = 0  # random crops

    def __post_init__(self):
        if self.crop not in CROPS:
            raise ValueError(f"crop={self.crop!r}: use one of {CROPS}")
        if self.num_frames < 1 or (self.fps is not None and self.fps <= 0):
            raise ValueError(f"num_frames={self.num_frames}, fps={self.fps}: need >= 1 frame and fps > 0")

    @property
    def frames(self) -> int:
        """Frames per sample: 1 in image mode."""
        return 1 if self.image_mode else self.num_frames

    def starts(self, row: dict) -> list[float]:
        """Window start times (s) in a clip of row['frames'] at row['fps']."""
        fps = self.fps or row["fps"]
        stride = self.stride_s or 1.0
        n = num_clips(row["frames"] / row["fps"], self.frames, fps, stride)
        return [k * stride for k in range(n if self.stride_s else min(n, 1))]


def boxes_by_frame(box_rows: list[dict]) -> dict[int, list[Box]]:
    """Rows of the `boxes` column -> {frame: [Box]} in pixels of the catalog video."""
    out: dict[int, list[Box]] = defaultdict(list)
    for b in box_rows:
        out[b["frame"]].append(
            Box(
                b["x1"],
                b["y1"],
                b["x2"],
                b["y2"],
                b["category"],
                b["track_id"],
                b["visibility"],
                # Both flags are null in rows before schema 4.
                Box.occluded_by_visibility(b["visibility"]) if b.get("occluded") is None else b["occluded"],
                bool(b.get("truncated")),
            )
        )
    return out


def _crop(h: int, w: int, sampling: ClipSampling, rng: np.random.Generator) -> tuple[int, int, int, int]:
    if sampling.crop == "none":
        return 0, h, 0, w
    y0, y1, x0, x1 = center_crop_to_aspect(h, w, sampling.size[1] / sampling.size[0])
    if sampling.crop == "random":
        dy, dx = int(rng.integers(0, h - (y1 - y0) + 1)), int(rng.integers(0, w - (x1 - x0) + 1))
        return dy, dy + y1 - y0, dx, dx + x1 - x0
    return y0, y1, x0, x1


def load_clip(
    root: Path,
    row: dict,
    box_rows: list[dict],
    start_s: float,
    sampling: ClipSampling,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, Conditions]:
    """One window of a catalog row -> frames [T,3,H,W] in [-1,1] (image mode [3,H,W]) + conditions."""
    fps, t = sampling.fps or row["fps"], sampling.frames
    indices = [min(j, row["frames"] - 1) for j in resample_indices(row["fps"], fps, start_s, t)]
    raw = decode_frames(root / row["mp4_path"], indices, row["fps"])
    crop = _crop(raw[0].shape[0], raw[0].shape[1], sampling, rng)
    y0, y1, x0, x1 = crop
    h, w = sampling.size
    frames = np.stack([cv2.resize(f[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA) for f in raw])
    known = row.get("boxes_known") is not False  # null (schema version 1) = known
    boxes = None
    if known:
        by_frame = boxes_by_frame(box_rows)
        boxes = [
            [b for b in (transform_box(b, crop, sampling.size) for b in by_frame.get(j, [])) if b]
            for j in indices
        ]
    max_boxes = sampling.max_boxes
    if max_boxes is None:
        max_boxes = max((len(f) for f in boxes), default=0) if boxes else 0
    speed = row.get("ego_speed_kmh")
    cond = clip_conditions(
        boxes,
        sampling.size,
        row["time_of_day"],
        row["crowdedness"],
        fps,
        None if speed is None else speed / 3.6,
        max_boxes,
        num_frames=t,
    )
    tensor = frames_to_tensor(frames)
    if sampling.image_mode:
        return tensor[0], to_image_conditions(cond)
    return tensor, cond


class _BoxReader:
    """Per-process reader of the `boxes` column: one Parquet file at a time, cached."""

    def __init__(self):
        self.pid, self.path, self.rows = os.getpid(), None, {}

    def boxes(self, path: str, clip_id: str) -> list[dict]:
        """Rows of the `boxes` column of clip `clip_id` in Parquet file `path`."""
        if self.pid != os.getpid():  # a forked DataLoader worker: its own reader
            self.__init__()
        if path != self.path:
            table = pq.read_table(path, columns=["clip_id", "boxes"])
            self.path = path
            self.rows = dict(zip(table.column("clip_id").to_pylist(), range(table.num_rows)))
            self.table = table
        if clip_id not in self.rows:
            raise CatalogError(
                f"{path}: no row for clip {clip_id!r} (the catalog changed since the dataset "
                "was built; build it again)"
            )
        return self.table.column("boxes")[self.rows[clip_id]].as_py() or []


class CatalogDataset(Dataset):
    """Map-style clips of a catalog's rows matching `filter` (see catalog_filter); lazy decoding."""

    def __init__(
        self,
        root: str | Path,
        filter=None,
        *,
        num_frames: int = 8,
        fps: float | None = None,
        size: tuple[int, int] = (128, 256),
        crop: str = "center",
        stride_s: float | None = None,
        image_mode: bool = False,
        max_boxes: int | None = MAX_BOXES,
        seed: int = 0,
    ):
        self.root = Path(root)
        self.filter = catalog_filter(filter)
        self.sampling = ClipSampling(
            num_frames, fps, (size[0], size[1]), crop, stride_s, image_mode, max_boxes, seed
        )
        scanner = open_clips(self.root).scanner(columns=[*INDEX_COLUMNS, "__filename"], filter=self.filter)
        self.rows = sorted(scanner.to_table().to_pylist(), key=lambda r: (r["__filename"], r["clip_id"]))
        self.index = [(r, s) for r in range(len(self.rows)) for s in self.sampling.starts(self.rows[r])]
        self._reader = _BoxReader()

    def __len__(self) -> int:
        return len(self.index)

    def clip_id(self, index: int) -> str:
        """The catalog clip_id of item `index`."""
        return self.rows[self.index[index][0]]["clip_id"]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Conditions]:
        """-> frames [T,3,H,W] in [-1,1] (image mode [3,H,W]) and the condition dict."""
        if not 0 <= index < len(self.index):
            raise IndexError(f"index {index} out of range for {len(self.index)} clips")
        r, start = self.index[index]
        row = self.rows[r]
        boxes = (
            self._reader.boxes(row["__filename"], row["clip_id"]) if row["boxes_known"] is not False else []
        )
        rng = np.random.default_rng([self.sampling.seed, index])
        return load_clip(self.root, row, boxes, start, self.sampling, rng)


def filtered_rows(
    root: Path, filter: ds.Expression | None, columns: list[str], rng: np.random.Generator | None = None
):
    """Yield row dicts of the catalog file by file, in path order or permuted by rng (the catalog is
    opened in the calling process)."""
    dataset = open_clips(root)
    fragments = sorted(dataset.get_fragments(filter=filter), key=lambda f: f.path)
    if rng is not None:
        fragments = [fragments[i] for i in rng.permutation(len(fragments))]
    for fragment in fragments:
        table = fragment.to_table(columns=columns, filter=filter, schema=dataset.schema)
        yield from sorted(table.to_pylist(), key=lambda r: r["clip_id"])
