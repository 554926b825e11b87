"""Training of the evaluation probes (`drivesim train probes`) on procedural clips.

ClipProbe learns time of day, crowdedness, ego motion per frame and "are the frames shuffled" from
clips at the key-frame rate and at 30 fps; BoxProbe learns car / no car on crops of real
boxes vs random boxes that miss every car. Labels are exact (the procedural world).
With `reconstruct_with`, a share of the batches are clips after the autoencoder round trip
(train/probe_data.py), so the probes judge content, not the decoder's blur.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.models.discriminators import shuffle_frames
from drivesim.models.probes import BoxProbe, ClipProbe, ProbeConfig
from drivesim.models.weights import load_checkpoint, save_checkpoint
from drivesim.train.common import CsvLog, load_train_state, save_train_state
from drivesim.train.distributed import (
    RankBatches,
    barrier,
    close_ranks,
    gather_rows,
    main_first,
    mean_over_ranks,
    sequential_batches,
    start_run,
    sync_gradients,
    wrap,
)
from drivesim.train.probe_data import reconstructed_loaders
from drivesim.utils import autocast


@dataclass(frozen=True)
class ProbeTrainConfig:
    out_dir: str = "runs/probes"
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    num_frames: int = 8
    fps: tuple[float, ...] = (7.5, 30.0)  # one dataset per rate, alternating batches
    size: tuple[int, int] = (128, 256)
    steps: int = 800
    batch_size: int = 8
    lr: float = 1e-3
    min_box_height: float = 8.0  # pixels at `size`: smaller cars are not probed
    boxes_per_clip: int = 4
    reconstruct_with: str | None = None  # model folder: also train on clips through its decoders
    reconstructed_clips: int = 96  # per fps, round-tripped once into out_dir
    reconstructed_share: float = 0.5  # of the batches
    log_every: int = 10
    save_every: int = 200
    seed: int = 0
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size is the global batch)
    device: str = "cpu"  # cpu | cuda (bf16 autocast)


def box_samples(frames: torch.Tensor, cond: dict, cfg: ProbeTrainConfig, generator: torch.Generator):
    """Positive crops (car boxes tall enough) and as many negatives (random boxes with IoU < 0.05
    to every car) from one random frame per clip -> frames [N,3,H,W], boxes [N,4], labels [N]."""
    out_frames, out_boxes, labels = [], [], []
    min_h = cfg.min_box_height / cfg.size[0]
    for clip, boxes, mask in zip(frames, cond["boxes"], cond["box_mask"]):
        t = int(torch.randint(len(clip), (1,), generator=generator))
        real = boxes[t][mask[t]]
        pos = real[(real[:, 3] - real[:, 1]) >= min_h][: cfg.boxes_per_clip]
        neg = _random_boxes(real, len(pos) or 1, min_h, generator)
        for group, label in ((pos, 1.0), (neg, 0.0)):
            out_frames += [clip[t]] * len(group)
            out_boxes.append(group)
            labels += [label] * len(group)
    return torch.stack(out_frames), torch.cat(out_boxes), torch.tensor(labels)


def _random_boxes(real: torch.Tensor, n: int, min_h: float, generator: torch.Generator) -> torch.Tensor:
    found = []
    for _ in range(50 * n):
        h = min_h + float(torch.rand((), generator=generator)) * 0.3
        w = h * (1.0 + float(torch.rand((), generator=generator)))  # cars are wider than tall
        x1, y1 = (float(torch.rand((), generator=generator)) * (1 - s) for s in (w / 2, h))
        box = torch.tensor([x1, y1, min(x1 + w / 2, 1.0), y1 + h])
        if len(real) == 0 or float(box_iou(box[None], real).max()) < 0.05:
            found.append(box)
            if len(found) == n:
                break
    return torch.stack(found) if found else torch.zeros(0, 4)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [N,4], b [M,4] (x1,y1,x2,y2) -> IoU [N,M]."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(-1)
    return inter / (area(a)[:, None] + area(b)[None] - inter).clamp(min=1e-12)


def shuffle_half(frames: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """[B,T,3,H,W] -> (a copy whose odd clips have their frames shuffled, shuffled [B] bool)."""
    shuffled = torch.arange(frames.shape[0]) % 2 == 1
    frames = frames.clone()
    if shuffled.any():  # a batch of one clip (the end of a small cache) has none
        frames[shuffled] = torch.stack([shuffle_frames(v, generator, dim=0) for v in frames[shuffled]])
    return frames, shuffled


def clip_losses(
    probe: nn.Module,  # a ClipProbe, or the DDP around one
    frames: torch.Tensor,
    shuffled: torch.Tensor,
    cond: dict,
    rows: slice = slice(None),
    shards: int = 1,
) -> torch.Tensor:
    """Multi-task loss of a batch [B,T,3,H,W] from shuffle_half. The probe sees `rows`; each term is
    their sum over the whole batch's count x shards, so the mean over equal shards is the batch's loss."""
    out = probe(frames[rows])
    part = {k: v[rows] for k, v in cond.items()}

    def labelled(key: str) -> torch.Tensor:
        total = (cond[key] != -1).sum().clamp(min=1)
        return F.cross_entropy(out[key], part[key], ignore_index=-1, reduction="sum") / total

    speed = cond["ego_speed"] / cond["fps"] / 2  # metres per frame
    return shards * (
        labelled("time_of_day")
        + labelled("crowdedness")
        + F.mse_loss(out["speed"], speed[rows], reduction="sum") / speed.numel()
        + F.binary_cross_entropy_with_logits(out["shuffled"], shuffled[rows].float(), reduction="sum")
        / len(shuffled)
    )


def box_loss(
    probe: nn.Module,  # a BoxProbe, or the DDP around one
    crops: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    rows: slice = slice(None),
    shards: int = 1,
) -> torch.Tensor:
    """Car / no car BCE on `rows` of box_samples' N crops, as a share of the mean over all N."""
    logits = probe(crops[rows], boxes[rows])
    return shards * F.binary_cross_entropy_with_logits(logits, labels[rows], reduction="sum") / len(labels)


def train_probes(cfg: ProbeTrainConfig, progress: bool = True) -> Path:
    """Train both probes (one process, or every rank under torchrun); resumes from out_dir/last;
    returns the out_dir (clip.*, box.*)."""
    out, ranks, device, generator = start_run(cfg)
    clip_probe, box_probe = ClipProbe(cfg.probe).to(device), BoxProbe(cfg.probe).to(device)
    optimizer = torch.optim.AdamW([*clip_probe.parameters(), *box_probe.parameters()], lr=cfg.lr)
    log = CsvLog(out / "loss.csv", ["step", "clip_loss", "box_loss", "seconds"]) if ranks.is_main else None
    step = 0
    if (out / "last.state.pt").exists():
        load_checkpoint(out / "clip", lambda c: clip_probe)
        load_checkpoint(out / "box", lambda c: box_probe)
        step, extra = load_train_state(out / "last.state.pt", optimizer)
        generator.set_state(torch.tensor(extra["generator"], dtype=torch.uint8))
        if log:
            log.truncate_after(step)
    datasets = [
        ProceduralClipDataset(num_frames=cfg.num_frames, fps=fps, size=cfg.size, seed=cfg.seed + 1 + i)
        for i, fps in enumerate(cfg.fps)
    ]
    in_order = lambda d: RankBatches(
        sequential_batches(len(d), cfg.batch_size, start=step * cfg.batch_size), ranks
    )
    loaders = [iter(DataLoader(d, batch_sampler=in_order(d))) for d in datasets]
    recon_loaders = None
    if cfg.reconstruct_with:  # rank 0 builds the caches
        reconstruct_with = cfg.reconstruct_with
        recon_loaders = main_first(
            ranks,
            lambda: reconstructed_loaders(
                datasets,
                reconstruct_with,
                cfg.reconstructed_clips,
                cfg.batch_size,
                out,
                cfg.seed + step,
                ranks,
            ),
        )
    nets = wrap(clip_probe, ranks), wrap(box_probe, ranks)
    meta = {"probe": cfg.probe.to_dict(), "train_config": asdict(cfg)}
    start = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=step, desc="train probes", disable=not (progress and ranks.is_main))
    while step < cfg.steps:
        source = loaders
        if recon_loaders and float(torch.rand((), generator=generator)) < cfg.reconstructed_share:
            source = recon_loaders
        frames, cond = gather_rows(next(source[step % len(loaders)]), ranks)  # the global batch
        frames, shuffled = shuffle_half(frames, generator)
        crops, boxes, labels = box_samples(frames, cond, cfg, generator)
        frames, cond = frames.to(device), {k: v.to(device) for k, v in cond.items()}
        crops, boxes, labels, shuffled = (v.to(device) for v in (crops, boxes, labels, shuffled))
        optimizer.zero_grad(set_to_none=True)
        logged = torch.zeros(2)
        for micro in range(ranks.grad_accum):
            with sync_gradients(nets[0], ranks, micro), sync_gradients(nets[1], ranks, micro):
                with autocast(device):
                    clip = clip_losses(
                        nets[0], frames, shuffled, cond, ranks.micro_rows(micro, len(frames)), ranks.shards
                    )
                    box = box_loss(
                        nets[1], crops, boxes, labels, ranks.micro_rows(micro, len(labels)), ranks.shards
                    )
                (clip + box).div(ranks.grad_accum).backward()
            logged += torch.stack([clip, box]).detach().float().cpu() / ranks.grad_accum
        optimizer.step()
        step += 1
        clip_, box_ = mean_over_ranks(logged, ranks).tolist()
        bar.update(1)
        bar.set_postfix(clip=f"{clip_:.3f}", box=f"{box_:.3f}")
        if log and (step % cfg.log_every == 0 or step == cfg.steps):
            log.write(
                step=step,
                clip_loss=f"{clip_:.5f}",
                box_loss=f"{box_:.5f}",
                seconds=f"{time.perf_counter() - start:.1f}",
            )
        if step % cfg.save_every == 0 or step == cfg.steps:
            if ranks.is_main:
                save_checkpoint(clip_probe, out / "clip", {**meta, "step": step})
                save_checkpoint(box_probe, out / "box", {**meta, "step": step})
                save_train_state(
                    out / "last.state.pt", step, optimizer, {"generator": generator.get_state().tolist()}
                )
            barrier(ranks)
    bar.close()
    close_ranks(ranks)
    return out
