"""Procedural driving clips as torch datasets: index i -> seeded clip, exact labels."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from drivesim.data.conditions import (
    CROWDEDNESS,
    MAX_BOXES,
    TIME_OF_DAY,
    Conditions,
    clip_conditions,
    to_image_conditions,
)
from drivesim.world.scene import World, WorldSpec

CURVATURES = ("straight", "gentle", "winding")


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 RGB [T,H,W,3] -> float32 [T,3,H,W] in [-1,1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


class ProceduralClipDataset(Dataset):
    """`length` seeded clips; conditions are drawn per index unless fixed in the constructor.

    Item i is the same on every call and in every worker: its RNG is seeded by (seed, i).
    """

    def __init__(
        self,
        length: int = 100_000,
        num_frames: int = 8,
        fps: float = 30.0,
        size: tuple[int, int] = (128, 256),
        seed: int = 0,
        image_mode: bool = False,
        time_of_day: str | None = None,
        crowdedness: str | None = None,
        curvature: str | None = None,
        ego_speed_range: tuple[float, float] = (8.0, 30.0),
        max_boxes: int = MAX_BOXES,
    ):
        if time_of_day not in (None, *TIME_OF_DAY):
            raise ValueError(f"time_of_day={time_of_day!r}: use one of {TIME_OF_DAY} or None")
        if crowdedness not in (None, *CROWDEDNESS):
            raise ValueError(f"crowdedness={crowdedness!r}: use one of {CROWDEDNESS} or None")
        if curvature not in (None, *CURVATURES):
            raise ValueError(f"curvature={curvature!r}: use one of {CURVATURES} or None")
        self.length, self.fps, self.size, self.seed = length, fps, (size[0], size[1]), seed
        self.num_frames = 1 if image_mode else num_frames
        self.image_mode, self.max_boxes = image_mode, max_boxes
        self.time_of_day, self.crowdedness, self.curvature = time_of_day, crowdedness, curvature
        self.ego_speed_range = ego_speed_range

    def __len__(self) -> int:
        return self.length

    def spec(self, index: int) -> WorldSpec:
        """The world description of item `index`."""
        rng = np.random.default_rng([self.seed, index])
        h, w = self.size
        return WorldSpec(
            time_of_day=self.time_of_day or str(rng.choice(TIME_OF_DAY)),
            crowdedness=self.crowdedness or str(rng.choice(CROWDEDNESS)),
            curvature=self.curvature or str(rng.choice(CURVATURES)),
            num_frames=self.num_frames,
            fps=self.fps,
            height=h,
            width=w,
            seed=int(rng.integers(0, 2**31)),
            ego_speed=float(rng.uniform(*self.ego_speed_range)),
        )

    def start_frame(self, index: int) -> int:
        """Frames simulated (not painted) before item `index` starts; random in image mode so
        single frames cover all traffic states."""
        if not self.image_mode:
            return 0
        return int(np.random.default_rng([self.seed, index, 1]).integers(0, 90))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Conditions]:
        """-> frames [T,3,H,W] in [-1,1] (image mode [3,H,W]) and the condition dict."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} clips")
        spec = self.spec(index)
        world = World(spec)
        world.advance(self.start_frame(index))
        images, boxes = [], []
        for image, label in world.frames():
            images.append(image)
            boxes.append(label.boxes)
        frames = frames_to_tensor(np.stack(images))
        cond = clip_conditions(
            boxes, self.size, spec.time_of_day, spec.crowdedness, spec.fps, spec.ego_speed, self.max_boxes
        )
        if self.image_mode:
            return frames[0], to_image_conditions(cond)
        return frames, cond


class InfiniteProceduralClips(IterableDataset):
    """Endless stream over a ProceduralClipDataset's index space, split across workers."""

    def __init__(self, clips: ProceduralClipDataset, start: int = 0):
        self.clips, self.start = clips, start

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Conditions]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        index = self.start + worker
        while True:
            yield self.clips[index % len(self.clips)]
            index += workers
