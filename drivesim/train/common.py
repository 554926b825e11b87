"""Pieces every training loop shares: seeding, EMA, CSV loss log, the optimizer step, resumable
runs (out/last, out/last_ema, out/ema + out/last.state.pt)."""

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

from drivesim.models.weights import load_checkpoint, save_checkpoint


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


def save_train_state(
    path: str | Path, step: int, optimizer: torch.optim.Optimizer, extra: dict | None = None
) -> None:
    """Optimizer + RNG state for resuming (tensors only; loads with weights_only=True)."""
    path = Path(path)
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "extra": json.dumps(extra or {}),
    }
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


def apply_gradients(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    params: list,
    grad_clip: float,
    ema: AveragedModel,
    frozen: list | tuple = (),
) -> None:
    """After every micro-batch's backward: drop the gradients of `frozen`, clip, step, update the EMA."""
    for p in frozen:
        p.grad = None
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    ema.update_parameters(model)


def save_run(
    out: Path,
    model: nn.Module,
    ema: AveragedModel,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    step: int,
    config: dict,
) -> None:
    """out/last, out/last_ema and out/ema (safetensors + JSON config) and the state to resume from."""
    config = {**config, "step": step}
    save_checkpoint(model, out / "last", config)
    save_checkpoint(ema.module, out / "last_ema", config)
    save_checkpoint(ema.module, out / "ema", config)
    save_train_state(
        out / "last.state.pt",
        step,
        optimizer,
        {"generator": generator.get_state().tolist(), "ema_n_averaged": int(ema.n_averaged)},
    )


def resume_run(
    out: Path,
    model: nn.Module,
    ema: AveragedModel,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    log: CsvLog | None,
) -> int:
    """Restore what save_run wrote, if out holds a run -> the step to continue from (0 if none)."""
    if not (out / "last.state.pt").exists():
        return 0
    load_checkpoint(out / "last", lambda c: model)
    load_checkpoint(out / "last_ema", lambda c: ema.module)
    step, extra = load_train_state(out / "last.state.pt", optimizer)
    generator.set_state(torch.tensor(extra["generator"], dtype=torch.uint8))
    ema.n_averaged.fill_(extra["ema_n_averaged"])
    if log is not None:  # None on ranks other than 0
        log.truncate_after(step)
    return step
