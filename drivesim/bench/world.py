"""Procedural-world renderer throughput at given resolutions (render only, and render + H.264)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from drivesim.export.video import Mp4Writer
from drivesim.world import World, WorldSpec


def bench_world(sizes: list[tuple[int, int]], frames: int = 90, seeds: int = 2) -> list[dict]:
    """Frames/s per size, for day and night crowded clips; returns one row per size."""
    rows = []
    for h, w in sizes:
        render_s = encode_s = 0.0
        n = 0
        for seed in range(seeds):
            for tod in ("day", "night"):
                spec = WorldSpec(
                    time_of_day=tod, crowdedness="crowded", num_frames=frames, height=h, width=w, seed=seed
                )
                with (
                    tempfile.TemporaryDirectory() as tmp,
                    Mp4Writer(Path(tmp) / "bench.mp4", spec.fps) as writer,
                ):
                    start = time.perf_counter()
                    for image, _ in World(spec).frames():
                        mid = time.perf_counter()
                        writer.write(image)
                        end = time.perf_counter()
                        render_s += mid - start
                        encode_s += end - mid
                        start = end
                n += frames
        rows.append(
            {
                "size": f"{h}x{w}",
                "frames": n,
                "render_fps": n / render_s,
                "render+h264_fps": n / (render_s + encode_s),
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'size':>10} {'frames':>7} {'render f/s':>11} {'render+h264 f/s':>16}"]
    lines += [
        f"{r['size']:>10} {r['frames']:>7} {r['render_fps']:>11.1f} {r['render+h264_fps']:>16.1f}"
        for r in rows
    ]
    return "\n".join(lines)
