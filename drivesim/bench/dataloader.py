"""DataLoader throughput from a catalog: clips/s of CatalogDataset and CatalogStream with 0..n workers
(decode, crop, resize and conditions; worker start-up included, as a training run sees it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

from torch.utils.data import DataLoader

from drivesim.data.catalog_dataset import CatalogDataset
from drivesim.data.catalog_stream import CatalogStream
from drivesim.data.collate import collate_clips


def bench_dataloader(
    catalog: str | Path,
    workers: tuple[int, ...] = (0, 2),
    batch_size: int = 4,
    num_frames: int = 8,
    fps: float = 7.5,
    size: tuple[int, int] = (128, 256),
    stride_s: float = 0.5,
    epochs: int = 2,
) -> list[dict]:
    """One row per (dataset kind, workers): clips, frames, seconds, clips/s over `epochs` passes."""
    rows = []
    options = {"num_frames": num_frames, "fps": fps, "size": size, "stride_s": stride_s, "max_boxes": None}
    for kind in ("map", "stream"):
        for n in workers:
            data = CatalogDataset(catalog, **options) if kind == "map" else CatalogStream(catalog, **options)
            loader = DataLoader(
                data, batch_size=batch_size, num_workers=n, collate_fn=collate_clips, persistent_workers=n > 0
            )
            clips, start = 0, time.perf_counter()
            for epoch in range(epochs):
                if kind == "stream":
                    cast(CatalogStream, data).set_epoch(epoch)
                clips += sum(len(frames) for frames, _ in loader)
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "dataset": kind,
                    "workers": n,
                    "clips": clips,
                    "frames": clips * num_frames,
                    "seconds": seconds,
                    "clips_per_s": clips / seconds,
                }
            )
    return rows


def format_rows(rows: list[dict]) -> str:
    """bench_dataloader's rows as a text table."""
    lines = [f"{'dataset':>8} {'workers':>8} {'clips':>6} {'seconds':>8} {'clips/s':>8} {'frames/s':>9}"]
    lines += [
        f"{r['dataset']:>8} {r['workers']:>8} {r['clips']:>6} {r['seconds']:>8.2f} "
        f"{r['clips_per_s']:>8.2f} {r['frames'] / r['seconds']:>9.1f}"
        for r in rows
    ]
    return "\n".join(lines)
