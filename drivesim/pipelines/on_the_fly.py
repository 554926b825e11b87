"""`GeneratedClips`: an IterableDataset that generates clips inside DataLoader workers with the shipped
key-frame video LDM, nothing stored.

Item g of epoch e is seeded by (seed, e, g): its scene (time of day, crowdedness, road, traffic
layout from the procedural world, as ProceduralClipDataset draws them) and its sampling noise.
Worker w of n makes items g = w, w + n, w + 2n, ...; each worker loads the model once, in its own
process, when its iterator starts. So a seed gives the same clips in every run (for any number
of workers), each worker makes its own share, and set_epoch(e) gives new clips. Items are
(frames [T,3,H,W] in [-1,1], the condition dict they were generated for), the format of every
drivesim dataset (drivesim.data.conditions), at the key-frame model's rate (7.5 fps for the shipped one).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, default_collate, get_worker_info

from drivesim.data.conditions import Conditions, clip_conditions
from drivesim.data.procedural import ProceduralClipDataset
from drivesim.diffusion.guidance import GuidanceScales
from drivesim.pipelines.cascade import Cascade
from drivesim.utils import DEFAULT_MODEL_DIR
from drivesim.world import World


class GeneratedClips(IterableDataset):
    """Generated clips, `clips_per_epoch` per epoch (None: endless), split over DataLoader workers."""

    def __init__(
        self,
        model_dir: str | Path = DEFAULT_MODEL_DIR,
        clips_per_epoch: int | None = 16,
        num_frames: int = 8,
        steps: int = 10,
        seed: int = 0,
        time_of_day: str | None = None,
        crowdedness: str | None = None,
        latent_size: tuple[int, int] | None = None,
        sampler: str = "dpmpp",
        guidance_scene: float = 2.0,
        guidance_boxes: float = 1.5,
        device: str = "cpu",
    ):
        self.model_dir, self.clips_per_epoch, self.num_frames = Path(model_dir), clips_per_epoch, num_frames
        self.steps, self.seed, self.epoch = steps, seed, 0
        self.time_of_day, self.crowdedness = time_of_day, crowdedness
        self.latent_size = tuple(latent_size) if latent_size else None  # None: the model's
        self.sampler, self.guidance = sampler, GuidanceScales(guidance_scene, guidance_boxes)
        self.device = device
        self._cascade, self._pid = None, None
        ProceduralClipDataset(time_of_day=time_of_day, crowdedness=crowdedness)  # validates both now

    def set_epoch(self, epoch: int) -> None:
        """New clips for epoch `epoch` (the DataLoader's workers see it when they next start)."""
        self.epoch = epoch

    def item_seed(self, index: int, epoch: int | None = None) -> int:
        """The seed of item `index` of an epoch (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        return int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1)[0] >> 1)

    def cascade(self) -> Cascade:
        """The key-frame model, loaded once per process (each DataLoader worker loads its own)."""
        if self._cascade is None or self._pid != os.getpid():
            self._cascade = Cascade.from_pretrained(
                self.model_dir, key_model="unet", interpolation=False, device=self.device
            )
            self._pid = os.getpid()
        return self._cascade

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cascade": None, "_pid": None}  # workers load the model themselves

    def scene(self, index: int) -> tuple[Conditions, int]:
        """(conditions of item `index`, its sampling seed): a procedural layout drawn from its seed."""
        seed = self.item_seed(index)
        cascade = self.cascade()
        latent_h, latent_w = self.latent_size or cascade.latent_size
        size = cascade.key_model.output_size((latent_h, latent_w))
        layouts = ProceduralClipDataset(
            length=1,
            num_frames=self.num_frames,
            fps=cascade.key_fps,
            size=size,
            seed=seed,
            time_of_day=self.time_of_day,
            crowdedness=self.crowdedness,
        )
        spec = layouts.spec(0)
        boxes = [label.boxes or [] for label in World(spec).labels()]  # the world knows every box
        cond = clip_conditions(
            boxes, size, spec.time_of_day, spec.crowdedness, cascade.key_fps, spec.ego_speed
        )
        return cond, seed

    @torch.no_grad()
    def generate(self, index: int) -> tuple[torch.Tensor, Conditions]:
        """Item `index` of the current epoch -> (frames [T,3,H,W] in [-1,1] on the CPU, conditions)."""
        cond, seed = self.scene(index)
        cascade = self.cascade()
        latents = cascade.key_frames(
            default_collate([cond]),
            self.num_frames,
            latent_size=self.latent_size or cascade.latent_size,
            sampler=self.sampler,
            steps=self.steps,
            guidance=self.guidance,
            seed=seed,
        )
        return cascade.decode(latents)[0].float().cpu(), cond

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Conditions]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        indices = itertools.count(worker, workers)
        if self.clips_per_epoch is not None:
            indices = range(worker, self.clips_per_epoch, workers)
        for index in indices:
            yield self.generate(index)
