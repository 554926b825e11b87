"""Write a generated clip: `<id>.mp4`, `<id>.json` (Scalabel labels of the conditioning
layout) and `<id>.meta.json` (seed, sampler, guidance, scenario, model versions), atomically,
metadata last so a clip with metadata is complete."""

from __future__ import annotations

from pathlib import Path

import torch

from drivesim.data.labels import FrameLabel, to_scalabel
from drivesim.export.video import write_mp4
from drivesim.utils import to_uint8, write_json_atomic


def write_generated_clip(
    out_dir: str | Path,
    clip_id: str,
    frames: torch.Tensor,
    fps: float,
    labels: list[FrameLabel],
    meta: dict,
    base: tuple[torch.Tensor, list[FrameLabel]] | None = None,
) -> Path:
    """frames [T,3,H,W] in [-1,1] -> files in out_dir; returns the mp4 path. base: the cascade's
    low-resolution video and its labels, written as <id>.base.mp4 / <id>.base.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / f"{clip_id}.meta.json"
    meta_path.unlink(missing_ok=True)
    if base is not None:
        write_mp4(out_dir / f"{clip_id}.base.mp4", to_uint8(base[0]), fps)
        write_json_atomic(to_scalabel(base[1], f"{clip_id}.base"), out_dir / f"{clip_id}.base.json")
    video = out_dir / f"{clip_id}.mp4"
    write_mp4(video, to_uint8(frames), fps)
    write_json_atomic(to_scalabel(labels, clip_id), out_dir / f"{clip_id}.json")
    write_json_atomic(meta, meta_path)
    return video


def is_generated(out_dir: str | Path, clip_id: str) -> bool:
    return (Path(out_dir) / f"{clip_id}.meta.json").exists()
