"""`drivesim bench upsample`: seconds per 512x1024 frame and peak RSS of the upsampling stage,
bicubic vs the image upsampler vs the video upsampler, against tile size and clip length.

The image upsampler is the shipped checkpoint run without its temporal layers: the video stage
freezes every spatial weight, so its spatial network is exactly the image-stage model. Each row
runs in a fresh process so the peaks compare; frames stream through StreamingUpsampler as in
`drivesim rollout`, so the peak should stay flat as clips grow. The `latent_decode` row is the
floor of the alternative, a latent-space upsampler: the shipped autoencoder decoding one
64x128 latent to 512x1024, before any denoising step.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import torch

from drivesim.bench.memory import peak_rss_kib, reset_peak_rss, run_isolated

VARIANTS = ("bicubic", "image", "video")


def measure(
    variant: str, tile: int, frames: int, steps: int, model_dir: str | None, threads: int, push: int = 16
) -> dict:
    """Upsample `frames` 128x256 frames (pushed `push` at a time) -> s/frame and peak RSS (MiB)."""
    from drivesim.pipelines.upsample import (
        StreamingUpsampler,
        Upsampler,
        UpsampleSettings,
        bicubic_upsample,
    )
    from drivesim.utils import DEFAULT_MODEL_DIR

    torch.set_num_threads(threads)
    if variant == "latent_decode":
        return _measure_latent_decode(frames, model_dir or DEFAULT_MODEL_DIR)
    low = torch.rand(1, frames, 3, 128, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    upsampler = None
    if variant != "bicubic":
        settings = UpsampleSettings(steps=steps, tile=tile)
        upsampler = Upsampler.from_pretrained(model_dir or DEFAULT_MODEL_DIR, settings)
        upsampler.image_only = variant == "image"
    gc.collect()
    rest = reset_peak_rss()
    start = time.perf_counter()
    if upsampler is None:
        for chunk in low.split(push, dim=1):
            bicubic_upsample(chunk)
    else:
        stream = StreamingUpsampler(upsampler)
        for chunk in low.split(push, dim=1):
            stream.push(chunk)
        stream.flush()
    seconds = time.perf_counter() - start
    return {
        "s_per_frame": seconds / frames,
        "peak_mib": peak_rss_kib() / 1024,
        "above_start_mib": (peak_rss_kib() - rest) / 1024,
        "temporal_radius": upsampler.temporal_radius if upsampler else 0,
    }


@torch.no_grad()
def _measure_latent_decode(frames: int, model_dir: str | Path) -> dict:
    from drivesim.models.autoencoder import AutoencoderKL
    from drivesim.models.model_index import load_part

    ae = load_part(model_dir, "autoencoder", AutoencoderKL).eval()
    z = torch.randn(frames, 1, 4, 64, 128)
    gc.collect()
    rest = reset_peak_rss()
    start = time.perf_counter()
    for frame in z:
        ae.decode(frame)
    seconds = time.perf_counter() - start
    return {
        "s_per_frame": seconds / frames,
        "peak_mib": peak_rss_kib() / 1024,
        "above_start_mib": (peak_rss_kib() - rest) / 1024,
        "temporal_radius": 0,
    }


def bench_upsample(
    tiles: tuple[int, ...] = (256, 512, 1024),
    frames: int = 16,
    lengths: tuple[int, ...] = (32, 96),
    steps: int | None = None,
    model_dir: str | None = None,
    threads: int = 2,
) -> list[dict]:
    """Rows for every variant x tile at `frames` frames, then the video upsampler at each length
    (lengths past one window, 16 + 2 x reach frames, show whether the peak stays flat)."""
    from drivesim.pipelines.upsample import UpsampleSettings

    steps = steps or UpsampleSettings().steps
    default_tile = UpsampleSettings().tile
    jobs = [
        dict(variant=v, tile=t, frames=frames)
        for v in VARIANTS
        for t in (tiles if v != "bicubic" else tiles[:1])
    ]
    jobs += [dict(variant="video", tile=default_tile, frames=n) for n in lengths if n != frames]
    jobs += [dict(variant="latent_decode", tile=0, frames=4)]
    rows = [
        {
            **job,
            "steps": steps if job["variant"] in ("image", "video") else 0,
            **run_isolated(
                "drivesim.bench.upsample", "measure", **job, steps=steps, model_dir=model_dir, threads=threads
            ),
        }
        for job in jobs
    ]
    bicubic = next(r["s_per_frame"] for r in rows if r["variant"] == "bicubic")
    for r in rows:
        r["x_bicubic"] = r["s_per_frame"] / bicubic
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [
        f"{'variant':>8} {'tile':>5} {'frames':>6} {'steps':>5} {'s/frame':>8} {'x bicubic':>9} "
        f"{'peak MiB':>9} {'above start':>11}"
    ]
    for r in rows:
        lines.append(
            f"{r['variant']:>8} {r['tile']:>5} {r['frames']:>6} {r['steps']:>5} "
            f"{r['s_per_frame']:>8.3f} {r['x_bicubic']:>9.1f} {r['peak_mib']:>9.0f} "
            f"{r['above_start_mib']:>11.0f}"
        )
    return "\n".join(lines)
