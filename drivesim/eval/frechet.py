"""Frechet distance between Gaussian fits of two feature sets (FID on images, FVD on clips).

`FeatureStats` accumulates features batch by batch in float64 (Chan's parallel mean / scatter
update, so streaming equals the one-shot result); `frechet_distance` compares two fits.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch


class FeatureStats:
    """Streaming mean and covariance of features [N,D], kept in float64 on the CPU."""

    def __init__(self) -> None:
        self._count = 0
        self._mean: torch.Tensor | None = None  # [D]
        self._scatter: torch.Tensor | None = None  # [D,D], sum of centred outer products

    def update(self, features: torch.Tensor) -> None:
        """Add features [N,D]."""
        if features.ndim != 2:
            raise ValueError(f"features must be [N,D], got shape {tuple(features.shape)}")
        x = features.detach().to("cpu", torch.float64)
        n = x.shape[0]
        if n == 0:
            return
        if self._mean is not None and x.shape[1] != self._mean.shape[0]:
            raise ValueError(f"feature dim {x.shape[1]} != accumulated dim {self._mean.shape[0]}")
        mean_b = x.mean(0)
        centred = x - mean_b
        scatter_b = centred.T @ centred
        if self._mean is None:
            self._count, self._mean, self._scatter = n, mean_b, scatter_b
            return
        assert self._scatter is not None  # set together with _mean
        total = self._count + n
        delta = mean_b - self._mean
        self._scatter = self._scatter + scatter_b + torch.outer(delta, delta) * (self._count * n / total)
        self._mean = self._mean + delta * (n / total)
        self._count = total

    @property
    def count(self) -> int:
        return self._count

    @property
    def mean(self) -> torch.Tensor:
        """[D] float64."""
        if self._mean is None:
            raise ValueError("FeatureStats is empty")
        return self._mean

    @property
    def cov(self) -> torch.Tensor:
        """[D,D] float64, unbiased (divides by N-1)."""
        if self._count < 2:
            raise ValueError(f"covariance needs >= 2 features, have {self._count}")
        assert self._scatter is not None  # set by the first update
        return self._scatter / (self._count - 1)

    def to_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only, so it saves with safetensors or torch.save(weights_only loadable)."""
        # _scatter is set whenever mean is (which raises for empty stats)
        return {
            "count": torch.tensor(self._count),
            "mean": self.mean,
            "scatter": cast(torch.Tensor, self._scatter),
        }

    @classmethod
    def from_dict(cls, state: dict) -> FeatureStats:
        stats = cls()
        stats._count = int(state["count"])
        stats._mean = torch.as_tensor(state["mean"], dtype=torch.float64)
        stats._scatter = torch.as_tensor(state["scatter"], dtype=torch.float64)
        return stats


def _f64(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def _clip_rank(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with those below the numerical-rank tolerance set to 0."""
    tol = max(float(w.max(initial=0.0)), 0.0) * w.shape[0] * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """mu [D], sigma [D,D] (numpy or torch) -> ||mu1-mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^1/2).

    No scipy dependency (scipy.linalg.sqrtm is what other FID code uses): S1 S2 has the same
    eigenvalues as the symmetric PSD matrix sqrt(S1) S2 sqrt(S1), so Tr((S1 S2)^1/2) is the sum of
    square roots of that matrix's eigenvalues (`eigh`, real and stable, no complex round-off to
    discard). Eigenvalues under the numerical-rank tolerance count as 0, so rank-deficient
    covariances (fewer samples than dims) give 0 for identical inputs instead of sqrt(noise).
    """
    mu1, mu2, s1, s2 = (_f64(a) for a in (mu1, mu2, sigma1, sigma2))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    w1, v1 = np.linalg.eigh((s1 + s1.T) / 2)
    sqrt_s1 = (v1 * np.sqrt(_clip_rank(w1))) @ v1.T
    m = sqrt_s1 @ s2 @ sqrt_s1
    w = _clip_rank(np.linalg.eigvalsh((m + m.T) / 2))
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.sqrt(w).sum())
    return max(fd, 0.0)  # >= 0 in exact arithmetic; clip round-off


def frechet_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """Two accumulated feature sets -> Frechet distance between their Gaussian fits."""
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)
