"""Probe training clips seen through the autoencoder.

Every generated clip reaches the probes through the decoder, so a probe trained on sharp
procedural frames alone scores the decoder's blur as much as the content: the shipped
probes gave real clips 0.81 crowdedness accuracy but their reconstructions 0.50. The first
`clips` items of each training dataset are encoded and decoded once (autoencoder + temporal
decoder of a model folder) into a cache; training mixes them with the sharp stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.train.common import forever
from drivesim.train.distributed import RankBatches, Ranks
from drivesim.train.latent_cache import LatentClipDataset, build_latent_cache, cache_metadata

if TYPE_CHECKING:
    pass


def reconstructed_cache(
    dataset: ProceduralClipDataset, model_dir: str | Path, clips: int, path: Path
) -> Path:
    """Round-trip the first `clips` items through the model folder's decoders once -> cache file
    with frames [N,T,3,H,W] (fp16, [-1,1]) + conditions; reused when it was built the same way."""
    built_with = {
        "reconstructed_with": str(model_dir),
        "clips": str(clips),
        "clip_shape": str([dataset.num_frames, 3, *dataset.size]),
        "seed": str(dataset.seed),
    }
    if path.exists():
        saved = cache_metadata(path)
        found = {k: saved.get(k) for k in built_with}
        if found != built_with:
            raise ValueError(
                f"{path} was built with {found}, this run asks for {built_with}: "
                "delete the file or use another out_dir"
            )
        return path
    from drivesim.models.model_index import load_reconstructor
    from drivesim.models.temporal_decoder import reconstruct_frames

    ae, td = load_reconstructor(model_dir)
    return build_latent_cache(
        Subset(dataset, range(clips)),
        lambda f: reconstruct_frames(ae, td, f),
        path,
        batch_size=1,
        meta=built_with,
        key="frames",
    )


def reconstructed_loaders(
    datasets: list[ProceduralClipDataset],
    model_dir: str | Path,
    clips: int,
    batch_size: int,
    out: Path,
    seed: int,
    ranks: Ranks | None = None,
) -> list:
    """One endless shuffled loader of reconstructed clips per dataset (fps): this rank's rows of
    each global batch (with several ranks, only whole batches)."""
    ranks = ranks or Ranks()
    if ranks.world > 1 and clips < batch_size:
        raise ValueError(
            f"reconstructed_clips={clips} is below batch_size={batch_size}: with "
            f"{ranks.world} ranks every batch must be whole; raise reconstructed_clips"
        )
    loaders = []
    for data in datasets:
        path = reconstructed_cache(data, model_dir, clips, out / f"reconstructed_{data.fps:g}fps.safetensors")
        cache = LatentClipDataset(path, key="frames")
        order = RandomSampler(cache, generator=torch.Generator().manual_seed(seed))
        batches = BatchSampler(order, batch_size, drop_last=ranks.world > 1)
        loaders.append(forever(DataLoader(cache, batch_sampler=RankBatches(batches, ranks))))
    return loaders
