"""Samplers: diffusers schedulers as ready-made parts, one small factory per name in SCHEDULERS
(chosen by SamplerConfig.name), and a plain denoising loop. A new scheduler instance per call
(thread-safe); tensors live on the device of the generator (or of `start`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import torch
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler
from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteScheduler
from tqdm import tqdm

from drivesim.diffusion.noise import mixed_noise
from drivesim.diffusion.schedule import ScheduleConfig

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_in, t [B]) -> model output


class InferenceScheduler(Protocol):
    """What drivesim reads of a scheduler of SCHEDULERS (diffusers types add_noise's timesteps as
    IntTensor, yet takes any integer tensor)."""

    timesteps: torch.Tensor
    alphas_cumprod: torch.Tensor

    @property
    def init_noise_sigma(self) -> float | torch.Tensor: ...

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor: ...


def ddim(cfg: ScheduleConfig) -> DDIMScheduler:
    """DDIM (Song et al. 2021), deterministic, for the training schedule `cfg`."""
    return DDIMScheduler(**cfg.scheduler_kwargs(), clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def dpmpp(cfg: ScheduleConfig) -> DPMSolverMultistepScheduler:
    """DPM-Solver++ 2M (Lu et al. 2022) for the training schedule `cfg`."""
    return DPMSolverMultistepScheduler(**cfg.scheduler_kwargs(), algorithm_type="dpmsolver++", solver_order=2)


def euler(cfg: ScheduleConfig) -> EulerDiscreteScheduler:
    """Euler (Karras et al. 2022, k-diffusion's sample_euler) for the training schedule `cfg`."""
    return EulerDiscreteScheduler(**cfg.scheduler_kwargs())


SCHEDULERS: dict[
    str, Callable[[ScheduleConfig], DDIMScheduler | DPMSolverMultistepScheduler | EulerDiscreteScheduler]
] = {"ddim": ddim, "dpmpp": dpmpp, "euler": euler}
SAMPLERS = tuple(SCHEDULERS)


@dataclass(frozen=True)
class SamplerConfig:
    """Which scheduler, how many steps, where to start and which starting-noise prior."""

    name: str = "dpmpp"  # a key of SCHEDULERS
    steps: int = 25
    # SDEdit (Meng et al. 2022): begin from a guess noised to `strength` of the schedule; 1 = pure noise
    strength: float = 1.0
    # share of the starting noise common to all frames (PYoCo, Ge et al. 2023); None = the model's prior
    frame_correlation: float | None = None


def make_scheduler(name: str, cfg: ScheduleConfig) -> InferenceScheduler:
    """A fresh inference scheduler SCHEDULERS[name] for the training schedule."""
    if name not in SCHEDULERS:
        raise ValueError(f"sampler={name!r}: use one of {SAMPLERS}")
    return cast(InferenceScheduler, SCHEDULERS[name](cfg))


def sdedit_timesteps(
    scheduler, steps: int, strength: float, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Set `scheduler` up for `steps` steps over the lowest `strength` of the schedule -> [steps] t."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength={strength}: must be in (0, 1]")
    total = max(steps, round(steps / strength))
    scheduler.set_timesteps(total, device=device)
    skip = total - steps
    if skip and hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(skip * scheduler.order)
    return scheduler.timesteps[skip * scheduler.order :]


def denoise_loop(
    denoise: Denoiser,
    x: torch.Tensor,
    scheduler,
    timesteps: torch.Tensor,
    generator: torch.Generator | None = None,
    known: tuple | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """x [B,...] at timesteps[0] -> x at t = 0, one scheduler step per timestep.

    known = (latents, noise, mask [B,T]): after every step the known frames are replaced by
    the known latents noised to the next step's level (replacement sampling, Ho et al. 2022)."""
    for i, t in enumerate(tqdm(timesteps, desc="sampling", disable=not progress)):
        out = denoise(scheduler.scale_model_input(x, t), t.expand(x.shape[0]))
        x = scheduler.step(out, t, x, generator=generator).prev_sample
        if known is not None:
            latents, noise, keep = known
            x[keep] = (
                scheduler.add_noise(latents, noise, timesteps[i + 1 : i + 2])[keep]
                if i + 1 < len(timesteps)
                else latents[keep]
            )
    return x


def sample(
    denoise: Denoiser,
    shape: tuple[int, ...],
    sampler: SamplerConfig,
    schedule: ScheduleConfig,
    generator: torch.Generator | None = None,
    *,
    known: tuple[torch.Tensor, torch.Tensor] | None = None,
    start: torch.Tensor | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Sample latents `shape` [B,T,C,h,w] with sampler.steps steps of scheduler sampler.name.

    known = (latents [B,T,...], mask [B,T]): frames kept as given (noised to every step's level).
    start [B,T,...]: the SDEdit guess used when sampler.strength < 1."""
    if sampler.strength < 1 and start is None:
        raise ValueError(f"strength={sampler.strength} < 1 needs a start guess of shape {list(shape)}")
    scheduler = make_scheduler(sampler.name, schedule)
    device = generator.device if generator is not None else "cpu"
    timesteps = sdedit_timesteps(scheduler, sampler.steps, sampler.strength, device)
    correlation = sampler.frame_correlation
    if correlation is None:
        correlation = schedule.frame_correlation
    noise = mixed_noise(shape, generator, correlation)
    skipped = len(timesteps) < len(scheduler.timesteps)
    if skipped:
        assert start is not None  # steps are skipped only for strength < 1, which needs start (above)
        x = scheduler.add_noise(start, noise, timesteps[:1])
    else:
        x = noise * scheduler.init_noise_sigma
    replace = None
    if known is not None:
        latents, mask = known
        keep = mask.bool()
        known_noise = mixed_noise(shape, generator, correlation)
        x[keep] = scheduler.add_noise(latents, known_noise, timesteps[:1])[keep]
        replace = (latents, known_noise, keep)
    return denoise_loop(denoise, x, scheduler, timesteps, generator, replace, progress)
