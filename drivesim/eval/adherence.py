"""Condition adherence with drivesim's probes: does a clip show the time of day, crowdedness and
boxes it was conditioned on? Also the probe features for the built-in Frechet distance."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from drivesim.data.conditions import Conditions, as_conditions, tensor_dict
from drivesim.models.model_index import check_folder_class, load_part
from drivesim.models.probes import BoxProbe, ClipProbe

DEFAULT_PROBES = Path(__file__).resolve().parents[1] / "assets" / "eval"
MIN_BOX_HEIGHT = 8.0  # pixels of a 128-pixel-high frame; smaller boxes are not probed


class ProbeSet(NamedTuple):
    """The probes of an evaluation folder (its model_index.json's `_class_name`)."""

    clip: ClipProbe
    box: BoxProbe


def load_probes(folder: str | Path = DEFAULT_PROBES) -> ProbeSet:
    """The trained probes of a folder (clip.safetensors/.json, box.safetensors/.json), eval mode."""
    folder = Path(folder)
    check_folder_class(folder, "ProbeSet")
    clip, box = load_part(folder, "clip", ClipProbe), load_part(folder, "box", BoxProbe)
    return ProbeSet(clip.float().eval(), box.float().eval())


class AdherenceMeter:
    """Accumulates probe results over clips: accuracies, box hit rate and probe features."""

    def __init__(self, clip_probe: ClipProbe, box_probe: BoxProbe):
        self.clip_probe, self.box_probe = clip_probe, box_probe
        self.hits = {"time_of_day": [0, 0], "crowdedness": [0, 0], "boxes": [0, 0]}
        self.features: list[torch.Tensor] = []

    @torch.no_grad()
    def update(self, frames: torch.Tensor, cond: Conditions) -> None:
        """frames [B,T,3,H,W] in [-1,1] with the batched condition dict they were made for."""
        out = self.clip_probe(frames)
        self.features.append(out["features"].double())
        for key in ("time_of_day", "crowdedness"):
            known = cond[key] >= 0
            self.hits[key][0] += int((out[key].argmax(1) == cond[key])[known].sum())
            self.hits[key][1] += int(known.sum())
        if "boxes_known" in cond:
            known = cond["boxes_known"]
            frames, cond = frames[known], as_conditions({k: v[known] for k, v in tensor_dict(cond).items()})
        min_h = MIN_BOX_HEIGHT / 128
        big = cond["box_mask"] & ((cond["boxes"][..., 3] - cond["boxes"][..., 1]) >= min_h)
        b_idx, t_idx, _ = big.nonzero(as_tuple=True)
        if len(b_idx):
            logits = self.box_probe(frames[b_idx, t_idx], cond["boxes"][big])
            self.hits["boxes"][0] += int((logits > 0).sum())
            self.hits["boxes"][1] += len(b_idx)

    def report(self) -> dict:
        """Accuracy per condition (None where no clip had that label) and counts."""
        rates = {k: (h / n if n else None) for k, (h, n) in self.hits.items()}
        return {
            "time_of_day_accuracy": rates["time_of_day"],
            "crowdedness_accuracy": rates["crowdedness"],
            "box_hit_rate": rates["boxes"],
            "boxes_probed": self.hits["boxes"][1],
            "clips_with_time_of_day": self.hits["time_of_day"][1],
        }

    def all_features(self) -> torch.Tensor:
        """[N,D] probe features of every clip seen."""
        return torch.cat(self.features)
