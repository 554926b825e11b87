"""A model folder's `model_index.json` (as in diffusers): the class and file of each part, and
`load_part`, the one function that loads a part from a folder or from a checkpoint prefix.

    {"_class_name": "Cascade",
     "parts": {"unet": {"class": "VideoUNet", "file": "unet.safetensors"}, ...}}

`_class_name` names what the folder loads as (FOLDER_CLASSES: a generation Cascade or a ProbeSet);
part class names map to loaders in LOADERS (nothing named in the file is imported). A folder
without model_index.json still loads: each part is `<folder>/<name>.safetensors` with the
class of DEFAULT_CLASSES.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, overload

from torch import nn

from drivesim.models.autoencoder import AutoencoderKL, load_autoencoder
from drivesim.models.probes import load_box_probe, load_clip_probe
from drivesim.models.temporal_decoder import TemporalDecoder, load_temporal_decoder
from drivesim.models.unet import load_unet
from drivesim.models.upsampler import load_upsampler_unet
from drivesim.models.weights import CheckpointError, checkpoint_paths
from drivesim.utils import write_json_atomic

M = TypeVar("M", bound=nn.Module)
MODEL_INDEX = "model_index.json"
LOADERS: dict[str, Callable[[Path], nn.Module]] = {
    "AutoencoderKL": load_autoencoder,
    "TemporalDecoder": load_temporal_decoder,
    "VideoUNet": load_unet,
    "ClipProbe": load_clip_probe,
    "BoxProbe": load_box_probe,
    "UpsamplerUNet": load_upsampler_unet,
}
# What a folder's `_class_name` may say, and what loads it; "VideoLDMPipeline" is what folders written
# before the Cascade say (the same parts).
FOLDER_CLASSES = {
    "Cascade": "drivesim.pipelines.cascade.Cascade.from_pretrained",
    "ProbeSet": "drivesim.eval.adherence.load_probes",
}
LEGACY_FOLDER_CLASSES = {"VideoLDMPipeline": "Cascade"}
DEFAULT_CLASSES = {
    "autoencoder": "AutoencoderKL",
    "temporal_decoder": "TemporalDecoder",
    "unet": "VideoUNet",
    "prediction": "VideoUNet",
    "interpolation": "VideoUNet",
    "clip": "ClipProbe",
    "box": "BoxProbe",
    "upsampler": "UpsamplerUNet",
}


def parts_on_disk(folder: str | Path) -> dict[str, str]:
    """{part name: class name} of the DEFAULT_CLASSES parts whose <name>.safetensors is in folder."""
    folder = Path(folder)
    return {name: cls for name, cls in DEFAULT_CLASSES.items() if checkpoint_paths(folder / name)[0].exists()}


def read_model_index(folder: str | Path) -> dict[str, dict[str, str]]:
    """{part name: {"class", "file"}} of a model folder: its model_index.json, else the parts
    on disk (parts_on_disk)."""
    folder = Path(folder)
    index_path = folder / MODEL_INDEX
    if not index_path.exists():
        return {
            name: {"class": cls, "file": f"{name}.safetensors"} for name, cls in parts_on_disk(folder).items()
        }
    try:
        parts = json.loads(index_path.read_text())["parts"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"{index_path}: not a model index ({e}); expected "
            '{"parts": {"<name>": {"class": ..., "file": ...}}}'
        ) from e
    for name, entry in parts.items():
        if entry.get("class") not in LOADERS:
            raise CheckpointError(
                f"{index_path}: part {name!r} has class {entry.get('class')!r}; "
                f"known classes: {sorted(LOADERS)}"
            )
    return parts


def folder_class(folder: str | Path) -> str | None:
    """The class a model folder loads as (its index's `_class_name`), None without an index."""
    index_path = Path(folder) / MODEL_INDEX
    if not index_path.exists():
        return None
    try:
        name = json.loads(index_path.read_text()).get("_class_name")
    except (json.JSONDecodeError, AttributeError) as e:
        raise CheckpointError(f"{index_path}: not a model index ({e})") from e
    name = LEGACY_FOLDER_CLASSES.get(name, name)
    if name not in FOLDER_CLASSES:
        raise CheckpointError(f"{index_path}: _class_name {name!r} is not one of {sorted(FOLDER_CLASSES)}")
    return name


def check_folder_class(folder: str | Path, expected: str) -> None:
    """A clear error when a model folder's index says it is not an `expected` folder."""
    found = folder_class(folder) if Path(folder).is_dir() else None
    if found not in (None, expected):
        raise CheckpointError(
            f"{folder}: its {MODEL_INDEX} says {found!r} (loaded by {FOLDER_CLASSES[found]}), "
            f"not a {expected}; pass a {expected} folder"
        )


def part_prefix(dir_or_prefix: str | Path, name: str) -> Path:
    """The checkpoint prefix of part `name`: from the folder's index, or the prefix itself."""
    path = Path(dir_or_prefix)
    if not path.is_dir():
        return path
    parts = read_model_index(path)
    if name not in parts:
        raise CheckpointError(
            f"{path}: no '{name}' part (has {sorted(parts) or 'none'}); a model folder "
            f"holds <name>.safetensors + <name>.json per part, listed in {MODEL_INDEX}"
        )
    prefix = path / parts[name]["file"]
    return prefix.with_suffix("") if prefix.suffix == ".safetensors" else prefix


def has_part(folder: str | Path, name: str) -> bool:
    """Whether a model folder has part `name` (listed in its index, or its file is there)."""
    folder = Path(folder)
    return folder.is_dir() and name in read_model_index(folder)


@overload
def load_part(dir_or_prefix: str | Path, name: str) -> nn.Module: ...
@overload
def load_part(dir_or_prefix: str | Path, name: str, expected: type[M]) -> M: ...


def load_part(dir_or_prefix: str | Path, name: str, expected: type[nn.Module] = nn.Module) -> nn.Module:
    """Part `name` (e.g. 'unet', 'autoencoder', 'prediction') of a model folder, or the checkpoint
    at a prefix, built with the class its index (or DEFAULT_CLASSES[name]) names; CPU, train mode.
    expected: the class the caller needs (a clear error when the index names another)."""
    path = Path(dir_or_prefix)
    if path.is_dir():
        cls = read_model_index(path).get(name, {}).get("class")
        prefix = part_prefix(path, name)
    else:
        cls, prefix = DEFAULT_CLASSES.get(name, name), path
    if cls not in LOADERS:
        raise ValueError(f"part {name!r}: unknown class {cls!r}; known: {sorted(LOADERS)}")
    model = LOADERS[cls](prefix)
    if not isinstance(model, expected):
        raise CheckpointError(f"{prefix}: part {name!r} is a {cls}; this needs a {expected.__name__}")
    return model


def write_model_index(folder: str | Path, parts: dict[str, str], class_name: str = "Cascade") -> Path:
    """Write <folder>/model_index.json for parts {name: class name}, files <name>.safetensors."""
    if class_name not in FOLDER_CLASSES:
        raise ValueError(f"class_name={class_name!r}: use one of {sorted(FOLDER_CLASSES)}")
    unknown = {c for c in parts.values() if c not in LOADERS}
    if unknown:
        raise ValueError(f"unknown classes {sorted(unknown)}; known: {sorted(LOADERS)}")
    index = {
        "_class_name": class_name,
        "parts": {name: {"class": cls, "file": f"{name}.safetensors"} for name, cls in parts.items()},
    }
    path = Path(folder) / MODEL_INDEX
    write_json_atomic(index, path, indent=2)
    return path


def load_reconstructor(folder: str | Path) -> tuple[AutoencoderKL, TemporalDecoder | None]:
    """(autoencoder, temporal decoder or None) of a model folder, in eval mode: the pair that
    reconstruct_frames sends frames through."""
    td = None
    if has_part(folder, "temporal_decoder"):
        td = load_part(folder, "temporal_decoder", TemporalDecoder).eval()
    return load_part(folder, "autoencoder", AutoencoderKL).eval(), td
