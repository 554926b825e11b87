"""`CatalogStream`: a catalog's clips as an IterableDataset (drivesim.data.catalog_dataset has the
format and the sampling options).

Each DataLoader worker opens the catalog itself when its iterator starts and reads the rows in
file order (boxes included: no second lookup); the rows are dealt round-robin over
workers x DDP ranks, so every row goes to exactly one of them. With shuffle, the file order and
a buffer of rows are shuffled by (seed, epoch): call set_epoch(e) before each epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from drivesim.data.catalog_dataset import INDEX_COLUMNS, ClipSampling, filtered_rows, load_clip
from drivesim.data.catalog_query import catalog_filter
from drivesim.data.conditions import MAX_BOXES, Conditions


def shard() -> tuple[int, int]:
    """(this reader's number, readers) over DataLoader workers x torch.distributed ranks."""
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info else (0, 1)
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    return rank * workers + worker, world * workers


class CatalogStream(IterableDataset):
    """Streams (frames, conditions) of the catalog rows matching `filter`, one pass per epoch."""

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
        shuffle: bool = False,
        shuffle_buffer: int = 16,
        seed: int = 0,
    ):
        self.root = Path(root)
        self.filter = catalog_filter(filter)
        self.sampling = ClipSampling(
            num_frames, fps, (size[0], size[1]), crop, stride_s, image_mode, max_boxes, seed
        )
        self.shuffle, self.shuffle_buffer, self.seed, self.epoch = shuffle, shuffle_buffer, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for epoch `epoch` (no effect without shuffle except on random crops)."""
        self.epoch = epoch

    def _rows(self, me: int, readers: int) -> Iterator[dict]:
        order = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None  # same in all
        rows = filtered_rows(self.root, self.filter, [*INDEX_COLUMNS, "boxes"], order)
        mine = (row for k, row in enumerate(rows) if k % readers == me)
        if not self.shuffle:
            yield from mine
            return
        rng = np.random.default_rng([self.seed, self.epoch, me, 1])
        buffer: list[dict] = []
        for row in mine:
            buffer.append(row)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(int(rng.integers(len(buffer))))
        rng.shuffle(buffer)
        yield from buffer

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Conditions]]:
        """-> (frames [T,3,H,W] in [-1,1], condition dict) for this worker's share of the rows."""
        me, readers = shard()
        rng = np.random.default_rng([self.seed, self.epoch, me])
        for row in self._rows(me, readers):
            boxes = row.pop("boxes") or []
            for start in self.sampling.starts(row):
                yield load_clip(self.root, row, boxes, start, self.sampling, rng)
