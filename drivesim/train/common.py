"""Pieces every training loop shares: seeding, EMA, CSV loss log, resumable state."""

from __future__ import annotations

import csv
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns a torch generator for data-independent draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """Exponential moving average of a model's parameters (torch's AveragedModel)."""
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class CsvLog:
    """Append-only CSV of training metrics; survives resume (header written once)."""

    def __init__(self, path: str | Path, fields: list[str]):
        self.path, self.fields = Path(path), fields
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, **row) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after `step` (a resume restarts from the last saved state)."""
        with self.path.open() as f:
            rows = list(csv.reader(f))
        keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with self.path.open("w", newline="") as f:
            csv.writer(f).writerows(keep)


def save_train_state(path: str | Path, step: int, optimizer: torch.optim.Optimizer,
                     extra: dict | None = None) -> None:
    """Optimizer + RNG state for resuming (tensors only; loads with weights_only=True)."""
    path = Path(path)
    state = {"step": step, "optimizer": optimizer.state_dict(),
             "torch_rng": torch.get_rng_state(), "extra": json.dumps(extra or {})}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_train_state(path: str | Path, optimizer: torch.optim.Optimizer) -> tuple[int, dict]:
    """-> (step, extra) after restoring optimizer and torch RNG state."""
    state = torch.load(path, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), json.loads(state["extra"])


def forever(loader) -> Iterator:
    """Cycle a DataLoader endlessly (a new epoch each pass)."""
    while True:
        yield from loader
