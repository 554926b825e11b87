"""Scenario -> model conditions: the procedural world lays out the scene (every car's box
per frame, scripted agents included) and the diffusion model paints it."""

from __future__ import annotations

import dataclasses

from torch.utils.data import default_collate

from drivesim.data.conditions import Conditions, clip_conditions
from drivesim.data.labels import FrameLabel
from drivesim.scenario import Scenario
from drivesim.world import World


def scenario_layout(
    scenario: Scenario, num_frames: int, fps: float, size: tuple[int, int]
) -> list[FrameLabel]:
    """Per-frame box labels of the scenario's world at `fps`, in pixels of `size` (H,W)."""
    spec = dataclasses.replace(
        scenario.to_world_spec(), num_frames=num_frames, fps=fps, height=size[0], width=size[1]
    )
    return list(World(spec).labels())


def scenario_conditions(
    scenario: Scenario, num_frames: int, fps: float, size: tuple[int, int]
) -> tuple[Conditions, list[FrameLabel]]:
    """-> (batched condition dict with B=1, per-frame labels) for a scenario."""
    labels = scenario_layout(scenario, num_frames, fps, size)
    cond = clip_conditions(
        [lab.boxes or [] for lab in labels],  # the world knows every box
        size,
        scenario.time_of_day,
        scenario.crowdedness,
        fps,
        scenario.ego.speed_kmh / 3.6,
    )
    return default_collate([cond]), labels
