"""Training-side diffusion: one noise level per clip, eps- or v-prediction targets.

The default is the zero-terminal-SNR schedule of Lin et al. 2024 ("Common Diffusion Noise
Schedules and Sample Steps are Flawed"): rescaled betas reach alpha_bar = 0 at t = T, the
model predicts v, and samplers space their steps "trailing" so the first one is t = T. With
signal left at t = T (the old scaled_linear schedule kept ~7 %) the starting noise decides a
clip's brightness and the model learns to ignore its conditions and context frames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

import torch
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

from drivesim.diffusion.noise import mixed_noise

# Fields written by checkpoints from before these keys existed take these values.
LEGACY_SCHEDULE = {"rescale_betas_zero_snr": False, "timestep_spacing": "leading", "frame_correlation": 0.0}


@dataclass(frozen=True)
class ScheduleConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"  # the LDM / Stable Diffusion betas, then rescaled
    prediction_type: str = "v_prediction"  # "epsilon" | "v_prediction"
    rescale_betas_zero_snr: bool = True
    timestep_spacing: str = "trailing"  # inference steps start at t = T
    # The noise prior, shared by training and sampling: share of every frame's N(0, I) noise that
    # is common to the clip (mixed noise, PYoCo). Not a diffusers scheduler argument.
    frame_correlation: float = 0.0

    @classmethod
    def from_dict(cls, values: dict) -> ScheduleConfig:
        """From a checkpoint's schedule mapping; keys it lacks take their pre-zero-SNR values."""
        return cls(**{**LEGACY_SCHEDULE, **values})

    def scheduler_kwargs(self) -> dict:
        kwargs = dataclasses.asdict(self)
        kwargs.pop("frame_correlation")
        return kwargs


def training_scheduler(cfg: ScheduleConfig) -> DDPMScheduler:
    """A fresh DDPM scheduler holding the noise schedule (add_noise / get_velocity)."""
    if cfg.prediction_type not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type={cfg.prediction_type!r}: use 'epsilon' or 'v_prediction'")
    if cfg.rescale_betas_zero_snr and cfg.prediction_type == "epsilon":
        raise ValueError(
            "rescale_betas_zero_snr=true needs prediction_type=v_prediction: at zero "
            "terminal SNR the noise is the input, so eps-prediction learns nothing at t = T"
        )
    if not 0 <= cfg.frame_correlation < 1:
        raise ValueError(f"frame_correlation={cfg.frame_correlation}: must be in [0, 1)")
    return DDPMScheduler(**cfg.scheduler_kwargs())


def terminal_snr(cfg: ScheduleConfig) -> float:
    """alpha_bar / (1 - alpha_bar) at t = T (0 for the zero-terminal-SNR schedule)."""
    a = float(training_scheduler(cfg).alphas_cumprod[-1])
    return a / (1 - a)


def noise_clips(
    scheduler: DDPMScheduler,
    latents: torch.Tensor,
    generator: torch.Generator | None = None,
    frame_correlation: float = 0.0,
):
    """latents [B,T,C,h,w] -> (noisy, timesteps [B], target) with ONE timestep per clip; the noise
    follows the same mixed prior the samplers start from."""
    b = latents.shape[0]
    timesteps = torch.randint(
        0,
        scheduler.config["num_train_timesteps"],
        (b,),
        generator=generator,
        device=generator.device if generator is not None else "cpu",
    )
    noise = mixed_noise(latents.shape, generator, frame_correlation).to(latents)
    timesteps = timesteps.to(latents.device)
    int_t = cast(torch.IntTensor, timesteps)  # diffusers' type for it; any integer tensor works
    # add_noise broadcasts per-sample coefficients over all trailing axes, frames included.
    noisy = scheduler.add_noise(latents, noise, int_t)
    if scheduler.config["prediction_type"] == "v_prediction":
        target = scheduler.get_velocity(latents, noise, int_t)
    else:
        target = noise
    return noisy, timesteps, target


def velocity(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """v = sqrt(a) eps - sqrt(1 - a) x0 (Salimans & Ho 2022); alpha_bar broadcastable."""
    return alpha_bar.sqrt() * eps - (1 - alpha_bar).sqrt() * x0


def x0_preconditioning(alpha_bar: torch.Tensor, sigma_data: float):
    """(c_in, c_skip, c_out): x0 = c_skip x_t + c_out F(c_in x_t) (EDM, Karras et al. 2022, in VP form).
    c_skip x_t is the best linear guess of an x0 of std sigma_data, F's target has unit variance at
    every t, and c_in scales the input by its signal (0 at zero SNR, where x_t is pure noise)."""
    total = alpha_bar * sigma_data**2 + (1 - alpha_bar)
    c_in = (alpha_bar / total).sqrt()
    return c_in, alpha_bar.sqrt() * sigma_data**2 / total, ((1 - alpha_bar) / total).sqrt() * sigma_data


def velocity_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The v that an x0 prediction at x_t implies: (sqrt(a) x_t - x0) / sqrt(1 - a); alpha_bar < 1."""
    return (alpha_bar.sqrt() * x_t - x0) / (1 - alpha_bar).sqrt()


def x0_and_eps(
    x_t: torch.Tensor, out: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """A model output (eps or v) at x_t -> (x0, eps); v works at alpha_bar = 0, eps cannot."""
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    if prediction_type == "v_prediction":
        return a * x_t - s * out, s * x_t + a * out
    return (x_t - s * out) / a, out
