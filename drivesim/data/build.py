"""Data configs as plain dataclasses, and the factory that turns one into a Dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from drivesim.data.conditions import MAX_BOXES


@dataclass(frozen=True)
class ProceduralDataConfig:
    length: int = 100_000
    num_frames: int = 8
    fps: float = 30.0
    size: tuple[int, int] = (128, 256)
    seed: int = 0
    image_mode: bool = False
    time_of_day: str | None = None
    crowdedness: str | None = None
    curvature: str | None = None
    ego_speed_range: tuple[float, float] = (8.0, 30.0)
    max_boxes: int = MAX_BOXES


@dataclass(frozen=True)
class VideoFolderDataConfig:
    root: str
    num_frames: int = 8
    fps: float = 30.0
    size: tuple[int, int] = (128, 256)
    stride_s: float = 1.0
    image_mode: bool = False
    crowdedness: str | None = None
    max_boxes: int = MAX_BOXES
    source_fps: float | None = None  # image sequences whose labels give no frame rate


DATA_CONFIGS = {"procedural": ProceduralDataConfig, "video_folder": VideoFolderDataConfig}


def data_config(values: dict[str, Any]) -> ProceduralDataConfig | VideoFolderDataConfig:
    """A resolved `data` config mapping (with `kind`) -> its dataclass; unknown keys raise."""
    from drivesim.config import to_dataclass

    values = dict(values)
    kind = values.pop("kind", None)
    if kind not in DATA_CONFIGS:
        raise ValueError(f"data.kind={kind!r}: use one of {sorted(DATA_CONFIGS)}")
    return to_dataclass(DATA_CONFIGS[kind], values, where="data")


def build_dataset(cfg: ProceduralDataConfig | VideoFolderDataConfig) -> Dataset:
    """Instantiate the dataset a data config describes."""
    if isinstance(cfg, ProceduralDataConfig):
        from drivesim.data.procedural import ProceduralClipDataset

        return ProceduralClipDataset(**vars(cfg))
    from drivesim.data.video_folder import VideoFolderDataset

    return VideoFolderDataset(**vars(cfg))
