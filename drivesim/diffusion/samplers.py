"""Sampling loops over diffusers schedulers; a new scheduler instance per call (thread-safe)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from tqdm import tqdm

from drivesim.diffusion.noise import mixed_noise
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
           generator: torch.Generator | None = None, progress: bool = False,
           known: tuple[torch.Tensor, torch.Tensor] | None = None,
           frame_correlation: float | None = None,
           start: tuple[torch.Tensor, float] | None = None) -> torch.Tensor:
    """Run `steps` denoising steps from pure noise; denoise(x_in, t [B]) -> model output.

    known = (latents [B,T,...], mask [B,T]): after every step the known frames are replaced by
    the known latents noised to the next step's level (replacement sampling, Ho et al. 2022),
    so the frames being generated see them through the noisy input as well.
    frame_correlation: share of the starting noise common to all frames of a clip (mixed noise
    prior, Ge et al. 2023 "PYoCo"); None = cfg.frame_correlation, the prior the model trained with.
    start = (latents [B,T,...], strength in (0, 1]): begin from a guess noised to `strength` of
    the schedule (SDEdit, Meng et al. 2022) instead of pure noise; `steps` steps still run,
    spaced over that lower part of the schedule. strength 1 = pure noise."""
    scheduler = make_scheduler(sampler, cfg)
    strength = 1.0 if start is None else start[1]
    if not 0 < strength <= 1:
        raise ValueError(f"strength={strength}: must be in (0, 1]")
    total = max(steps, round(steps / strength))
    scheduler.set_timesteps(total)
    skip = total - steps
    timesteps = scheduler.timesteps[skip * scheduler.order:]
    if skip and hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(skip * scheduler.order)
    if frame_correlation is None:
        frame_correlation = cfg.frame_correlation
    noise = mixed_noise(shape, generator, frame_correlation)
    x = scheduler.add_noise(start[0], noise, timesteps[:1]) if skip else noise * scheduler.init_noise_sigma
    if known is not None:
        known_latents, mask = known
        keep = mask.bool()
        known_noise = mixed_noise(shape, generator, frame_correlation)
        x[keep] = scheduler.add_noise(known_latents, known_noise, timesteps[:1])[keep]
    for i, t in enumerate(tqdm(timesteps, desc=f"{sampler} sampling", disable=not progress)):
        model_in = scheduler.scale_model_input(x, t)
        out = denoise(model_in, t.expand(shape[0]))
        x = scheduler.step(out, t, x, generator=generator).prev_sample
        if known is not None:
            x[keep] = (scheduler.add_noise(known_latents, known_noise, timesteps[i + 1:i + 2])[keep]
                       if i + 1 < len(timesteps) else known_latents[keep])
    return x
