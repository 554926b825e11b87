"""What a finished rollout was made with and what it wrote: `<id>.meta.json` as a typed record.

The catalog row, the augment row and `drivesim rollout`'s summary read these fields instead of
looking keys up in the JSON dict; `to_json` writes the same file as before.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NotRequired, TypedDict

from drivesim.pipelines.rollout import RolloutConfig
from drivesim.pipelines.upsample import UpsampleMethod


class UpsamplerMeta(TypedDict):
    """How the written video reached its size (upsampler_meta): method and seed, plus the
    diffusion upsampler's version and settings when it ran."""

    method: UpsampleMethod
    seed: int
    version: NotRequired[str]
    steps: NotRequired[int]
    noise_level: NotRequired[int]
    tile: NotRequired[int]


@dataclasses.dataclass(frozen=True)
class RolloutMeta:
    """<id>.meta.json: ids, the settings a resume must match, the video written, its diagnostics."""

    scenario_id: str
    seed: int
    settings: dict[str, Any]  # JSON-normalised: rollout, scenario, upsampler, model_versions, ...
    fps: float
    frames: int
    resolution: tuple[int, int]
    base_resolution: tuple[int, int]
    diagnostics: dict[str, Any]  # metrics.rollout_diagnostics of the written video
    seconds_this_run: float
    stage_seconds_this_run: dict[str, float]

    @property
    def rollout(self) -> RolloutConfig:
        values = dict(self.settings["rollout"])
        values["latent_size"] = tuple(values["latent_size"])
        return RolloutConfig(**values)

    @property
    def upsampler(self) -> UpsamplerMeta:
        return self.settings["upsampler"]

    @property
    def model_versions(self) -> dict[str, str]:
        return self.settings["model_versions"]

    def with_versions(self, versions: dict[str, str]) -> RolloutMeta:
        """The same record with more model versions (e.g. the encoder of a source's context)."""
        settings = self.settings | {"model_versions": self.model_versions | versions}
        return dataclasses.replace(self, settings=settings)

    def to_json(self) -> dict[str, Any]:
        """The meta.json layout: ids, then the settings' keys, then the video and its run."""
        return {
            "scenario_id": self.scenario_id,
            "seed": self.seed,
            **self.settings,
            "fps": self.fps,
            "frames": self.frames,
            "resolution": list(self.resolution),
            "base_resolution": list(self.base_resolution),
            "diagnostics": self.diagnostics,
            "seconds_this_run": self.seconds_this_run,
            "stage_seconds_this_run": self.stage_seconds_this_run,
        }
