"""Training-side diffusion: one noise level per clip, eps- or v-prediction targets."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from diffusers import DDPMScheduler


@dataclass(frozen=True)
class ScheduleConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"  # the LDM / Stable Diffusion schedule
    prediction_type: str = "epsilon"  # "epsilon" | "v_prediction"

    def scheduler_kwargs(self) -> dict:
        return asdict(self)


def training_scheduler(cfg: ScheduleConfig) -> DDPMScheduler:
    """A fresh DDPM scheduler holding the noise schedule (add_noise / get_velocity)."""
    if cfg.prediction_type not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type={cfg.prediction_type!r}: use 'epsilon' or 'v_prediction'")
    return DDPMScheduler(**cfg.scheduler_kwargs())


def noise_clips(scheduler: DDPMScheduler, latents: torch.Tensor,
                generator: torch.Generator | None = None):
    """latents [B,T,C,h,w] -> (noisy, timesteps [B], target) with ONE timestep per clip."""
    b = latents.shape[0]
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator)
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    # add_noise broadcasts per-sample coefficients over all trailing axes, frames included.
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    return noisy, timesteps, target
