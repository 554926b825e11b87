"""Random condition dropout for classifier-free guidance: one probability per condition, plus a
joint drop-all. Independent drops alone would train CFG's fully unconditional branch on
p_tod * p_crowd * p_boxes of the steps (0.1 % at 0.1 each). A class-aware model also loses single
boxes' classes (class -1: a box of unknown class, still in its place)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from drivesim.data.conditions import Conditions, as_conditions, tensor_dict


@dataclass(frozen=True)
class ConditionDropout:
    """Drop each condition of a batch independently per sample, and all of them at once with
    probability `all` (training only)."""

    time_of_day: float = 0.1
    crowdedness: float = 0.1
    boxes: float = 0.1
    all: float = 0.1
    box_class: float = 0.1  # per box, its class; only for models with box_classes > 1

    def __call__(
        self, cond: Conditions, generator: torch.Generator | None = None, box_classes: int = 1
    ) -> Conditions:
        """Condition dict with [B] leading axis -> copy where dropped entries read as null (a dropped
        box class as -1). box_classes: the model's; with 1 no class is dropped (nor drawn for)."""
        out = tensor_dict(cond)
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
        if box_classes > 1 and self.box_class > 0:
            box_class = cond["box_class"]
            unknown = torch.rand(box_class.shape, generator=generator) < self.box_class
            out["box_class"] = torch.where(
                unknown.to(box_class.device), torch.full_like(box_class, -1), box_class
            )
        return as_conditions(out)


def null_conditions(cond: Conditions, scene: bool = True, boxes: bool = True) -> Conditions:
    """Copy of cond with the scene conditions and/or the boxes replaced by null (for CFG)."""
    out = cond.copy()
    if scene:
        out["time_of_day"] = torch.full_like(cond["time_of_day"], -1)
        out["crowdedness"] = torch.full_like(cond["crowdedness"], -1)
    if boxes:
        out["box_mask"] = torch.zeros_like(cond["box_mask"])
    return out
