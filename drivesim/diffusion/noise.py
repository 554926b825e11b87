"""The noise prior of every video stage: N(0, I) per frame, optionally mixed across frames."""

from __future__ import annotations

import torch


def mixed_noise(
    shape: tuple[int, ...], generator: torch.Generator | None, correlation: float
) -> torch.Tensor:
    """[B,T,...] N(0, I) per frame; frames share a `correlation` fraction of the variance (PYoCo)."""
    device = generator.device if generator is not None else "cpu"
    noise = torch.randn(shape, generator=generator, device=device)
    if correlation <= 0 or len(shape) < 5:
        return noise
    shared = torch.randn((shape[0], 1, *shape[2:]), generator=generator, device=device)
    return correlation**0.5 * shared + (1 - correlation) ** 0.5 * noise
