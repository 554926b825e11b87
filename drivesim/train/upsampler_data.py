"""Training pairs for the upsampler: procedural clips rendered once at the output resolution.

Rendering a 512x1024 frame costs ~66 ms here, about as much as a training step on a crop, so
the clips are rendered once into a uint8 .npy cache (memory-mapped when read). Each clip also
gets a "decoded" low-resolution copy: its area-downsampled frames through the cascade's own
autoencoder and temporal decoder, the blur and artefacts that the upsampler meets at inference.
Real clips join the procedural ones when `real_root` names a video folder (or one video) with
footage at least as large as `size`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.models.model_index import load_reconstructor
from drivesim.models.temporal_decoder import reconstruct_frames
from drivesim.utils import to_uint8, write_json_atomic

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class HighResCacheConfig:
    dir: str = "runs/upsampler/cache"
    clips: int = 96
    num_frames: int = 8
    fps: float = 30.0  # the upsampler sees the cascade's interpolated 30 fps video
    size: tuple[int, int] = (512, 1024)
    scale: int = 4
    seed: int = 2000  # held out from the LDM caches (1000) and from eval (HELD_OUT_SEED)
    autoencoder: str | None = "drivesim/assets/tiny"  # model folder for the decoded copy; None: none
    real_root: str | None = None  # real videos (a folder or a file) added after the procedural clips
    real_clips: int = 0  # at most this many real clips (0: all)


def _open_new(path: Path, shape: tuple[int, ...]) -> np.memmap:
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)


@torch.no_grad()
def ensure_highres_cache(cfg: HighResCacheConfig, progress: bool = True) -> dict[str, np.ndarray]:
    """Render (once) and open the cache -> {"high": [N,T,H,W,3], "decoded": [N,T,H/s,W/s,3]} uint8."""
    root = Path(cfg.dir)
    meta_path = root / "cache.json"
    meta = _cache_meta(cfg)
    if meta_path.exists():
        found = {**_cache_meta(HighResCacheConfig()), **json.loads(meta_path.read_text())}  # newer keys
        if found != meta:
            raise ValueError(
                f"{root}: cache built with {found}, this run asks for {meta}; "
                f"delete {root} or point cache.dir elsewhere"
            )
        return _open(root, cfg)
    root.mkdir(parents=True, exist_ok=True)
    h, w = cfg.size
    clips: list[ProceduralClipDataset | torch.utils.data.Subset] = [
        ProceduralClipDataset(
            length=cfg.clips, num_frames=cfg.num_frames, fps=cfg.fps, size=cfg.size, seed=cfg.seed
        )
    ]
    if cfg.real_root:
        from drivesim.data.video_folder import VideoFolderDataset

        real = VideoFolderDataset(cfg.real_root, num_frames=cfg.num_frames, fps=cfg.fps, size=cfg.size)
        clips.append(torch.utils.data.Subset(real, range(min(len(real), cfg.real_clips or len(real)))))
    n, t = sum(len(c) for c in clips), cfg.num_frames
    parts = {"high": (n, t, h, w, 3)}
    reconstructor = None
    if cfg.autoencoder:
        parts["decoded"] = (n, t, h // cfg.scale, w // cfg.scale, 3)
        reconstructor = load_reconstructor(cfg.autoencoder)
    arrays = {k: _open_new(root / f".{k}.npy.tmp", shape) for k, shape in parts.items()}
    items = ((c, i) for c in clips for i in range(len(c)))
    for i, (dataset, j) in enumerate(
        tqdm(items, total=n, desc=f"caching {n} clips at {h}x{w}", disable=not progress)
    ):
        frames, _ = cast("tuple[torch.Tensor, dict]", dataset[j])  # [T,3,H,W] in [-1,1]; Subset is untyped
        arrays["high"][i] = to_uint8(frames)
        if cfg.autoencoder:
            low = F.avg_pool2d(frames, cfg.scale)
            assert reconstructor is not None  # loaded above for cfg.autoencoder
            arrays["decoded"][i] = to_uint8(reconstruct_frames(*reconstructor, low))
    for k, array in arrays.items():
        array.flush()
        os.replace(root / f".{k}.npy.tmp", root / f"{k}.npy")
    write_json_atomic(meta, meta_path)
    return _open(root, cfg)


def _cache_meta(cfg: HighResCacheConfig) -> dict:
    """What the cache's content depends on (JSON-normalised; `dir` is only where it lives)."""
    meta = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
    meta.pop("dir")
    return meta


def _open(root: Path, cfg: HighResCacheConfig) -> dict[str, np.ndarray]:
    names = ["high"] + (["decoded"] if cfg.autoencoder else [])
    return {k: np.load(root / f"{k}.npy", mmap_mode="r") for k in names}


def sample_pairs(
    cache: dict[str, np.ndarray],
    batch: int,
    num_frames: int,
    crop: tuple[int, int],
    scale: int,
    decoded_share: float,
    rng: np.random.Generator,
    rows: slice = slice(None),
):
    """Random aligned crops -> (high [B,T,3,ch,cw], low [B,T,3,ch/s,cw/s]) in [-1,1] for the `rows`
    of a batch of `batch` (all draws are made, so rows of one batch agree with the whole); a
    `decoded_share` of the low-res crops come from the decoded copy, the rest are area-downsampled."""
    high_all = cache["high"]
    n, t_all, h, w, _ = high_all.shape
    ch, cw = crop
    keep = range(batch)[rows]
    highs, lows = [], []
    for j in range(batch):
        i, t0 = rng.integers(n), rng.integers(t_all - num_frames + 1)
        y, x = (int(rng.integers((size - c) // scale + 1)) * scale for size, c in ((h, ch), (w, cw)))
        use_decoded = "decoded" in cache and rng.random() < decoded_share
        if j not in keep:
            continue
        high = _to_float(high_all[i, t0 : t0 + num_frames, y : y + ch, x : x + cw])
        if use_decoded:
            ys, xs = y // scale, x // scale
            low = _to_float(
                cache["decoded"][i, t0 : t0 + num_frames, ys : ys + ch // scale, xs : xs + cw // scale]
            )
        else:
            low = F.avg_pool2d(high, scale)
        highs.append(high)
        lows.append(low)
    return torch.stack(highs), torch.stack(lows)


def _to_float(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T,H,W,3] -> float [T,3,H,W] in [-1,1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1)
