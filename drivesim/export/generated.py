"""Write a generated clip: `<id>.mp4`, `<id>.json` (Scalabel labels of the conditioning
layout) and `<id>.meta.json` (seed, sampler, guidance, scenario, model versions), atomically,
metadata last so a clip with metadata is complete."""

from __future__ import annotations

from pathlib import Path

import torch

from drivesim.data.labels import FrameLabel, to_scalabel
from drivesim.export.video import write_mp4
from drivesim.utils import to_uint8, write_json_atomic


def write_generated_clip(out_dir: str | Path, clip_id: str, frames: torch.Tensor, fps: float,
                         labels: list[FrameLabel], meta: dict) -> Path:
    """frames [T,3,H,W] in [-1,1] -> files in out_dir; returns the mp4 path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / f"{clip_id}.meta.json"
    meta_path.unlink(missing_ok=True)
    video = out_dir / f"{clip_id}.mp4"
    write_mp4(video, to_uint8(frames), fps)
    write_json_atomic(to_scalabel(labels, clip_id), out_dir / f"{clip_id}.json")
    write_json_atomic(meta, meta_path)
    return video


def is_generated(out_dir: str | Path, clip_id: str) -> bool:
    return (Path(out_dir) / f"{clip_id}.meta.json").exists()
