"""Random condition dropout for classifier-free guidance: one probability per condition, plus a
joint drop-all. Independent drops alone would train CFG's fully unconditional branch on
p_tod * p_crowd * p_boxes of the steps (0.1 % at 0.1 each)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ConditionDropout:
    """Drop each condition of a batch independently per sample, and all of them at once with
    probability `all` (training only)."""

    time_of_day: float = 0.1
    crowdedness: float = 0.1
    boxes: float = 0.1
    all: float = 0.1

    def __call__(
        self, cond: dict[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Condition dict with [B] leading axis -> copy where dropped entries read as null."""
        out = dict(cond)
        batch = cond["time_of_day"].shape[0]

        def draw(p: float) -> torch.Tensor:
            return torch.rand(batch, generator=generator) < p

        drop_all = draw(self.all)
        for key, p in (("time_of_day", self.time_of_day), ("crowdedness", self.crowdedness)):
            out[key] = torch.where(
                (draw(p) | drop_all).to(cond[key].device), torch.full_like(cond[key], -1), cond[key]
            )
        drop = (draw(self.boxes) | drop_all).to(cond["box_mask"].device)
        out["box_mask"] = cond["box_mask"] & ~drop.view(-1, *[1] * (cond["box_mask"].dim() - 1))
        return out


def null_conditions(
    cond: dict[str, torch.Tensor], scene: bool = True, boxes: bool = True
) -> dict[str, torch.Tensor]:
    """Copy of cond with the scene conditions and/or the boxes replaced by null (for CFG)."""
    out = dict(cond)
    if scene:
        out["time_of_day"] = torch.full_like(cond["time_of_day"], -1)
        out["crowdedness"] = torch.full_like(cond["crowdedness"], -1)
    if boxes:
        out["box_mask"] = torch.zeros_like(cond["box_mask"])
    return out
