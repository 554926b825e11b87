"""`drivesim bench cascade`: seconds per 512x1024 frame by stage and peak memory of the whole
cascade (key frames, interpolation, temporal decoder, upsampler, mp4 writing), for the reference
path and the fast path side by side, each run in a fresh process.

Paths:
- `reference`: eager torch as drivesim ran before this change: glibc's allocator as it comes,
  the temporal decoder on overlapping 7-frame windows, the last segment interpolated and decoded
  in full then cut, interpolation from the key blend noised halfway (strength 0.5), the diffusion
  upsampler. (It shares one change: the box layout is rasterised once per sampling run, which
  leaves the key latents bit-identical; so its key-frame time is already the faster one.)
- `fast`: the same models and settings, with the allocator tuned (drivesim/runtime.py), the
  decoder layer by layer and only the frames written made (the stages' own speed-up);
- `default`: what `drivesim generate` runs now: `fast` with bicubic upsampling and the key blend
  as interpolation (the tiny diffusion upsampler and interpolation model do not beat them on
  the current world, MODEL_CARD.md).
"""

from __future__ import annotations

from drivesim.bench.memory import run_plain

PATHS = {
    "reference": {"reference": True, "tune_malloc": False, "upsampler": "model", "interpolation": 0.5},
    "fast": {"reference": False, "tune_malloc": True, "upsampler": "model", "interpolation": 0.5},
    "default": {"reference": False, "tune_malloc": True, "upsampler": "bicubic", "interpolation": 0.0},
}
STAGES = ("key_frames", "interpolation", "decode", "upsample", "write")


def measure(
    path: str,
    scenario: str,
    seconds: float,
    steps: int,
    interpolation_steps: int,
    model_dir: str | None,
    threads: int,
    device: str,
) -> dict:
    """One rollout of `scenario` for `seconds` on `path` -> s/frame by stage, peak RSS (MiB)."""
    import torch

    from drivesim.bench.rollout import timed_rollout
    from drivesim.pipelines.rollout import RolloutConfig, for_seconds
    from drivesim.runtime import tune_allocator

    settings = PATHS[path]
    tuned = tune_allocator() if settings["tune_malloc"] else False
    torch.set_num_threads(threads)
    plan = RolloutConfig(
        steps=steps, interpolation_steps=interpolation_steps, interpolation_strength=settings["interpolation"]
    )
    row = timed_rollout(
        scenario,
        for_seconds(plan, seconds),
        model_dir,
        device,
        upsampler=settings["upsampler"],
        reference=settings["reference"],
    )
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return row | {"cuda_peak_mib": cuda_peak, "malloc_tuned": tuned}


def bench_cascade(
    paths: tuple[str, ...] = ("reference", "fast", "default"),
    scenario: str = "scenarios/day_cut_in.yaml",
    seconds: float = 3.0,
    steps: int = 20,
    interpolation_steps: int = 10,
    model_dir: str | None = None,
    threads: int = 2,
    device: str = "cpu",
) -> list[dict]:
    """One row per path, each in a fresh process; ratio = s/frame relative to the first path."""
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise ValueError(f"unknown path(s) {unknown}: use {list(PATHS)}")
    rows = []
    for path in paths:
        kwargs = dict(
            path=path,
            scenario=scenario,
            seconds=seconds,
            steps=steps,
            interpolation_steps=interpolation_steps,
            model_dir=model_dir,
            threads=threads,
            device=device,
        )
        rows.append({"path": path, **run_plain("drivesim.bench.cascade", "measure", **kwargs)})
    for r in rows:
        r["ratio"] = r["s_per_frame"] / rows[0]["s_per_frame"]
    return rows


def format_rows(rows: list[dict]) -> str:
    """A table: path, frames, s/frame (and its ratio to the first path), per stage, peak memory."""
    lines = [
        f"{'path':>9} {'frames':>6} {'s/frame':>8} {'ratio':>6} {'frames/s':>8} "
        + " ".join(f"{s:>13}" for s in STAGES)
        + f" {'peak MiB':>9}"
    ]
    for r in rows:
        peak = r["cuda_peak_mib"] if r.get("cuda_peak_mib") is not None else r["peak_mib"]
        lines.append(
            f"{r['path']:>9} {r['frames']:>6} {r['s_per_frame']:>8.3f} {r['ratio']:>6.3f} "
            f"{1 / r['s_per_frame']:>8.2f} "
            + " ".join(f"{r.get(f'{s}_s_per_frame', 0.0):>13.3f}" for s in STAGES)
            + f" {peak:>9.0f}"
        )
    return "\n".join(lines)
