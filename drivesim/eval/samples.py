"""Generated-sample report: does the model follow time of day? Day/night pairs: the same box
layout, seed and starting noise, only the time-of-day condition differs. The procedural world's
own night/day ratio on the same layouts is the reference (0.31 on the example scenarios)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate
from tqdm import tqdm

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.diffusion.guidance import GuidanceScales
from drivesim.eval.montage import save_montage
from drivesim.metrics import mean_luma
from drivesim.pipelines.video_ldm import VideoLDMPipeline

LAYOUT_SEED = 424_242  # layouts never used in training


@torch.no_grad()
def time_of_day_report(
    pipe: VideoLDMPipeline,
    clips: int = 4,
    num_frames: int = 8,
    steps: int = 20,
    guidance: GuidanceScales | None = None,
    progress: bool = True,
    frame_correlation: float | None = None,
    seeds: list[int] | None = None,
    montage: str | None = None,
) -> dict:
    """Mean luma (0-255) of generated day/night pairs (same layout and seed) and of the world's
    renders of the same layouts; night/day per pair. seeds: sampling seed per pair (default 0..)."""
    seeds = list(seeds) if seeds is not None else list(range(clips))
    rows, panels = [], []
    for tod in ("day", "night"):
        data = ProceduralClipDataset(
            length=len(seeds), num_frames=num_frames, fps=7.5, seed=LAYOUT_SEED, time_of_day=tod
        )
        for i, seed in enumerate(tqdm(seeds, desc=f"generate {tod}", disable=not progress)):
            real, cond = data[i]
            video = pipe(
                default_collate([cond]),
                num_frames,
                steps=steps,
                guidance=guidance,
                seed=seed,
                frame_correlation=frame_correlation,
            )
            assert video.frames is not None  # the pipeline decodes by default
            rows.append(
                {
                    "time_of_day": tod,
                    "seed": seed,
                    "layout": i,
                    "generated": mean_luma(video.frames),
                    "world": mean_luma(real),
                }
            )
            panels.append((f"{tod} seed {seed}", video.frames[0, num_frames // 2], cond, num_frames // 2))
    day = [r for r in rows if r["time_of_day"] == "day"]
    night = [r for r in rows if r["time_of_day"] == "night"]
    pairs = [
        {
            "seed": d["seed"],
            "night_over_day": n["generated"] / d["generated"],
            "world_night_over_day": n["world"] / d["world"],
        }
        for d, n in zip(day, night)
    ]
    if montage:
        save_montage(montage, panels, columns=len(seeds))
    return {
        "mean_luma_day": float(np.mean([r["generated"] for r in day])),
        "mean_luma_night": float(np.mean([r["generated"] for r in night])),
        "night_over_day_max": max(p["night_over_day"] for p in pairs),
        "pairs": pairs,
        "clips": len(seeds),
        "frames": num_frames,
        "steps": steps,
        "frame_correlation": pipe.frame_correlation(frame_correlation),
    }
