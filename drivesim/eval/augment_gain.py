"""`drivesim eval gain`: does training on augmented variants help a detector on held-out real footage?

A small vehicle detector (gain_detector.CenterNet, random init) is trained for the same number of
steps on (a) real labelled frames, (b) the same frames plus variants of them (a catalog from
`drivesim augment`) and (c) the same frames plus re-lit copies of them (photometric jitter: does
a model's variant add more than a change of light?), once per seed, then scored by AP50 on a
held-out real set with the definition of `drivesim eval detector` (labels >= 24 px high and
half visible; smaller ones are ignored). Labels may be pseudo-labels from `drivesim label`. Every
frame is centre-cropped to the input's aspect (1:2 by default) and resized to it; variant frames
whose labels are incomplete (an added crowd) are left out.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from drivesim.data.clips import center_crop_to_aspect, transform_box
from drivesim.data.labels import Box
from drivesim.data.video_folder import iter_frames
from drivesim.eval.augment_structure import to_base
from drivesim.eval.detector import VEHICLES, Detection
from drivesim.eval.detector_score import DetectorTally, clip_sources
from drivesim.eval.gain_detector import CenterNet, centernet_loss, decode, draw_targets

ARMS = ("real", "real+variants", "real+jitter")
MIN_TRAIN_BOX_PX = 4  # boxes smaller than this at the input size are not trained on


@dataclass
class LabelledFrames:
    """Frames of a set at the input size, with their vehicle boxes."""

    images: list[np.ndarray] = field(default_factory=list)  # uint8 [H,W,3] at the input size
    boxes: list[np.ndarray] = field(default_factory=list)  # float32 [K,4] x1,y1,x2,y2 in input px
    crop_boxes: list[list[Box]] = field(default_factory=list)  # every label, in crop px (for AP50)
    scales: list[float] = field(default_factory=list)  # input px per crop px
    jitter: bool = False  # sample_batch re-lights each frame (photometric_jitter)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def box_count(self) -> int:
        return sum(len(b) for b in self.boxes)


def load_frames(
    path: str | Path, size: tuple[int, int], every: int = 1, progress: bool = True
) -> LabelledFrames:
    """Every `every`-th labelled frame of a folder / video / catalog, centre-cropped to the aspect of
    size (H, W) and resized to it."""
    out = LabelledFrames()
    sources = [s for s in clip_sources(path) if s.labels]
    for source in tqdm(sources, desc=f"load {Path(path).name}", unit="clip", disable=not progress):
        indices = [i for i in range(0, source.num_frames, every) if labels_usable(source.labels.get(i))]
        for index, frame in iter_frames(source, indices):
            crop = center_crop_to_aspect(*frame.shape[:2], aspect_w_over_h=size[1] / size[0])
            y0, y1, x0, x1 = crop
            crop_hw = (y1 - y0, x1 - x0)
            in_crop = [b for b in (transform_box(b, crop, crop_hw) for b in source.labels[index].boxes) if b]
            scale = size[1] / crop_hw[1]
            out.images.append(to_base(frame, size))  # the same crop, resized
            boxes = [[b.x1, b.y1, b.x2, b.y2] for b in in_crop if b.category in VEHICLES]
            boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale
            out.boxes.append(boxes[(boxes[:, 3] - boxes[:, 1]) >= MIN_TRAIN_BOX_PX])
            out.crop_boxes.append(in_crop)
            out.scales.append(scale)
    if not out.images:
        raise ValueError(
            f"{path}: no frame with complete box labels (a same-stem Scalabel .json with 'labels' per "
            "frame); `drivesim label` makes them for real footage"
        )
    return out


def labels_usable(label) -> bool:
    """A frame with known boxes, and not marked incomplete (a variant with an added crowd)."""
    return (
        label is not None
        and label.boxes is not None
        and (label.attributes or {}).get("labelsComplete", "true") != "false"
    )


def sample_batch(
    pools: list[LabelledFrames], counts: list[int], rng: np.random.Generator
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """counts[i] random frames of pools[i], each flipped left-right with p 0.5 (and re-lit if the pool
    says so) -> images [B,3,H,W] in [0,1] and their boxes."""
    images, boxes = [], []
    for pool, count in zip(pools, counts):
        for i in rng.integers(0, len(pool), count):
            image, b = pool.images[i], pool.boxes[i].copy()
            if rng.random() < 0.5:
                image = image[:, ::-1]
                b[:, [0, 2]] = image.shape[1] - b[:, [2, 0]]
            if pool.jitter:
                image = photometric_jitter(image, rng)
            images.append(torch.from_numpy(np.ascontiguousarray(image)))
            boxes.append(torch.from_numpy(b))
    return torch.stack(images).permute(0, 3, 1, 2).float() / 255, boxes


def photometric_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [H,W,3] re-lit without a model: gamma 0.7-1.5, brightness x0.25-1.2 and a tint of
    0.85-1.15 per channel (the light a day -> night variant changes, for the baseline arm)."""
    x = (image.astype(np.float32) / 255) ** rng.uniform(0.7, 1.5)
    x = x * rng.uniform(0.25, 1.2) * rng.uniform(0.85, 1.15, 3)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def batch_counts(batch: int, shares: list[float]) -> list[int]:
    """Split a batch over pools by share (the first pool takes the rounding)."""
    counts = [round(batch * s) for s in shares[1:]]
    return [batch - sum(counts), *counts]


def train_detector(
    pools: list[LabelledFrames],
    shares: list[float],
    steps: int,
    batch: int,
    seed: int,
    lr: float = 2e-3,
    progress: bool = True,
) -> CenterNet:
    """A CenterNet from random init (seed), trained `steps` steps on batches drawn from pools by share."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CenterNet()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    counts = batch_counts(batch, shares)
    model.train()
    bar = tqdm(range(steps), desc=f"train seed {seed}", unit="step", disable=not progress)
    for _ in bar:
        images, boxes = sample_batch(pools, counts, rng)
        loss = centernet_loss(model(images), draw_targets(boxes, *images.shape[-2:]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return model


@torch.no_grad()
def heldout_ap50(model: CenterNet, frames: LabelledFrames, batch: int = 32) -> float | None:
    """AP50 of the model's vehicles against the held-out labels (eval detector's definition)."""
    model.eval()
    tally = DetectorTally()
    for start in range(0, len(frames), batch):
        part = slice(start, start + batch)
        images = torch.from_numpy(np.stack(frames.images[part])).permute(0, 3, 1, 2).float() / 255
        for found, labels, scale in zip(decode(model(images)), frames.crop_boxes[part], frames.scales[part]):
            detections = [
                Detection(x1 / scale, y1 / scale, x2 / scale, y2 / scale, score, "car")
                for x1, y1, x2, y2, score in found.tolist()
            ]
            tally.add(detections, labels)
    return tally.summary()["ap50"]


def augment_gain(
    train: str | Path,
    variants: str | Path | None,
    heldout: str | Path,
    steps: int = 1500,
    seeds: tuple[int, ...] = (0, 1, 2),
    size: tuple[int, int] = (160, 320),
    batch: int = 16,
    variant_share: float = 0.5,
    every: int = 1,
    arms: tuple[str, ...] = ARMS,
    progress: bool = True,
) -> dict:
    """Held-out AP50 per arm (real, real + variants, real + re-lit copies) and seed -> a report dict."""
    if not 0 < variant_share < 1:
        raise ValueError(f"variant_share must be in (0, 1), got {variant_share}")
    if unknown := set(arms) - set(ARMS):
        raise ValueError(f"arms {sorted(unknown)}: use {' and/or '.join(ARMS)}")
    paths: dict[str, str | Path] = {"train": train, "heldout": heldout}
    if "real+variants" in arms:
        if variants is None:
            raise ValueError("the real+variants arm needs --variants (a catalog from `drivesim augment`)")
        paths["variants"] = variants
    sets = {
        name: load_frames(p, size, 1 if name == "heldout" else every, progress) for name, p in paths.items()
    }
    pools = {"real": ([sets["train"]], [1.0])}
    if "variants" in sets:
        pools["real+variants"] = ([sets["train"], sets["variants"]], [1 - variant_share, variant_share])
    relit = dataclasses.replace(sets["train"], jitter=True)  # the same frames, re-lit when drawn
    pools["real+jitter"] = ([sets["train"], relit], [1 - variant_share, variant_share])
    report = {
        "sets": {
            name: {"path": str(paths[name]), "frames": len(f), "vehicle_boxes": f.box_count}
            for name, f in sets.items()
        },
        "steps": steps,
        "batch": batch,
        "size": list(size),
        "variant_share": variant_share,
        "seeds": list(seeds),
        "arms": {},
    }
    for arm in arms:
        runs = []
        for seed in seeds:
            start = time.perf_counter()
            model = train_detector(*pools[arm], steps, batch, seed, progress=progress)
            ap50 = heldout_ap50(model, sets["heldout"])
            runs.append({"seed": seed, "ap50": ap50, "seconds": time.perf_counter() - start})
        aps = np.array([r["ap50"] or 0.0 for r in runs])
        report["arms"][arm] = {"runs": runs, "ap50_mean": float(aps.mean()), "ap50_std": float(aps.std())}
    means = {arm: result["ap50_mean"] for arm, result in report["arms"].items()}
    if {"real", "real+variants"} <= set(means):
        report["gain"] = means["real+variants"] - means["real"]
    if {"real+jitter", "real+variants"} <= set(means):
        report["gain_over_jitter"] = means["real+variants"] - means["real+jitter"]
    return report
