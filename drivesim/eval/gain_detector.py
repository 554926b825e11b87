"""A small one-class (vehicle) CenterNet detector for the augmentation-gain experiment.

"Objects as Points" (Zhou et al. 2019): a heatmap of box centres at stride 4, trained with the
penalty-reduced focal loss, plus each centre's log size and sub-cell offset; decoding keeps the
3x3 local maxima. Elliptic Gaussian targets follow TTFNet (alpha 0.54).

Why not torchvision's SSDlite or Faster R-CNN: the one torchvision that pairs with torch 2.13.0
(0.28.0) is built against CUDA torch and does not import with the CPU wheel ("operator
torchvision::nms does not exist", libc10_cuda.so not found, 2026-12-07); effdet and onnx2torch
need torchvision, and kornia's RT-DETR ships no training loss. This file is the whole detector.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

STRIDE = 4
GAUSSIAN_ALPHA = 0.54  # TTFNet: sigma = alpha * box side / 6
HEAT_PRIOR = 0.1  # initial centre probability, as CenterNet's bias init


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class CenterNet(nn.Module):
    """Image [B,3,H,W] in [0,1] -> heat logits [B,1,H/4,W/4], log size [B,2,..], offset [B,2,..]."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96, 128), neck: int = 32):
        super().__init__()
        w = widths
        self.stem = nn.Sequential(conv_bn(3, w[0], 2), conv_bn(w[0], w[1], 2), conv_bn(w[1], w[1]))
        self.stages = nn.ModuleList(
            nn.Sequential(conv_bn(a, b, 2), conv_bn(b, b)) for a, b in itertools.pairwise(w[1:])
        )
        self.laterals = nn.ModuleList(nn.Conv2d(c, neck, 1) for c in w[1:])
        self.smooth = conv_bn(neck, neck)
        self.head = conv_bn(neck, neck)
        self.out = nn.Conv2d(neck, 5, 1)
        bias = torch.zeros(5)
        bias[0] = -math.log((1 - HEAT_PRIOR) / HEAT_PRIOR)
        self.out.bias = nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = [self.stem(x)]  # strides 4, 8, 16, 32
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        top = self.laterals[-1](feats[-1])
        for feat, lateral in zip(reversed(feats[:-1]), reversed(self.laterals[:-1])):
            top = lateral(feat) + F.interpolate(top, size=feat.shape[-2:], mode="nearest")
        out = self.out(self.head(self.smooth(top)))
        return out[:, :1], out[:, 1:3], out[:, 3:5]


def draw_targets(boxes: list[torch.Tensor], height: int, width: int) -> dict[str, torch.Tensor]:
    """Boxes [N,4] per image (x1,y1,x2,y2 input px) -> heat [B,1,h,w], size / offset [B,2,h,w] and
    mask [B,1,h,w] at stride 4."""
    h, w = height // STRIDE, width // STRIDE
    heat = torch.zeros(len(boxes), 1, h, w)
    size = torch.zeros(len(boxes), 2, h, w)
    offset = torch.zeros(len(boxes), 2, h, w)
    mask = torch.zeros(len(boxes), 1, h, w)
    ys, xs = torch.arange(h, dtype=torch.float32)[:, None], torch.arange(w, dtype=torch.float32)[None]
    for b, image_boxes in enumerate(boxes):
        # largest first, so a small box in front keeps its centre cell
        order = ((image_boxes[:, 2] - image_boxes[:, 0]) * (image_boxes[:, 3] - image_boxes[:, 1])).argsort(
            descending=True
        )
        for x1, y1, x2, y2 in (image_boxes[order] / STRIDE).tolist():
            bw, bh = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
            sx, sy = max(GAUSSIAN_ALPHA * bw / 6, 0.5), max(GAUSSIAN_ALPHA * bh / 6, 0.5)
            gauss = torch.exp(-((xs - ix) ** 2) / (2 * sx**2) - ((ys - iy) ** 2) / (2 * sy**2))
            heat[b, 0] = torch.maximum(heat[b, 0], gauss)
            heat[b, 0, iy, ix] = 1.0
            size[b, :, iy, ix] = torch.tensor([math.log(bw), math.log(bh)])
            offset[b, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            mask[b, 0, iy, ix] = 1.0
    return {"heat": heat, "size": size, "offset": offset, "mask": mask}


def centernet_loss(
    pred: tuple[torch.Tensor, torch.Tensor, torch.Tensor], targets: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Focal loss on the heat (alpha 2, beta 4) + L1 on log size and offset at centres, per object."""
    heat_logits, size, offset = pred
    gt, mask = targets["heat"], targets["mask"]
    p = heat_logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    positive = gt.eq(1).float()
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * positive).sum()
    neg_loss = -(torch.log(1 - p) * p**2 * (1 - gt) ** 4 * (1 - positive)).sum()
    n = positive.sum().clamp(min=1)
    reg = ((size - targets["size"]).abs() * mask).sum() + ((offset - targets["offset"]).abs() * mask).sum()
    return (pos_loss + neg_loss) / n + reg / n


@torch.no_grad()
def decode(
    pred: tuple[torch.Tensor, torch.Tensor, torch.Tensor], top_k: int = 50, min_score: float = 0.05
) -> list[torch.Tensor]:
    """Model outputs -> per image detections [N,5] (x1,y1,x2,y2 input px, score), best first."""
    heat_logits, size, offset = pred
    heat = heat_logits.sigmoid()
    peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
    w = heat.shape[-1]
    out = []
    for b in range(heat.shape[0]):
        scores, index = rearrange(peaks[b], "1 h w -> (h w)").topk(min(top_k, peaks[b].numel()))
        keep = scores >= min_score
        scores, index = scores[keep], index[keep]
        iy, ix = (index // w).float(), (index % w).float()
        log_wh = rearrange(size[b], "c h w -> (h w) c")[index]
        off = rearrange(offset[b], "c h w -> (h w) c")[index]
        cx, cy = ix + off[:, 0], iy + off[:, 1]
        bw, bh = log_wh[:, 0].exp(), log_wh[:, 1].exp()
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1) * STRIDE
        out.append(torch.cat([boxes, scores[:, None]], dim=1))
    return out
