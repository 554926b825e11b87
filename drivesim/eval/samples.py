"""Generated-sample report: does the model follow time of day? Mean brightness of clips
generated for day and for night conditions (same box layouts, same seeds)."""

from __future__ import annotations

import torch
from torch.utils.data import default_collate
from tqdm import tqdm

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.diffusion.guidance import GuidanceScales
from drivesim.pipelines.video_ldm import VideoLDMPipeline

LAYOUT_SEED = 424_242  # layouts never used in training


@torch.no_grad()
def time_of_day_report(pipe: VideoLDMPipeline, clips: int = 4, num_frames: int = 8,
                       steps: int = 20, guidance: GuidanceScales | None = None,
                       progress: bool = True, frame_correlation: float | None = None) -> dict:
    """Mean brightness (0-255) of generated day vs night clips over the same layouts."""
    out: dict[str, list[float]] = {"day": [], "night": []}
    for tod in ("day", "night"):
        data = ProceduralClipDataset(length=clips, num_frames=num_frames, fps=7.5, seed=LAYOUT_SEED,
                                     time_of_day=tod)
        for i in tqdm(range(clips), desc=f"generate {tod}", disable=not progress):
            _, cond = data[i]
            video = pipe(default_collate([cond]), num_frames, steps=steps, guidance=guidance, seed=i,
                         frame_correlation=frame_correlation)
            out[tod].append(float(((video.frames + 1) * 127.5).mean()))
    day, night = (sum(v) / len(v) for v in (out["day"], out["night"]))
    return {"mean_brightness_day": day, "mean_brightness_night": night, "night_over_day": night / day,
            "per_clip": out, "clips": clips, "frames": num_frames, "steps": steps,
            "frame_correlation": frame_correlation}
