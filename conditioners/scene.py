"""Time of day and crowdedness as embeddings: summed into the timestep embedding (which the UNet's
resnets apply as scale-shift after their norms), or as two cross-attention tokens."""

from __future__ import annotations

import torch
from torch import nn


class SceneEmbedding(nn.Module):
    """time_of_day [B], crowdedness [B] (long; -1 = unknown or dropped -> null) -> [B,dim]."""

    def __init__(self, dim: int, num_time_of_day: int = 2, num_crowdedness: int = 4):
        super().__init__()
        # The last row of each table is the learned null embedding (CFG's unconditional branch).
        self.time_of_day = nn.Embedding(num_time_of_day + 1, dim)
        self.crowdedness = nn.Embedding(num_crowdedness + 1, dim)

    @staticmethod
    def _with_null(index: torch.Tensor, table: nn.Embedding) -> torch.Tensor:
        return torch.where(index < 0, table.num_embeddings - 1, index)

    def tokens(self, time_of_day: torch.Tensor, crowdedness: torch.Tensor) -> torch.Tensor:
        """[B] long, [B] long -> [B,2,dim] (time-of-day token, crowdedness token)."""
        tod = self.time_of_day(self._with_null(time_of_day, self.time_of_day))
        crowd = self.crowdedness(self._with_null(crowdedness, self.crowdedness))
        return torch.stack([tod, crowd], dim=1)

    def forward(self, time_of_day: torch.Tensor, crowdedness: torch.Tensor) -> torch.Tensor:
        """[B] long, [B] long -> [B,dim]."""
        return self.tokens(time_of_day, crowdedness).sum(dim=1)
