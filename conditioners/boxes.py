"""Bounding boxes as per-box tokens for cross-attention, one token set per frame.

Each box is encoded from Fourier features of its four normalised corner coordinates plus a
class embedding; padding slots and dropped/unknown boxes become a learned null token, and
one null token is always appended so a frame with no boxes still has something to attend
to. Cross-attention over an unordered token set is permutation invariant.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn


def fourier_features(x: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """[..., C] in [0,1] -> [..., C*2*num_freqs] sin/cos at frequencies pi * 2^k."""
    freqs = math.pi * 2.0 ** torch.arange(num_freqs, device=x.device, dtype=x.dtype)
    angles = rearrange(x[..., None] * freqs, "... c f -> ... (c f)")
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class BoxEncoder(nn.Module):
    """boxes [B,T,N,4], box_class [B,T,N], box_mask [B,T,N] -> tokens [(B T), N+1, dim]."""

    def __init__(self, dim: int, num_classes: int = 1, num_freqs: int = 8, hidden: int = 128):
        super().__init__()
        self.num_freqs = num_freqs
        self.class_embedding = nn.Embedding(num_classes, hidden)
        self.mlp = nn.Sequential(
            nn.Linear(4 * 2 * num_freqs + hidden, hidden), nn.SiLU(), nn.Linear(hidden, dim)
        )
        self.null_token = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, boxes: torch.Tensor, box_class: torch.Tensor, box_mask: torch.Tensor) -> torch.Tensor:
        """[B,T,N,4], [B,T,N], [B,T,N] bool -> [(B T), N+1, dim]."""
        known = (box_class >= 0)[..., None]  # -1: a box whose class was dropped (zero class features)
        classes = self.class_embedding(box_class.clamp(min=0)) * known
        feats = torch.cat([fourier_features(boxes, self.num_freqs), classes], dim=-1)
        tokens = self.mlp(feats)
        tokens = torch.where(box_mask[..., None], tokens, self.null_token.to(tokens.dtype))
        null = self.null_token.expand(*tokens.shape[:2], 1, -1).to(tokens.dtype)
        return rearrange(torch.cat([tokens, null], dim=2), "b t n d -> (b t) n d")
