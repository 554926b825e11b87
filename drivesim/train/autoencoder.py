"""Autoencoder training: image AE (stage 'image') then temporal decoder (stage 'temporal').

Image stage: encoder + decoder on random crops of single frames, L1 + SSIM + KL, and a 2D
patch discriminator (hinge) with the adaptive weight once `disc_start` steps have passed.
Temporal stage: the decoder's temporal layers train (the encoder is frozen, so the latent
space of the image LDM does not move; `train_spatial` also fine-tunes the decoder's own
weights), on crops of clips, against a 3D-conv video discriminator that also sees
frame-shuffled real clips as fakes, plus an L1 on consecutive-frame differences (a flicker
penalty: per-frame reconstruction errors that change from frame to frame are what the eye
sees as flicker).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import torch
from torch.utils.data import ConcatDataset, DataLoader
from tqdm import tqdm

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.models.autoencoder import AutoencoderConfig, AutoencoderKL
from drivesim.models.autoencoder_widen import widen_latent
from drivesim.models.discriminators import (
    PatchDiscriminator2D,
    VideoPatchDiscriminator3D,
    hinge_d_loss,
    hinge_g_loss,
    shuffle_frames,
)
from drivesim.models.model_index import load_part
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.models.temporal_layers import TemporalConvBlock, is_temporal
from drivesim.models.weights import load_checkpoint, read_config, save_checkpoint
from drivesim.train.ae_losses import (
    adaptive_gan_weight,
    motion_loss,
    reconstruction_loss,
    reference_flows,
    warped_motion_loss,
)
from drivesim.train.common import CsvLog
from drivesim.train.distributed import (
    RankBatches,
    average_gradients,
    barrier,
    close_ranks,
    gather_rows,
    mean_over_ranks,
    shuffled_batches,
    start_run,
    sync_gradients,
    wrap,
)
from drivesim.utils import autocast

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AETrainConfig:
    stage: str = "image"  # image | temporal
    out_dir: str = "runs/autoencoder"
    init_from: str | None = None  # image AE checkpoint (temporal stage; image stage: start from it)
    train_encoder: bool = True  # image stage: False fine-tunes the decoder only (the latent space stays)
    # image stage with init_from: grow its latent to this many channels first (decodes as before;
    # the new channels start unused, see models/autoencoder_widen.py)
    widen_latent: int | None = None
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    steps: int = 2000
    batch_size: int = 8  # frames (image) or clips (temporal)
    num_frames: int = 8  # temporal stage clip length
    crop: tuple[int, int] = (64, 128)  # random crops of the 128x256 frames
    size: tuple[int, int] = (128, 256)
    lr: float = 4e-4
    kl_weight: float = 1e-6
    ssim_weight: float = 0.5
    motion_weight: float = 1.0  # temporal stage: L1 between frame differences of recon and input
    # temporal stage: L1 of the residual's change after warping it along the input's optical flow
    # (what `eval autoencoder` calls warped flicker; flow on the CPU, Farneback)
    warped_motion_weight: float = 0.0
    train_spatial: bool = False  # temporal stage: also fine-tune the image decoder's own weights
    # temporal stage: start the temporal layers from this temporal decoder's (not at identity), e.g.
    # to carry trained ones over to a fine-tuned image decoder
    temporal_from: str | None = None
    disc_weight: float = 0.5
    disc_start: int = 500
    disc_lr: float = 2e-4
    real_video_root: str | None = None  # optional folder of real videos mixed in
    real_fraction: float = 0.25
    log_every: int = 10
    save_every: int = 250
    # final = the mean of the checkpoints of the last `average_last` saves (save_every apart, kept
    # as step<N>); 1 = the last weights. Without an EMA, the warped-motion fine-tune's metrics
    # moved by more than their margin from one save to the next; the mean of three was steadier.
    average_last: int = 1
    seed: int = 0
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size is the global batch)
    device: str = "cpu"  # cpu | cuda (bf16 autocast); data and random draws stay on the CPU


def _frames_dataset(cfg: AETrainConfig, image_mode: bool) -> ProceduralClipDataset | ConcatDataset:
    frames = 1 if image_mode else cfg.num_frames
    procedural = ProceduralClipDataset(
        length=100_000, num_frames=frames, size=cfg.size, seed=cfg.seed, image_mode=image_mode
    )
    if not cfg.real_video_root:
        return procedural
    from drivesim.data.video_folder import VideoFolderDataset

    real = VideoFolderDataset(
        cfg.real_video_root, num_frames=frames, size=cfg.size, stride_s=0.2, image_mode=image_mode
    )
    # Repeat the (small) real set so it makes up about real_fraction of the samples.
    repeats = max(1, round(cfg.real_fraction * len(procedural) / max(len(real), 1)))
    return ConcatDataset([procedural, *[real] * min(repeats, 10_000)])


def random_crop(x: torch.Tensor, crop: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Same random crop (multiple of 8 offsets) for every item: [..., H, W] -> [..., ch, cw]."""
    h, w = x.shape[-2:]
    ch, cw = crop
    y0 = int(torch.randint(0, (h - ch) // 8 + 1, (1,), generator=generator)) * 8
    x0 = int(torch.randint(0, (w - cw) // 8 + 1, (1,), generator=generator)) * 8
    return x[..., y0 : y0 + ch, x0 : x0 + cw]


def _save(model, disc, step, out: Path, cfg: AETrainConfig, name: str, **extra) -> None:
    meta = {
        "autoencoder": model.cfg.to_dict(),
        "stage": cfg.stage,
        "step": step,
        "train_config": asdict(cfg),
        **extra,
    }
    save_checkpoint(model, out / name, meta)
    if disc is not None:  # averaging snapshots need the model only
        save_checkpoint(disc, out / f"{name}_disc", {"step": step})


def averaged_steps(cfg: AETrainConfig) -> list[int]:
    """The steps whose weights make the final checkpoint (cfg.average_last saves, save_every apart)."""
    first = cfg.steps - (cfg.average_last - 1) * cfg.save_every
    if cfg.average_last < 1 or first < 1:
        raise ValueError(
            f"average_last={cfg.average_last}: must be >= 1 and at most steps / save_every "
            f"({cfg.steps // cfg.save_every})"
        )
    return list(range(first, cfg.steps + 1, cfg.save_every))


def average_into(model: torch.nn.Module, prefixes: list[Path]) -> None:
    """Load the mean of the checkpoints at `prefixes` (same architecture) into `model`."""
    missing = [str(p) for p in prefixes if not Path(f"{p}.safetensors").exists()]
    if missing:
        raise FileNotFoundError(
            f"cannot average: {', '.join(missing)} missing (re-run from before "
            f"those steps, or set average_last=1)"
        )
    total = {k: torch.zeros_like(v, dtype=torch.float32) for k, v in model.state_dict().items()}
    for prefix in prefixes:
        load_checkpoint(prefix, lambda c: model)
        for k, v in model.state_dict().items():
            total[k] += v.float()
    model.load_state_dict({k: v / len(prefixes) for k, v in total.items()})


def copy_temporal(source: TemporalDecoder, target: TemporalDecoder) -> None:
    """Load source's temporal-layer weights into target in place; its image decoder stays."""
    temporal = {n: p for n, p in source.state_dict().items() if is_temporal(n)}
    if not temporal or any(n not in target.state_dict() for n in temporal):
        raise ValueError("temporal_from: not a temporal decoder with this autoencoder's layout")
    target.load_state_dict(temporal, strict=False)


def _image_model(cfg: AETrainConfig, generator: torch.Generator) -> AutoencoderKL:
    """The image stage's starting model: init_from (widened if asked) or a new one."""
    if not cfg.init_from:
        if cfg.widen_latent is not None:
            raise ValueError("widen_latent needs init_from=<image autoencoder checkpoint> to widen")
        return AutoencoderKL(cfg.autoencoder)
    model = load_part(cfg.init_from, "autoencoder", AutoencoderKL)
    if cfg.widen_latent is not None and cfg.widen_latent != model.cfg.latent_channels:
        model = widen_latent(model, cfg.widen_latent, generator)
    return model


def train_autoencoder(cfg: AETrainConfig, progress: bool = True) -> Path:
    """Run one stage (one process, or every rank under torchrun); resumes from out_dir/last;
    returns the checkpoint prefix."""
    averaged = averaged_steps(cfg)
    out, ranks, device, generator = start_run(cfg)
    image = cfg.stage == "image"
    latent_channels = 0  # the image stage's (its posterior noise)
    if image:
        image_model = _image_model(cfg, generator)
        latent_channels = image_model.cfg.latent_channels
        model: AutoencoderKL | TemporalDecoder = image_model
        disc: torch.nn.Module = PatchDiscriminator2D()
        trains = lambda name: cfg.train_encoder or not name.startswith(("encoder.", "quant_conv."))
        for n, p in model.named_parameters():
            p.requires_grad_(trains(n))
        params = [p for n, p in model.named_parameters() if trains(n)]
        last_layer = model.decoder.conv_out.weight
    elif cfg.stage == "temporal":
        if not cfg.init_from:
            raise ValueError("stage=temporal needs init_from=<image autoencoder checkpoint>")
        ae = load_part(cfg.init_from, "autoencoder", AutoencoderKL).eval()
        model = TemporalDecoder.from_image_autoencoder(ae)
        if cfg.temporal_from:
            copy_temporal(load_part(cfg.temporal_from, "temporal_decoder", TemporalDecoder), model)
        disc = VideoPatchDiscriminator3D()
        for p in ae.parameters():
            p.requires_grad_(False)
        trains = lambda name: cfg.train_spatial or is_temporal(name)
        params = [p for n, p in model.named_parameters() if trains(n)]
        for n, p in model.named_parameters():
            p.requires_grad_(trains(n))
        last_layer = cast(TemporalConvBlock, model.temporal_up[-1]).conv1.weight
    else:
        raise ValueError(f"stage={cfg.stage!r}: use 'image' or 'temporal'")
    model.to(device)
    disc.to(device)
    if not image:
        ae.to(device)
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9))
    fields = ["step", "rec", "kl", "g", "d", "gan_weight", "seconds"]
    log = CsvLog(out / "loss.csv", fields) if ranks.is_main else None
    step = 0
    if (out / "last.json").exists():
        load_checkpoint(out / "last", lambda c: model)
        load_checkpoint(out / "last_disc", lambda c: disc)
        step = int(read_config(out / "last")["step"])
        if log:
            log.truncate_after(step)
        generator.manual_seed(cfg.seed + step)
        if ranks.is_main:
            logger.info(
                "resuming %s autoencoder training from step %d (optimizer state reset)", cfg.stage, step
            )

    data = _frames_dataset(cfg, image)
    batches = RankBatches(shuffled_batches(len(data), cfg.batch_size, cfg.seed, step), ranks)
    loader = iter(DataLoader(data, batch_sampler=batches, num_workers=0))
    net = wrap(model, ranks)
    start = time.perf_counter()
    bar = tqdm(
        total=cfg.steps, initial=step, desc=f"train {cfg.stage} AE", disable=not (progress and ranks.is_main)
    )
    while step < cfg.steps:
        frames, _ = gather_rows(next(loader), ranks)  # the global batch
        frames = random_crop(frames, cfg.crop, generator)
        noise = None
        if image:  # the posterior samples of the global batch, drawn as one process would
            b, _, h, w = frames.shape
            noise = torch.randn((b, latent_channels, h // 8, w // 8), generator=generator)
        use_gan = step >= cfg.disc_start
        opt.zero_grad(set_to_none=True)
        fakes, reals = [], []
        logged = torch.zeros(4)  # rec, kl, g, gan weight: this rank's mean over its micro-batches
        for micro in range(ranks.grad_accum):
            rows = ranks.micro_rows(micro, cfg.batch_size)
            x = frames[rows].to(device)
            with sync_gradients(net, ranks, micro):
                if image:
                    assert noise is not None  # drawn above for every image step
                    with autocast(device):
                        recon, posterior = net(x, noise=noise[rows].to(device))
                    recon = recon.float()
                    kl = posterior.kl().float().mean()
                    fake, real = recon, x
                else:
                    with torch.no_grad():
                        z = ae.encode(x.flatten(0, 1)).mode().unflatten(0, x.shape[:2])
                    with autocast(device):
                        recon = net(z).float()
                    kl = torch.zeros((), device=device)
                    fake = recon.transpose(1, 2).contiguous()  # [B,3,T,H,W]
                    real = x.transpose(1, 2).contiguous()
                rec = reconstruction_loss(recon.flatten(0, -4), x.flatten(0, -4), cfg.ssim_weight)
                if not image and cfg.motion_weight:
                    rec = rec + cfg.motion_weight * motion_loss(recon, x)
                if not image and cfg.warped_motion_weight:
                    rec = rec + cfg.warped_motion_weight * warped_motion_loss(recon, x, reference_flows(x))
                loss = rec + cfg.kl_weight * kl
                g_loss, weight = torch.zeros((), device=device), torch.zeros((), device=device)
                if use_gan:  # the adaptive weight is each rank's own (its rows' gradients)
                    g_loss = hinge_g_loss(disc(fake))
                    weight = adaptive_gan_weight(rec, g_loss, last_layer) * cfg.disc_weight
                    loss = loss + weight * g_loss
                (loss / ranks.grad_accum).backward()
            if use_gan:  # the discriminator step below sees this rank's rows
                fakes.append(fake.detach())
                reals.append(real)
            logged += torch.stack([rec, kl, g_loss, weight]).detach().float().cpu() / ranks.grad_accum
        opt.step()
        d_loss = torch.zeros(())
        if use_gan:
            fake, real = torch.cat(fakes), torch.cat(reals)
            if not image:  # temporal order matters: a shuffled real clip is a fake too
                fake = torch.cat([fake, shuffle_frames(real, generator)])
            d_loss = hinge_d_loss(disc(real), disc(fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            average_gradients(disc, ranks)
            opt_d.step()
        step += 1
        logged = torch.cat([logged, d_loss.detach().float().cpu().reshape(1)])
        rec_, kl_, g_, w_, d_ = mean_over_ranks(logged, ranks).tolist()
        bar.update(1)
        bar.set_postfix(rec=f"{rec_:.4f}", d=f"{d_:.3f}")
        if log and (step % cfg.log_every == 0 or step == cfg.steps):
            log.write(
                step=step,
                rec=f"{rec_:.5f}",
                kl=f"{kl_:.2f}",
                g=f"{g_:.4f}",
                d=f"{d_:.4f}",
                gan_weight=f"{w_:.4f}",
                seconds=f"{time.perf_counter() - start:.0f}",
            )
        snapshot = cfg.average_last > 1 and step in averaged  # steps may not divide by save_every
        if step % cfg.save_every == 0 or step == cfg.steps or snapshot:
            if ranks.is_main:
                _save(model, disc, step, out, cfg, "last")
                if snapshot:
                    _save(model, None, step, out, cfg, f"step{step}")
            barrier(ranks)
    bar.close()
    if ranks.is_main:
        extra = {}
        if cfg.average_last > 1:
            average_into(model, [out / f"step{s}" for s in averaged])
            extra = {"averaged_steps": averaged}
        _save(model, disc, step, out, cfg, "final", **extra)
    close_ranks(ranks)
    return out / "final"
