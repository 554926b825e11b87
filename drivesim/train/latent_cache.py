"""Encode a clip dataset once into a latent cache (safetensors) that LDM training reads.

On a CPU the frozen autoencoder's encoder would cost as much as the UNet step itself, and
the encoder never changes during LDM training, so latents are computed once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sized
from pathlib import Path
from typing import cast

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from drivesim.data.conditions import PER_FRAME_KEYS, Conditions, as_conditions, tensor_dict
from drivesim.utils import atomic_write

COND_KEYS = (
    "time_of_day",
    "crowdedness",
    "boxes",
    "box_class",
    "box_track",
    "box_mask",
    "boxes_known",
    "ego_speed",
    "fps",
)


@torch.no_grad()
def build_latent_cache(
    dataset: Dataset,
    encode: Callable[[torch.Tensor], torch.Tensor],
    path: str | Path,
    batch_size: int = 4,
    num_workers: int = 0,
    meta: Mapping[str, object] | None = None,
    key: str = "latents",
) -> Path:
    """Encode every clip (frames [T,3,H,W]) -> file with `key` [N,T,C,h,w] (fp16) + conditions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in (key, *COND_KEYS)}
    for frames, cond in tqdm(loader, desc=f"encoding {len(cast(Sized, dataset))} clips", unit="batch"):
        b, t = frames.shape[:2]
        latents = encode(frames.flatten(0, 1)).unflatten(0, (b, t))
        parts[key].append(latents.to(torch.float16))
        for k in COND_KEYS:
            parts[k].append(cond[k])
    tensors = {k: torch.cat(v).contiguous() for k, v in parts.items()}
    metadata = {k: str(v) for k, v in (meta or {}).items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def cache_metadata(path: str | Path) -> dict[str, str]:
    """The `meta` a cache file was built with (its safetensors header), without loading tensors."""
    with safe_open(str(path), "pt") as f:
        return f.metadata() or {}


class LatentClipDataset(Dataset):
    """Items of a latent cache: (latents [T,C,h,w] float32, condition dict); `key` names the
    stored tensor (a cache of reconstructed frames stores "frames")."""

    def __init__(self, path: str | Path, key: str = "latents"):
        self.tensors = load_file(str(path))
        self.key = key
        self.length = self.tensors[key].shape[0]
        # LDM latent scale: unit variance for the diffusion model (Rombach et al. 2022, sec. 3).
        self.scale = float(1.0 / self.tensors[key].float().std())

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Conditions]:
        cond = as_conditions({k: self.tensors[k][index] for k in COND_KEYS})
        return self.tensors[self.key][index].float(), cond


def pick_frames(
    latents: torch.Tensor, cond: Conditions, generator: torch.Generator
) -> tuple[torch.Tensor, Conditions]:
    """One random frame per clip: [B,T,C,h,w] -> [B,1,C,h,w], per-frame box tensors too."""
    b, t = latents.shape[:2]
    idx = torch.randint(0, t, (b,), generator=generator)
    rows = torch.arange(b)
    out = tensor_dict(cond)
    for k in PER_FRAME_KEYS:
        out[k] = out[k][rows, idx][:, None]
    return latents[rows, idx][:, None], as_conditions(out)
