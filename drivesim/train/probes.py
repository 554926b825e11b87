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
from torch.utils.data import DataLoader
from tqdm import tqdm

from drivesim.data.procedural import InfiniteProceduralClips, ProceduralClipDataset
from drivesim.models.discriminators import shuffle_frames
from drivesim.models.probes import BoxProbe, ClipProbe, ProbeConfig
from drivesim.models.weights import load_checkpoint, save_checkpoint
from drivesim.train.common import CsvLog, load_train_state, save_train_state, seed_everything
from drivesim.train.probe_data import reconstructed_loaders


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


def clip_losses(probe: ClipProbe, frames: torch.Tensor, cond: dict, generator: torch.Generator):
    """Multi-task loss; half of each batch is frame-shuffled (its order label is 1)."""
    b = frames.shape[0]
    shuffled = torch.arange(b) % 2 == 1
    frames = frames.clone()
    if shuffled.any():  # a batch of one clip (the end of a small cache) has none
        frames[shuffled] = torch.stack([shuffle_frames(v, generator, dim=0) for v in frames[shuffled]])
    out = probe(frames)
    return (F.cross_entropy(out["time_of_day"], cond["time_of_day"], ignore_index=-1)
            + F.cross_entropy(out["crowdedness"], cond["crowdedness"], ignore_index=-1)
            + F.mse_loss(out["speed"], cond["ego_speed"] / cond["fps"] / 2)  # metres per frame
            + F.binary_cross_entropy_with_logits(out["shuffled"], shuffled.float()))


def train_probes(cfg: ProbeTrainConfig, progress: bool = True) -> Path:
    """Train both probes; resumes from out_dir/last; returns the out_dir (clip.*, box.*)."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = seed_everything(cfg.seed)
    clip_probe, box_probe = ClipProbe(cfg.probe), BoxProbe(cfg.probe)
    optimizer = torch.optim.AdamW([*clip_probe.parameters(), *box_probe.parameters()], lr=cfg.lr)
    log = CsvLog(out / "loss.csv", ["step", "clip_loss", "box_loss", "seconds"])
    step = 0
    if (out / "last.state.pt").exists():
        load_checkpoint(out / "clip", lambda c: clip_probe)
        load_checkpoint(out / "box", lambda c: box_probe)
        step, extra = load_train_state(out / "last.state.pt", optimizer)
        generator.set_state(torch.tensor(extra["generator"], dtype=torch.uint8))
        log.truncate_after(step)
    datasets = [ProceduralClipDataset(num_frames=cfg.num_frames, fps=fps, size=cfg.size,
                                      seed=cfg.seed + 1 + i) for i, fps in enumerate(cfg.fps)]
    loaders = [iter(DataLoader(InfiniteProceduralClips(d, start=step * cfg.batch_size),
                               batch_size=cfg.batch_size)) for d in datasets]
    recon_loaders = (reconstructed_loaders(datasets, cfg.reconstruct_with, cfg.reconstructed_clips,
                                           cfg.batch_size, out, cfg.seed + step)
                     if cfg.reconstruct_with else None)
    meta = {"probe": cfg.probe.to_dict(), "train_config": asdict(cfg)}
    start = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=step, desc="train probes", disable=not progress)
    while step < cfg.steps:
        source = loaders
        if recon_loaders and float(torch.rand((), generator=generator)) < cfg.reconstructed_share:
            source = recon_loaders
        frames, cond = next(source[step % len(loaders)])
        clip_loss = clip_losses(clip_probe, frames, cond, generator)
        crops, boxes, labels = box_samples(frames, cond, cfg, generator)
        box_loss = F.binary_cross_entropy_with_logits(box_probe(crops, boxes), labels)
        optimizer.zero_grad(set_to_none=True)
        (clip_loss + box_loss).backward()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(clip=f"{clip_loss.item():.3f}", box=f"{box_loss.item():.3f}")
        if step % cfg.log_every == 0 or step == cfg.steps:
            log.write(step=step, clip_loss=f"{clip_loss.item():.5f}", box_loss=f"{box_loss.item():.5f}",
                      seconds=f"{time.perf_counter() - start:.1f}")
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(clip_probe, out / "clip", {**meta, "step": step})
            save_checkpoint(box_probe, out / "box", {**meta, "step": step})
            save_train_state(out / "last.state.pt", step, optimizer,
                             {"generator": generator.get_state().tolist()})
    bar.close()
    return out

