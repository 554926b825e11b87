"""`drivesim train upsampler`: the 4x upsampler, an image stage on single frames, then a video
stage that trains only the temporal layers (spatial weights frozen, paper section 3.4).

Each sample is an aligned crop pair (high-res target, low-res input). The low-res input is
noise-augmented to a random level in [0, max_noise_level] of the diffusion schedule and the
model is told that level; at inference a modest level is chosen (UpsampleSettings.noise_level).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from drivesim.diffusion.noise import mixed_noise
from drivesim.diffusion.samplers import make_scheduler, sdedit_timesteps
from drivesim.diffusion.schedule import ScheduleConfig, training_scheduler, x0_preconditioning
from drivesim.models.model_index import load_part
from drivesim.models.temporal_layers import spatial_parameters, temporal_parameters
from drivesim.models.upsampler import UpsamplerConfig, UpsamplerUNet, bicubic_upsample
from drivesim.train.common import CsvLog, apply_gradients, make_ema, resume_run, save_run
from drivesim.train.distributed import (
    barrier,
    close_ranks,
    main_first,
    mean_over_ranks,
    start_run,
    sync_gradients,
    take_rows,
    wrap,
)
from drivesim.train.upsampler_data import HighResCacheConfig, ensure_highres_cache, sample_pairs
from drivesim.utils import autocast

STAGES = ("image", "video")


@dataclass(frozen=True)
class UpsamplerTrainConfig:
    stage: str = "image"  # image | video
    out_dir: str = "runs/upsampler/image"
    init_from: str | None = None  # video stage: the image upsampler checkpoint
    upsampler: UpsamplerConfig = field(default_factory=UpsamplerConfig)
    cache: HighResCacheConfig = field(default_factory=HighResCacheConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    crop: tuple[int, int] = (128, 256)  # high-res crop; multiples of upsampler.size_multiple
    num_frames: int = 8  # video stage
    # Low-res noise augmentation drawn from [0, this] (20: sigma <= 0.14 on [-1, 1] frames). At 100
    # (sigma up to 0.34) or 300 the noise buried the thin lane marks the upsampler has to sharpen:
    # runs of 1,250 steps stayed no better than bicubic at t = T.
    max_noise_level: int = 20
    decoded_share: float = 0.3  # share of low-res inputs from the autoencoder's reconstruction
    # Train at the timesteps of a `sample_steps`-step trailing sampler (None: all 1,000). Uniform
    # timesteps left the t = T prediction no better than bicubic after 1,250 steps, while the same
    # network regressing only that target beat bicubic by 1.1 dB in 400 steps.
    sample_steps: int | None = 4
    # Video stage: weight of an MSE on consecutive-frame differences of the prediction against
    # the target's (a flicker penalty, as the temporal decoder's motion loss). At 0 the temporal
    # layers lowered the image stage's flicker by 0.2 %; at 5 (600 steps) by 5-6.5 %.
    motion_weight: float = 5.0
    steps: int = 3000
    batch_size: int = 8  # crops (image stage) or clips (video stage)
    lr: float = 5e-4
    grad_clip: float = 1.0
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size is the global batch)
    ema_decay: float = 0.99
    log_every: int = 10
    save_every: int = 250
    seed: int = 0
    device: str = "cpu"


def build_upsampler(cfg: UpsamplerTrainConfig) -> UpsamplerUNet:
    """Fresh image model, or the video model inflated from `init_from` with spatial weights frozen."""
    if cfg.stage not in STAGES:
        raise ValueError(f"stage={cfg.stage!r}: use one of {STAGES}")
    m = cfg.upsampler.size_multiple
    if cfg.crop[0] % m or cfg.crop[1] % m:
        raise ValueError(f"crop={list(cfg.crop)}: both sides must be multiples of {m}")
    if not 0 <= cfg.max_noise_level < cfg.schedule.num_train_timesteps:
        raise ValueError(
            f"max_noise_level={cfg.max_noise_level}: must be in [0, {cfg.schedule.num_train_timesteps - 1}]"
        )
    if cfg.cache.scale != cfg.upsampler.scale:
        raise ValueError(f"cache.scale={cfg.cache.scale} differs from upsampler.scale={cfg.upsampler.scale}")
    if cfg.stage == "image":
        return UpsamplerUNet(cfg.upsampler)
    if not cfg.init_from:
        raise ValueError(
            "stage=video needs init_from=<image upsampler checkpoint>, e.g. "
            "init_from=runs/upsampler/image/ema"
        )
    image = load_part(cfg.init_from, "upsampler", UpsamplerUNet)
    if image.cfg != cfg.upsampler:
        raise ValueError(
            f"init_from={cfg.init_from} has upsampler={image.cfg}; this run asks for "
            f"{cfg.upsampler}: use the same upsampler config"
        )
    model = UpsamplerUNet.from_image_model(image)
    for p in spatial_parameters(model):
        p.requires_grad_(False)
    return model


def sampling_timesteps(schedule: ScheduleConfig, steps: int) -> torch.Tensor:
    """The timesteps a `steps`-step DDIM sampler of this schedule visits, e.g. [999, 749, 499, 249]."""
    return sdedit_timesteps(make_scheduler("ddim", schedule), steps, 1.0).long()


def upsampler_inputs(
    scheduler,
    high: torch.Tensor,
    low: torch.Tensor,
    cfg: UpsamplerTrainConfig,
    generator: torch.Generator,
    batch: int | None = None,
    rows: slice = slice(None),
) -> dict[str, torch.Tensor]:
    """high [b,T,3,H,W], low [b,T,3,H/s,W/s] (rows `rows` of a global batch of `batch` clips, default
    all b) -> the model's inputs and target for those rows; the random draws are the whole global
    batch's, so any split of it gets the same numbers. The residual over bicubic is scaled, the
    low-res input noise-augmented to a random level."""
    b = batch or high.shape[0]
    residual = (high - bicubic_upsample(low, cfg.upsampler.scale)) * cfg.upsampler.residual_scale
    if cfg.sample_steps:
        choices = sampling_timesteps(cfg.schedule, cfg.sample_steps)
        timesteps = choices[torch.randint(len(choices), (b,), generator=generator)]
    else:
        timesteps = torch.randint(0, cfg.schedule.num_train_timesteps, (b,), generator=generator)
    noise = mixed_noise((b, *residual.shape[1:]), generator, cfg.schedule.frame_correlation)
    level = torch.randint(0, cfg.max_noise_level + 1, (b,), generator=generator)
    low_noise = torch.randn((b, *low.shape[1:]), generator=generator)
    timesteps, noise, level, low_noise = (
        v[rows].to(high.device) for v in (timesteps, noise, level, low_noise)
    )
    noisy = scheduler.add_noise(residual, noise.to(residual), timesteps)
    low_aug = scheduler.add_noise(low, low_noise.to(low), level)
    alpha_bar = scheduler.alphas_cumprod.to(high.device)[timesteps][:, None, None, None, None]
    c_in, c_skip, c_out = x0_preconditioning(alpha_bar, cfg.upsampler.sigma_data)
    return {
        "x": c_in * noisy,
        "low": low_aug,
        "timesteps": timesteps,
        "level": level,
        "target": (residual - c_skip * noisy) / c_out,
    }


def prediction_loss(
    model: nn.Module,  # an UpsamplerUNet, or the DDP around one
    inputs: dict[str, torch.Tensor],
    cfg: UpsamplerTrainConfig,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """MSE of the network's preconditioned x0 target (unit variance at every t) for upsampler_inputs
    (+ motion_weight * the same MSE on consecutive-frame differences)."""
    with autocast(device):
        out = model(
            inputs["x"], inputs["low"], inputs["timesteps"], inputs["level"], image_only=cfg.stage == "image"
        ).float()
    target = inputs["target"]
    loss = F.mse_loss(out, target)
    if cfg.motion_weight and out.shape[1] > 1:  # c_out is one per clip: frame differences of x0
        loss = loss + cfg.motion_weight * F.mse_loss(out.diff(dim=1), target.diff(dim=1))
    return loss


def upsampler_loss(
    model: UpsamplerUNet,
    scheduler,
    high: torch.Tensor,
    low: torch.Tensor,
    cfg: UpsamplerTrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """high [B,T,3,H,W], low [B,T,3,H/s,W/s] -> the training loss of one batch (one process)."""
    return prediction_loss(model, upsampler_inputs(scheduler, high, low, cfg, generator), cfg, high.device)


def train_upsampler(cfg: UpsamplerTrainConfig, progress: bool = True) -> Path:
    """Train per cfg (one process, or every rank under torchrun); resumes from out_dir/last;
    returns the EMA checkpoint prefix."""
    out, ranks, device, generator = start_run(cfg)
    model = build_upsampler(cfg)
    frames = 1 if cfg.stage == "image" else cfg.num_frames
    if frames > cfg.cache.num_frames:
        raise ValueError(f"num_frames={frames} exceeds the cache's clips of {cfg.cache.num_frames} frames")
    # the image stage bypasses the temporal layers (image_only), the video stage freezes the rest
    params = temporal_parameters(model) if cfg.stage == "video" else spatial_parameters(model)
    trained = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    ema = make_ema(model, cfg.ema_decay)
    log = CsvLog(out / "loss.csv", ["step", "loss", "seconds"]) if ranks.is_main else None
    step = resume_run(out, model, ema, optimizer, generator, log)
    model.to(device).train()
    ema.to(device)
    cache = main_first(ranks, lambda: ensure_highres_cache(cfg.cache, progress and ranks.is_main))
    scheduler = training_scheduler(cfg.schedule)
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.to(device)
    meta = {
        "upsampler": cfg.upsampler.to_dict(),
        "schedule": asdict(cfg.schedule),
        "stage": cfg.stage,
        "max_noise_level": cfg.max_noise_level,
        "train_config": asdict(cfg),
    }
    net = wrap(model, ranks)
    loaded = ranks.load_rows(cfg.batch_size)  # this rank's crops of every global batch
    start = time.perf_counter()
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=f"train upsampler ({cfg.stage})",
        disable=not (progress and ranks.is_main),
    )
    while step < cfg.steps:
        rng = np.random.default_rng([cfg.seed, step])  # a resumed run draws the same crops
        high, low = sample_pairs(
            cache, cfg.batch_size, frames, cfg.crop, cfg.upsampler.scale, cfg.decoded_share, rng, rows=loaded
        )
        inputs = upsampler_inputs(
            scheduler, high.to(device), low.to(device), cfg, generator, batch=cfg.batch_size, rows=loaded
        )
        optimizer.zero_grad(set_to_none=True)
        step_loss = torch.zeros(())
        for micro in range(ranks.grad_accum):
            rows = ranks.micro_rows(micro, cfg.batch_size)
            with sync_gradients(net, ranks, micro):
                part = take_rows(inputs, slice(rows.start - loaded.start, rows.stop - loaded.start))
                loss = prediction_loss(net, part, cfg, device)
                (loss / ranks.grad_accum).backward()
            step_loss += loss.detach().cpu() / ranks.grad_accum
        apply_gradients(model, optimizer, params, cfg.grad_clip, ema)
        step += 1
        step_loss = float(mean_over_ranks(step_loss, ranks))
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.4f}")
        if log and (step % cfg.log_every == 0 or step == cfg.steps):
            log.write(step=step, loss=f"{step_loss:.6f}", seconds=f"{time.perf_counter() - start:.1f}")
        if step % cfg.save_every == 0 or step == cfg.steps:
            if ranks.is_main:
                save_run(out, model, ema, optimizer, generator, step, meta)
            barrier(ranks)
    bar.close()
    close_ranks(ranks)
    return out / "ema"
