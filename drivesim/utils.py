"""Helpers every part of drivesim uses: atomic writes, frame conversion, default paths, seeds,
devices. Imports nothing else of drivesim (so any part may import it without a cycle)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "tiny"  # the shipped tiny models
HELD_OUT_SEED = 987_654  # procedural seeds never used in training (training uses 0 and 1000 on)


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """write(tmp_path) then rename over `path`: readers never see a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def publish(tmp: str | Path, path: str | Path) -> None:
    """Rename a finished temp file over `path` with the mode a newly written file gets (mkstemp
    makes 0600, which other users and containers reading a shared catalog could not open)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextlib.contextmanager
def timed(totals: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the `with` body to totals[stage] (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        totals[stage] = totals.get(stage, 0.0) + time.perf_counter() - start


def write_json_atomic(obj, path: str | Path, indent: int | None = None) -> None:
    """Write `obj` as JSON to `path` atomically (temp file in the same folder + rename)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=indent)))


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[T,3,H,W] in [-1,1] (any device) -> uint8 [T,H,W,3] on the CPU."""
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """'cpu' | 'cuda' | 'cuda:N' | None (cpu) -> torch.device; a clear error if CUDA is missing."""
    device = torch.device(device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device}: CUDA is not available on this machine; use --device cpu")
    return device


def autocast(device: str | torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op (fp32) on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (cpu for a module without parameters)."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))
