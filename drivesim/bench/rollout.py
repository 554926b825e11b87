"""`drivesim bench rollout`: peak RSS and seconds/frame of `drivesim rollout` for growing lengths.

Each length runs in a fresh process (the whole job: models, segments, mp4 parts, remux and
diagnostics) so the peaks compare; the target is a flat peak (<= 1.1x from 1 to 20 segments),
since frames stream to disk and only the context and decoder lag stay in memory.
"""

from __future__ import annotations

import gc
import tempfile
import time

from drivesim.bench.memory import peak_rss_kib, reset_peak_rss, run_isolated
from drivesim.pipelines.upsample import DEFAULT_UPSAMPLER, UpsampleMethod


def timed_rollout(
    scenario: str,
    cfg,
    model_dir: str | None,
    device: str = "cpu",
    upsampler: UpsampleMethod = DEFAULT_UPSAMPLER,
    reference: bool = False,
) -> dict:
    """One run_rollout into a temporary folder -> frames, size, wall seconds, s/frame (all and by
    stage, of output frames) and peak RSS (MiB; above_start_mib: above the RSS before it)."""
    import torch

    from drivesim.pipelines.rollout_job import RenderSettings, run_rollout
    from drivesim.utils import DEFAULT_MODEL_DIR

    with tempfile.TemporaryDirectory() as out:
        gc.collect()
        rest = reset_peak_rss()
        start = time.perf_counter()
        render = RenderSettings(device=device, upsampler=upsampler)
        meta = run_rollout(
            scenario,
            out,
            cfg,
            model_dir or DEFAULT_MODEL_DIR,
            render=render,
            progress=False,
            reference=reference,
        ).meta
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    frames = meta.frames
    return {
        "peak_mib": peak_rss_kib() / 1024,
        "above_start_mib": (peak_rss_kib() - rest) / 1024,
        "frames": frames,
        "size": list(meta.resolution),
        "s_per_frame": seconds / frames,
        "seconds": seconds,
        **{f"{k}_s_per_frame": v / frames for k, v in meta.stage_seconds_this_run.items()},
    }


def measure(
    segments: int,
    steps: int,
    interpolation_steps: int,
    model_dir: str | None,
    scenario: str,
    threads: int,
    upsampler: UpsampleMethod = DEFAULT_UPSAMPLER,
) -> dict:
    """One rollout of `segments` segments -> peak RSS above the loaded models (MiB), s/frame."""
    import torch

    from drivesim.pipelines.rollout import RolloutConfig
    from drivesim.runtime import tune_allocator

    tune_allocator()  # as the drivesim command runs (the peak includes the freed memory glibc keeps)
    torch.set_num_threads(threads)
    cfg = RolloutConfig(segments=segments, steps=steps, interpolation_steps=interpolation_steps)
    return timed_rollout(scenario, cfg, model_dir, upsampler=upsampler)


def bench_rollout(
    segments: tuple[int, ...] = (1, 5, 20),
    steps: int = 20,
    interpolation_steps: int = 10,
    model_dir: str | None = None,
    scenario: str = "scenarios/day_light_highway.yaml",
    threads: int = 2,
    upsampler: UpsampleMethod = DEFAULT_UPSAMPLER,
) -> list[dict]:
    """One row per length; peak_ratio is relative to the shortest rollout."""
    rows = [
        {
            "segments": n,
            **run_isolated(
                "drivesim.bench.rollout",
                "measure",
                segments=n,
                steps=steps,
                interpolation_steps=interpolation_steps,
                model_dir=model_dir,
                scenario=scenario,
                threads=threads,
                upsampler=upsampler,
            ),
        }
        for n in segments
    ]
    for r in rows:
        r["peak_ratio"] = r["peak_mib"] / rows[0]["peak_mib"]
    return rows


STAGES = ("key_frames", "interpolation", "decode", "upsample", "write")


def format_rows(rows: list[dict]) -> str:
    """A table: length, peak memory, s/frame in all and per stage (of output frames)."""
    lines = [
        f"{'segments':>8} {'frames':>6} {'peak MiB':>9} {'ratio':>6} {'s/frame':>8} {'total s':>8} "
        + " ".join(f"{s:>13}" for s in STAGES)
    ]
    for r in rows:
        lines.append(
            f"{r['segments']:>8} {r['frames']:>6} {r['peak_mib']:>9.0f} {r['peak_ratio']:>6.3f} "
            f"{r['s_per_frame']:>8.3f} {r['seconds']:>8.0f} "
            + " ".join(f"{r.get(f'{s}_s_per_frame', 0.0):>13.3f}" for s in STAGES)
        )
    return "\n".join(lines)
