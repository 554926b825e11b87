"""Sampling loops over diffusers schedulers; a new scheduler instance per call (thread-safe)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from tqdm import tqdm

from drivesim.diffusion.schedule import ScheduleConfig

SAMPLERS = ("ddim", "dpmpp", "euler")


def make_scheduler(name: str, cfg: ScheduleConfig):
    """A fresh inference scheduler ('ddim' | 'dpmpp' | 'euler') for the training schedule."""
    kwargs = cfg.scheduler_kwargs()
    if name == "ddim":
        return DDIMScheduler(**kwargs, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    if name == "dpmpp":
        return DPMSolverMultistepScheduler(**kwargs, algorithm_type="dpmsolver++", solver_order=2)
    if name == "euler":
        return EulerDiscreteScheduler(**kwargs)
    raise ValueError(f"sampler={name!r}: use one of {SAMPLERS}")


def sample(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], shape: tuple[int, ...],
           sampler: str, cfg: ScheduleConfig, steps: int = 25,
           generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
    """Run `steps` denoising steps from pure noise; denoise(x_in, t [B]) -> model output."""
    scheduler = make_scheduler(sampler, cfg)
    scheduler.set_timesteps(steps)
    x = torch.randn(shape, generator=generator) * scheduler.init_noise_sigma
    for t in tqdm(scheduler.timesteps, desc=f"{sampler} sampling", disable=not progress):
        model_in = scheduler.scale_model_input(x, t)
        out = denoise(model_in, t.expand(shape[0]))
        x = scheduler.step(out, t, x, generator=generator).prev_sample
    return x
