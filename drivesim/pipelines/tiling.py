"""Overlapping tiles blended with linear ramps: a model's output on a large frame in fixed memory.

Along each axis, neighbouring tiles share `overlap` pixels. Inside the overlap each tile's weight
is 0 for the outer (overlap - blend) / 2 pixels, ramps linearly over `blend` pixels, then stays 1;
weights are normalised by their sum. With blend = 0 and (overlap / 2) >= the model's receptive
radius, every output pixel comes from a tile that saw all of its inputs: tiled equals untiled.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def tile_starts(size: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Start offsets of tiles of `tile` pixels covering `size`, every start a multiple of `multiple`."""
    if tile >= size:
        return [0]
    stride = (tile - overlap) // multiple * multiple
    if tile % multiple or stride <= 0:
        raise ValueError(
            f"tile={tile}, overlap={overlap}: the tile must be a multiple of {multiple} "
            f"and larger than the overlap by at least {multiple}"
        )
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def ramp(length: int, at_start: bool, at_end: bool, overlap: int, blend: int) -> torch.Tensor:
    """1-D weights [length] of one tile; no ramp on a side that touches the frame border."""
    margin = max(overlap - blend, 0) // 2
    up = torch.cat([torch.zeros(margin), (torch.arange(blend) + 0.5) / blend, torch.ones(length)])[:length]
    w = torch.ones(length)
    if not at_start:
        w = torch.minimum(w, up)
    if not at_end:
        w = torch.minimum(w, up.flip(0))
    return w


def tiled(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    low: torch.Tensor,
    scale: int,
    tile: int,
    overlap: int,
    blend: int,
    multiple: int,
) -> torch.Tensor:
    """fn(x tile [...,th,tw], low tile [...,th/s,tw/s]) -> [...,th,tw], over x [...,H,W] -> [...,H,W]."""
    height, width = x.shape[-2:]
    if blend > overlap:
        raise ValueError(f"blend={blend} must not exceed overlap={overlap}")
    ys = tile_starts(height, tile, overlap, multiple)
    xs = tile_starts(width, tile, overlap, multiple)
    if len(ys) == len(xs) == 1:
        return fn(x, low)
    th, tw = min(tile, height), min(tile, width)
    out = torch.zeros_like(x)
    total = torch.zeros(height, width, dtype=x.dtype, device=x.device)
    for y in ys:
        wy = ramp(th, y == 0, y + th == height, overlap, blend)
        for x0 in xs:
            wx = ramp(tw, x0 == 0, x0 + tw == width, overlap, blend)
            weight = (wy[:, None] * wx[None]).to(x)
            pred = fn(
                x[..., y : y + th, x0 : x0 + tw],
                low[..., y // scale : (y + th) // scale, x0 // scale : (x0 + tw) // scale],
            )
            out[..., y : y + th, x0 : x0 + tw] += pred * weight
            total[y : y + th, x0 : x0 + tw] += weight
    return out / total
