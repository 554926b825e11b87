"""Render procedural clips to disk: `<id>.mp4` (H.264) + `<id>.json` (Scalabel labels).

Both files are written atomically, the labels last, so a clip whose JSON exists is complete;
re-running skips complete clips (resume) unless asked to overwrite.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from drivesim.data.labels import to_scalabel
from drivesim.export.video import Mp4Writer
from drivesim.utils import write_json_atomic
from drivesim.world import World, WorldSpec


def clip_paths(out_dir: str | Path, clip_id: str) -> tuple[Path, Path]:
    """(mp4 path, label JSON path) of a clip."""
    out_dir = Path(out_dir)
    return out_dir / f"{clip_id}.mp4", out_dir / f"{clip_id}.json"


def is_complete(out_dir: str | Path, clip_id: str) -> bool:
    video, labels = clip_paths(out_dir, clip_id)
    return video.exists() and labels.exists()


def write_world_clip(
    spec: WorldSpec, out_dir: str | Path, clip_id: str, progress: tqdm | None = None
) -> tuple[Path, Path]:
    """Render `spec` frame by frame into out_dir; returns (mp4, labels) paths."""
    video_path, label_path = clip_paths(out_dir, clip_id)
    label_path.unlink(missing_ok=True)  # an mp4 without labels is never taken as complete
    labels = []
    with Mp4Writer(video_path, spec.fps) as writer:
        for image, label in World(spec).frames():
            writer.write(image)
            labels.append(label)
            if progress is not None:
                progress.update(1)
    write_json_atomic(to_scalabel(labels, clip_id), label_path)
    return video_path, label_path
