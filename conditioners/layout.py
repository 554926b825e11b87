"""Boxes as a rasterised per-frame layout at latent resolution: the spatial path of the box
condition, concatenated to the UNet input.

Cross-attention tokens alone reach the boxes only at coarse levels, where a distant car is a
pixel or less; the layout tells every latent pixel whether (and how near) a car covers it.
Channels: coverage per box class (area fraction of the pixel inside any box of that class),
nearness (bottom edge y2 of the front-most covering box, a depth order for a forward camera;
0 where no box) and core (coverage of the boxes shrunk to their central half, which separates
touching cars). Masked-out (padding, dropped, unknown) boxes draw nothing, so the null
condition of classifier-free guidance is an all-zero layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

SUPERSAMPLE = 4  # sub-pixels per latent pixel along each axis


def layout_channels(num_classes: int = 1) -> int:
    """Number of layout channels for `num_classes` box classes."""
    return num_classes + 2


def _inside(boxes: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """boxes [F,N,4] xyxy, ys [H], xs [W] -> [F,N,H,W] bool."""
    x1, y1, x2, y2 = (boxes[..., i, None, None] for i in range(4))
    return (xs >= x1) & (xs < x2) & (ys[:, None] >= y1) & (ys[:, None] < y2)


def rasterize_boxes(
    boxes: torch.Tensor,
    box_class: torch.Tensor,
    box_mask: torch.Tensor,
    size: tuple[int, int],
    num_classes: int = 1,
) -> torch.Tensor:
    """boxes [B,T,N,4] normalised xyxy, box_class [B,T,N], box_mask [B,T,N] -> [(B T),K,h,w]."""
    boxes, box_class, box_mask = (rearrange(v, "b t ... -> (b t) ...") for v in (boxes, box_class, box_mask))
    h, w = size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE
    ys = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5) / h
    xs = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5) / w
    inside = _inside(boxes, ys, xs) & box_mask[..., None, None]  # [F,N,H,W]
    per_class = [(inside & (box_class == k)[..., None, None]).any(1) for k in range(num_classes)]
    nearness = torch.where(inside, boxes[..., 3, None, None], torch.zeros((), dtype=boxes.dtype)).amax(1)
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    core = torch.cat(
        [centre - (boxes[..., 2:] - boxes[..., :2]) / 4, centre + (boxes[..., 2:] - boxes[..., :2]) / 4],
        dim=-1,
    )
    cores = (_inside(core, ys, xs) & box_mask[..., None, None]).any(1)
    planes = torch.stack([*per_class, nearness, cores], dim=1).to(boxes.dtype)
    return F.avg_pool2d(planes, SUPERSAMPLE)
