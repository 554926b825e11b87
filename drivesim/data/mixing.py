"""Mix real and synthetic clips in one dataset: `mix(real, synthetic, weights)`.

Map-style inputs give a map-style MixedDataset: item i comes from source k with probability
weights[k], and is a uniformly drawn item of it; both draws are seeded by (seed, epoch, i), so
an index names the same clip in every worker. If either input is an IterableDataset the result
is a MixedStream that draws the next item of source k with probability weights[k] (seeded by
seed, epoch and the DataLoader worker) and ends when a source ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized
from typing import cast

import numpy as np
from torch.utils.data import Dataset, IterableDataset, get_worker_info


def _probabilities(weights: Sequence[float], n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights={list(weights)}: give {n} non-negative numbers, not all 0")
    return w / w.sum()


class MixedDataset(Dataset):
    """Seeded weighted draw over map-style datasets; item i -> (source, item of that source)."""

    def __init__(
        self, datasets: Sequence[Dataset], weights: Sequence[float], length: int | None = None, seed: int = 0
    ):
        self.datasets, self.p = list(datasets), _probabilities(weights, len(datasets))
        if any(len(cast(Sized, d)) == 0 for d, p in zip(self.datasets, self.p) if p > 0):
            raise ValueError("mix: a dataset with a non-zero weight is empty")
        self.length = sum(len(cast(Sized, d)) for d in self.datasets) if length is None else length
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Draw a new mixture (call before each epoch; the DataLoader's workers see it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def source(self, index: int) -> tuple[int, int]:
        """(dataset number, index within it) of item `index` in this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        k = int(rng.choice(len(self.datasets), p=self.p))
        return k, int(rng.integers(len(cast(Sized, self.datasets[k]))))

    def __getitem__(self, index: int):
        """-> the drawn source's item (the sources' own format, e.g. frames [T,3,H,W] + conditions)."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        k, j = self.source(index)
        return self.datasets[k][j]


class MixedStream(IterableDataset):
    """Seeded weighted interleaving of datasets (iterable or map-style, the latter in order)."""

    def __init__(self, datasets: Sequence, weights: Sequence[float], seed: int = 0):
        self.datasets, self.p = list(datasets), _probabilities(weights, len(datasets))
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """A new draw sequence; passed on to sources that have set_epoch."""
        self.epoch = epoch
        for d in self.datasets:
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, self.epoch, info.id if info else 0])
        iterators = [iter(d) for d in self.datasets]
        while True:
            k = int(rng.choice(len(iterators), p=self.p))
            try:
                yield next(iterators[k])
            except StopIteration:
                return


def mix(
    real, synthetic, weights: Sequence[float] = (0.5, 0.5), seed: int = 0, length: int | None = None
) -> MixedDataset | MixedStream:
    """Real + synthetic clips drawn with `weights` -> MixedDataset (both map-style) or MixedStream."""
    if isinstance(real, IterableDataset) or isinstance(synthetic, IterableDataset):
        if length is not None:
            raise ValueError("mix: length is for map-style datasets; a stream ends with its sources")
        return MixedStream([real, synthetic], weights, seed)
    return MixedDataset([real, synthetic], weights, length, seed)
