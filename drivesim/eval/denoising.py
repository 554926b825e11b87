"""Held-out denoising loss of the LDM stages with fixed noise: is the video model better than its
image model frame by frame, and do context frames help? (Per-step training losses are too
noisy to show that.) Same clips, noise and timesteps for every model."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from tqdm import tqdm

from conditioners.context import Context, keyframe_mask, leading_mask
from drivesim.data.conditions import PER_FRAME_KEYS, as_conditions, tensor_dict
from drivesim.diffusion.noise import mixed_noise
from drivesim.diffusion.schedule import ScheduleConfig, training_scheduler
from drivesim.models.unet import VideoUNet
from drivesim.train.latent_cache import LatentClipDataset
from drivesim.utils import HELD_OUT_SEED, module_device, resolve_device

TIMESTEPS = (100, 300, 500, 700, 900)


@torch.no_grad()
def denoising_loss(
    model: VideoUNet,
    data: LatentClipDataset,
    scale: float,
    clips: int = 32,
    num_frames: int = 8,
    seed: int = 0,
    image_only: bool = False,
    context: int = 0,
    keyframes: bool = False,
    stage: int = 0,
    progress: bool = False,
    schedule: ScheduleConfig | None = None,
) -> float:
    """Mean MSE against the model's own target (eps or v, per `schedule`, the one it trained with)
    over `clips` clips x TIMESTEPS on the frames the model has to generate.

    context: leading known frames (prediction); keyframes: every 4th frame known
    (interpolation, num_frames = 4k+1). Known frames are left out of the mean."""
    schedule = schedule or ScheduleConfig()
    scheduler = training_scheduler(schedule)
    g = torch.Generator().manual_seed(seed)
    device = module_device(model)
    correlation = 0.0 if image_only else schedule.frame_correlation
    v_model = schedule.prediction_type == "v_prediction"
    total, count = 0.0, 0
    for i in tqdm(range(min(clips, len(data))), desc="denoising loss", disable=not progress):
        latents, cond = data[i]
        values = tensor_dict(cond)
        cond = as_conditions(
            {
                k: (v[None, :num_frames] if k in PER_FRAME_KEYS else v[None]).to(device)
                for k, v in values.items()
            }
        )
        latents = latents[None, :num_frames].to(device) * scale
        b, t = latents.shape[:2]
        mask = (keyframe_mask(b, t) if keyframes else leading_mask(b, t, context)).to(device)
        ctx = (
            Context(latents, mask, torch.tensor([stage], device=device))
            if model.cfg.context_channels
            else None
        )
        for step in TIMESTEPS:
            noise = mixed_noise(latents.shape, g, correlation).to(device)  # CPU draws: same on any device
            ts = cast(torch.IntTensor, torch.tensor([step], device=device))  # diffusers' type for timesteps
            noisy = scheduler.add_noise(latents, noise, ts)
            pred = model(noisy, ts, cond, image_only=image_only, context=ctx)
            target = scheduler.get_velocity(latents, noise, ts) if v_model else noise
            err = ((pred - target) ** 2).mean(dim=(2, 3, 4))[0]  # per frame
            unknown = mask[0] == 0
            total += float(err[unknown].sum())
            count += int(unknown.sum())
    return total / count


def heldout_caches(model_dir, cache_dir: str, clips: int) -> dict[float, LatentClipDataset]:
    """{7.5: key-rate clips, 30.0: 30 fps clips} of 8 frames, held out (procedural seed 987654),
    encoded with the model folder's autoencoder; built on first use. A cache is named by its
    clip count and a hash of the autoencoder's weights, so another count or autoencoder never
    reuses it."""
    from drivesim.models.model_index import part_prefix
    from drivesim.models.weights import weights_digest
    from drivesim.train.ldm import LatentCacheConfig, ensure_latent_cache

    autoencoder = str(part_prefix(model_dir, "autoencoder"))
    weights = weights_digest(autoencoder)
    return {
        fps: LatentClipDataset(
            ensure_latent_cache(
                LatentCacheConfig(
                    path=f"{cache_dir}/heldout_{fps:g}fps_{clips}clips_{weights}.safetensors",
                    autoencoder=autoencoder,
                    clips=clips,
                    num_frames=8,
                    fps=fps,
                    seed=HELD_OUT_SEED,
                )
            )
        )
        for fps in (7.5, 30.0)
    }


def denoising_report(
    model_dir: str,
    cache_dir: str = "runs/latents",
    clips: int = 32,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, float]:
    """Held-out losses of every LDM stage in a model folder (unet, prediction, interpolation);
    builds held-out latent caches (procedural seed 987654) with the folder's autoencoder."""
    from drivesim.models.model_index import has_part, load_part, part_prefix
    from drivesim.models.weights import read_config

    folder = Path(model_dir)
    scale = float(read_config(part_prefix(folder, "unet"))["latent_scale"])
    caches = heldout_caches(folder, cache_dir, clips)
    load = lambda name: load_part(folder, name, VideoUNet).to(resolve_device(device)).eval()
    schedule = lambda name: ScheduleConfig.from_dict(
        read_config(part_prefix(folder, name)).get("train_config", {}).get("schedule", {})
    )
    key, fast = caches[7.5], caches[30.0]
    out = {}
    video, sched = load("unet"), schedule("unet")
    out["image model (video unet, image_only)"] = denoising_loss(
        video, key, scale, clips, image_only=True, schedule=sched
    )
    out["video model"] = denoising_loss(video, key, scale, clips, schedule=sched)
    if has_part(folder, "prediction"):
        pred, sched = load("prediction"), schedule("prediction")
        for n in (0, 1, 2):
            out[f"prediction, {n} context frames"] = denoising_loss(
                pred, key, scale, clips, context=n, schedule=sched
            )
    if has_part(folder, "interpolation"):
        interp, sched = load("interpolation"), schedule("interpolation")
        for stage, data in ((1, key), (2, fast)):
            for known in (False, True):
                name = f"interpolation stage {stage}, {'key frames given' if known else 'no key frames'}"
                out[name] = denoising_loss(
                    interp, data, scale, clips, num_frames=5, keyframes=known, stage=stage, schedule=sched
                )
    return out
