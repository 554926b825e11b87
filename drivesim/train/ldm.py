"""Image-LDM training, video fine-tuning of the temporal layers (paper section 3.1) and the
masked-context prediction / interpolation models (sections 3.2-3.3).

stage="image": the spatial UNet and the condition encoders train on single latent frames;
the temporal layers are bypassed (image_only). stage="video": the model is inflated from
an image checkpoint and ONLY the temporal layers train; spatial weights are frozen.
stage="prediction" / "interpolation": a video (or prediction) checkpoint gains a context
encoder; again only temporal parameters (context encoder included) train.
Latents come from a cache built once with the frozen autoencoder encoder.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from tqdm import tqdm

from conditioners import ConditionDropout
from drivesim.data.conditions import as_conditions, tensor_dict
from drivesim.diffusion.schedule import ScheduleConfig, noise_clips, training_scheduler
from drivesim.models.autoencoder import AutoencoderKL
from drivesim.models.model_index import load_part, part_prefix
from drivesim.models.temporal_layers import is_temporal, spatial_parameters, temporal_parameters
from drivesim.models.unet import UNetConfig, VideoUNet
from drivesim.models.unet_widen import WIDENED_FIELDS, widen_unet
from drivesim.models.weights import read_config
from drivesim.train.common import (
    CsvLog,
    apply_gradients,
    make_ema,
    resume_run,
    save_run,
)
from drivesim.train.context_batches import (
    INTERPOLATION_FACTOR,
    interpolation_context,
    prediction_context,
    random_window,
)
from drivesim.train.distributed import (
    RankBatches,
    Ranks,
    barrier,
    close_ranks,
    gather_rows,
    main_first,
    mean_over_ranks,
    shuffled_batches,
    start_run,
    sync_gradients,
    take_rows,
    wrap,
)
from drivesim.train.latent_cache import LatentClipDataset, build_latent_cache, pick_frames
from drivesim.utils import autocast

logger = logging.getLogger(__name__)

TRAIN_STAGES = ("image", "video", "prediction", "interpolation")  # LDMTrainConfig.stage


@dataclass(frozen=True)
class LatentCacheConfig:
    path: str = "runs/latents/procedural.safetensors"
    autoencoder: str = "runs/autoencoder/image/final"
    clips: int = 500
    num_frames: int = 8
    fps: float = 7.5
    size: tuple[int, int] = (128, 256)
    seed: int = 1000
    # real footage mixed in: a folder (or file) of videos with Scalabel labels beside them, e.g.
    # `drivesim label` pseudo-labels; every clip start `real_stride_s` apart joins the world's clips
    real_root: str | None = None
    real_stride_s: float = 0.25


@dataclass(frozen=True)
class LDMTrainConfig:
    stage: str = "image"  # image | video | prediction | interpolation
    latents: LatentCacheConfig = field(default_factory=LatentCacheConfig)
    # interpolation: clips at 4x the key rate for stage 2 (4T->16T); `latents` serve stage 1
    fast_latents: LatentCacheConfig | None = None
    context_channels: int = 32  # prediction / interpolation: context feature width per level
    context_drop: float = 0.1  # interpolation: P(no known frame), for context guidance
    # Context stages: False scores only the frames the model has to generate; known frames are
    # replaced at sampling time, and their (easy) loss would otherwise dominate the context path.
    known_frames_in_loss: bool = False
    out_dir: str = "runs/image_ldm"
    # video stage: the image-LDM checkpoint to inflate; prediction / interpolation: a video LDM (or
    # prediction model); image stage: a checkpoint whose spatial layers to fine-tune (e.g. on a new
    # world), its temporal layers kept as they are. The run keeps init_from's latent scale.
    init_from: str | None = None
    # video / prediction / interpolation: replace init_from's spatial layers with this checkpoint's
    # before training (temporal layers reused on a fine-tuned image backbone, as the paper does
    # with DreamBooth-tuned ones)
    spatial_from: str | None = None
    # init_from (and spatial_from) may have fewer latent channels and box classes than `unet`:
    # they are grown to it first (models/unet_widen.py), for a widened autoencoder's latents. The
    # latent scale is then the new cache's (or spatial_from's), not init_from's.
    widen_init: bool = False
    unet: UNetConfig = field(default_factory=UNetConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    dropout: ConditionDropout = field(default_factory=ConditionDropout)
    steps: int = 3000  # steps, batch_size, lr: as in train_image_ldm.yaml (tests/test_cli.py checks)
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size is the global batch)
    ema_decay: float = 0.999
    gradient_checkpointing: bool = False
    # Video stage only: every N-th step is an image batch (one frame per clip, image_only)
    # that trains the SPATIAL layers, while video steps train only the temporal ones. 0 = off:
    # spatial weights stay frozen, as in the paper.
    image_batch_every: int = 0
    log_every: int = 10
    save_every: int = 250
    seed: int = 0
    num_workers: int = 0
    device: str = "cpu"  # cpu | cuda (bf16 autocast); the data pipeline and random draws stay on the CPU


def build_model(cfg: LDMTrainConfig) -> VideoUNet:
    """Fresh model (image stage) or built from `init_from` with spatial weights frozen."""
    if cfg.stage not in TRAIN_STAGES:
        raise ValueError(f"stage={cfg.stage!r}: use one of {TRAIN_STAGES}")
    if cfg.stage == "image":
        return _checked_init(cfg.init_from, cfg, "init_from") if cfg.init_from else VideoUNet(cfg.unet)
    if not cfg.init_from:
        source = "an image-LDM" if cfg.stage == "video" else "a video-LDM (or prediction)"
        raise ValueError(f"stage={cfg.stage} needs init_from=<{source} checkpoint>")
    init = _checked_init(cfg.init_from, cfg, "init_from")
    if cfg.spatial_from:
        copy_spatial(_checked_init(cfg.spatial_from, cfg, "spatial_from"), init)
    if cfg.stage == "video":
        model = VideoUNet.from_image_unet(init)
    elif init.cfg.context_channels:
        model = init
    else:
        model = VideoUNet.with_context(init, cfg.context_channels)
    for p in spatial_parameters(model):
        p.requires_grad_(False)
    return model


def _checked_init(prefix: str, cfg: LDMTrainConfig, name: str) -> VideoUNet:
    """The VideoUNet at `prefix`, which must have this run's unet config (context width aside)."""
    init = load_part(prefix, "unet", VideoUNet)
    if cfg.widen_init:
        grown = {f: getattr(cfg.unet, f) for f in WIDENED_FIELDS}
        if any(getattr(init.cfg, f) != v for f, v in grown.items()):
            init = widen_unet(init, dataclasses.replace(init.cfg, **grown))
    if dataclasses.replace(init.cfg, context_channels=0) != dataclasses.replace(cfg.unet, context_channels=0):
        raise ValueError(
            f"{name}={prefix} was trained with unet={init.cfg}, "
            f"but this run asks for unet={cfg.unet}: use the same unet config"
        )
    return init


def copy_spatial(source: VideoUNet, target: VideoUNet) -> None:
    """Load source's spatial (non-temporal) weights into target in place; temporal ones stay."""
    spatial = {n: p for n, p in source.state_dict().items() if not is_temporal(n)}
    missing = [n for n in spatial if n not in target.state_dict()]
    if missing:
        raise ValueError(f"spatial_from: {len(missing)} weights the target lacks, e.g. {missing[0]}")
    target.load_state_dict(spatial, strict=False)


def _grows(unet: dict, cfg: LDMTrainConfig) -> bool:
    """Whether a checkpoint's unet config (JSON) has fewer channels or classes than this run's."""
    return any(unet.get(f, getattr(UNetConfig, f)) != getattr(cfg.unet, f) for f in WIDENED_FIELDS)


def init_latent_scale(cfg: LDMTrainConfig) -> float | None:
    """The latent scale of init_from (a fine-tune keeps its model's latent space), if it states one;
    when widen_init grows init_from onto a new latent space, spatial_from's (or None: the cache's)."""
    source = cfg.init_from
    if cfg.widen_init and source and _grows(read_config(part_prefix(source, "unet")).get("unet", {}), cfg):
        source = cfg.spatial_from
    if not source:
        return None
    scale = read_config(part_prefix(source, "unet")).get("latent_scale")
    return float(scale) if scale is not None else None


def ensure_latent_cache(cfg: LatentCacheConfig) -> Path:
    """Build the latent cache of procedural clips with the frozen AE encoder, if missing."""
    path = Path(cfg.path)
    if path.exists():
        return path
    from drivesim.data.procedural import ProceduralClipDataset

    ae = load_part(cfg.autoencoder, "autoencoder", AutoencoderKL).eval()
    clips: Dataset = ProceduralClipDataset(
        length=cfg.clips, num_frames=cfg.num_frames, fps=cfg.fps, size=cfg.size, seed=cfg.seed
    )
    meta = {"autoencoder": cfg.autoencoder, "fps": cfg.fps}
    if cfg.real_root:
        from drivesim.data.video_folder import VideoFolderDataset

        real = VideoFolderDataset(
            cfg.real_root, num_frames=cfg.num_frames, fps=cfg.fps, size=cfg.size, stride_s=cfg.real_stride_s
        )
        clips = ConcatDataset([clips, real])
        meta |= {"real_root": cfg.real_root, "real_clips": len(real)}
    return build_latent_cache(clips, lambda x: ae.encode(x).mode(), path, meta=meta)


def train_ldm(cfg: LDMTrainConfig, progress: bool = True) -> Path:
    """Train per cfg (one process, or every rank under torchrun); resumes from out_dir/last if
    present; returns the final checkpoint path."""
    out, ranks, device, generator = start_run(cfg)
    model = build_model(cfg).to(device).train()
    model.gradient_checkpointing = cfg.gradient_checkpointing
    params = spatial_parameters(model) if cfg.stage == "image" else temporal_parameters(model)
    mixed = cfg.stage == "video" and cfg.image_batch_every > 0
    spatial = spatial_parameters(model) if mixed else []
    params = params + spatial
    trained = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = make_ema(model, cfg.ema_decay)
    scheduler = training_scheduler(cfg.schedule)
    log = CsvLog(out / "loss.csv", ["step", "loss", "lr", "seconds"]) if ranks.is_main else None
    meta = {"stage": cfg.stage, "train_config": asdict(cfg)}

    step = resume_run(out, model, ema, optimizer, generator, log)
    if step and ranks.is_main:
        logger.info("resuming %s training from step %d", cfg.stage, step)

    caches = [cfg.latents]
    if cfg.stage == "interpolation" and cfg.fast_latents is not None:
        caches.append(cfg.fast_latents)
    paths = main_first(ranks, lambda: [ensure_latent_cache(c) for c in caches])  # rank 0 builds them
    sources = [LatentClipDataset(path) for path in paths]
    data = sources[0]
    scale = init_latent_scale(cfg) or data.scale
    meta["latent_scale"] = scale
    meta["autoencoder"] = cfg.latents.autoencoder
    # loader k serves the steps k, k + len(sources), ...: it has given (step - k) / len batches so far
    loaders = [_loader(d, cfg, -(-(step - k) // len(sources)), ranks) for k, d in enumerate(sources)]
    # image steps of mixed training skip the temporal layers
    net = wrap(model, ranks, find_unused=mixed)
    start = time.perf_counter()
    bar = tqdm(
        total=cfg.steps, initial=step, desc=f"train {cfg.stage}-ldm", disable=not (progress and ranks.is_main)
    )
    while step < cfg.steps:
        which = step % len(loaders)  # interpolation: alternate stage 1 and stage 2 batches
        latents, cond = gather_rows(next(loaders[which]), ranks)  # the global batch
        latents = latents * scale  # one scale for every cache: the model's latent space
        image_step = cfg.stage == "image" or (mixed and (step + 1) % cfg.image_batch_every == 0)
        if image_step:
            latents, cond = pick_frames(latents, cond, generator)
        context = None
        if cfg.stage == "prediction":
            context = prediction_context(latents, generator)
        elif cfg.stage == "interpolation":
            latents, cond = random_window(latents, cond, INTERPOLATION_FACTOR + 1, generator)
            context = interpolation_context(latents, 1 + which, generator, cfg.context_drop)
        cond = cfg.dropout(cond, generator, cfg.unet.box_classes)
        noisy, timesteps, target = noise_clips(
            scheduler, latents, generator, 0.0 if image_step else cfg.schedule.frame_correlation
        )
        # the context loss averages over the unknown frames of the whole global batch
        unknown = None if context is None or cfg.known_frames_in_loss else (1 - context.mask).sum()
        optimizer.zero_grad(set_to_none=True)
        step_loss = torch.zeros(())
        for micro in range(ranks.grad_accum):
            rows = ranks.micro_rows(micro, cfg.batch_size)
            x, t, y = (v[rows].to(device) for v in (noisy, timesteps, target))
            c = as_conditions({k: v[rows].to(device) for k, v in tensor_dict(cond).items()})
            ctx = None if context is None else take_rows(context, rows).to(device)
            with sync_gradients(net, ranks, micro):
                with autocast(device):
                    pred = net(x, t, c, image_only=image_step, context=ctx).float()
                if unknown is not None:
                    assert ctx is not None  # unknown is only counted with a context
                    loss = unknown_frame_mse(pred, y, ctx.mask, unknown / ranks.shards)
                else:
                    loss = torch.nn.functional.mse_loss(pred, y)
                (loss / ranks.grad_accum).backward()
            step_loss += loss.detach().cpu() / ranks.grad_accum
        # video steps of mixed training move only the temporal layers
        apply_gradients(
            model, optimizer, params, cfg.grad_clip, ema, frozen=spatial if mixed and not image_step else ()
        )
        step += 1
        step_loss = float(mean_over_ranks(step_loss, ranks))
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.4f}")
        if log and (step % cfg.log_every == 0 or step == cfg.steps):
            log.write(
                step=step, loss=f"{step_loss:.6f}", lr=cfg.lr, seconds=f"{time.perf_counter() - start:.1f}"
            )
        if step % cfg.save_every == 0 or step == cfg.steps:
            if ranks.is_main:
                save_run(out, model, ema, optimizer, generator, step, {"unet": model.cfg.to_dict(), **meta})
            barrier(ranks)
    bar.close()
    close_ranks(ranks)
    return out / "ema"


def unknown_frame_mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    unknown_frames: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """pred, target [B,T,C,h,w], mask [B,T] (1 = known) -> MSE over the unknown frames only, per
    unknown frame of these rows, or of `unknown_frames` (a shard's share of the global batch's)."""
    per_frame = (pred - target).pow(2).mean(dim=(2, 3, 4))
    weight = 1 - mask.to(per_frame.dtype)
    total = weight.sum() if unknown_frames is None else torch.as_tensor(unknown_frames, dtype=weight.dtype)
    return (per_frame * weight).sum() / total.to(weight.device).clamp(min=1e-6)


def _loader(data: LatentClipDataset, cfg: LDMTrainConfig, start: int, ranks: Ranks):
    """Endless batches: this rank's rows of each global batch, from global batch `start` on (the
    same global batches at any world size, and after a resume)."""
    if len(data) < cfg.batch_size:
        raise ValueError(
            f"latent cache has {len(data)} clips, fewer than batch_size={cfg.batch_size}: "
            "lower batch_size or build the cache with more clips"
        )
    batches = RankBatches(shuffled_batches(len(data), cfg.batch_size, cfg.seed, start), ranks)
    return iter(DataLoader(data, batch_sampler=batches, num_workers=cfg.num_workers))
