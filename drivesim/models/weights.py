"""Safetensors checkpoints with a JSON config beside them, written atomically.

`<prefix>.safetensors` holds the tensors, `<prefix>.json` the config the model is rebuilt
from (plus metadata such as the latent scale factor and the model version). Loading never
unpickles: a corrupt, truncated or mismatched file is a clear error naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from drivesim.utils import atomic_write

FORMAT_VERSION = 1
ModuleT = TypeVar("ModuleT", bound=nn.Module)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded; the message names the file and the fix."""


def checkpoint_paths(prefix: str | Path) -> tuple[Path, Path]:
    """(tensors, config) paths of a checkpoint prefix (a '.safetensors' suffix is allowed)."""
    prefix = Path(prefix)
    if prefix.suffix in (".safetensors", ".json"):
        prefix = prefix.with_suffix("")
    return prefix.with_name(prefix.name + ".safetensors"), prefix.with_name(prefix.name + ".json")


def weights_digest(prefix: str | Path) -> str:
    """The first 16 hex digits of the sha256 of a checkpoint's tensors file (its content stamp)."""
    from drivesim.data.catalog import sha256_file

    return sha256_file(checkpoint_paths(prefix)[0])[:16]


def save_checkpoint(
    model: nn.Module, prefix: str | Path, config: dict[str, Any], dtype: torch.dtype = torch.float32
) -> Path:
    """Write model weights (cast to dtype) + config JSON; returns the .safetensors path."""
    tensors_path, config_path = checkpoint_paths(prefix)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().cpu().to(dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    meta = {"format_version": FORMAT_VERSION, "dtype": str(dtype).removeprefix("torch."), **config}
    atomic_write(tensors_path, lambda tmp: save_file(state, tmp))
    atomic_write(config_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, default=str)))
    return tensors_path


def read_config(prefix: str | Path) -> dict[str, Any]:
    """The JSON config of a checkpoint."""
    _, config_path = checkpoint_paths(prefix)
    if not config_path.exists():
        raise CheckpointError(
            f"{config_path}: missing config file; a checkpoint is a .safetensors "
            "file with a .json config of the same name beside it"
        )
    try:
        return json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{config_path}: corrupt config JSON ({e}); re-export the checkpoint") from e


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file, with a clear error if it is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: corrupt or truncated safetensors file ({e}); re-download or re-export it"
        ) from e


def load_state_checked(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    ignore_missing: Callable[[str], bool] = lambda k: False,
) -> None:
    """Copy state into model; list missing/unexpected keys and shape mismatches by name."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not ignore_missing(k)]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: expected {tuple(own[k].shape)}, found {tuple(v.shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if missing or unexpected or shapes:

        def head(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f" ... ({len(items)} in all)" if len(items) > 8 else "")

        problems = [
            f"missing keys: {head(missing)}" if missing else "",
            f"unexpected keys: {head(unexpected)}" if unexpected else "",
            f"shape mismatches: {head(shapes)}" if shapes else "",
        ]
        raise CheckpointError(
            f"{source}: does not match the model ("
            + "; ".join(p for p in problems if p)
            + "). Was it saved from a different config or profile?"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)


def load_checkpoint(
    prefix: str | Path,
    build: Callable[[dict[str, Any]], ModuleT],
    ignore_missing: Callable[[str], bool] = lambda k: False,
) -> ModuleT:
    """Rebuild a model from its config with `build(config)` and load its weights."""
    tensors_path, _ = checkpoint_paths(prefix)
    config = read_config(prefix)
    model = build(config)
    load_state_checked(model, read_tensors(tensors_path), str(tensors_path), ignore_missing)
    return model
