"""A scenario file -> the concrete clips it asks for: the sweep grid (time_of_day x crowdedness
x seeds) times `variants` seeds, each with a stable id.

A clip's id is `<scenario hash>-<seed>`: the hash is the short sha256 of the canonical JSON of
the expanded scenario without its seed and description, so editing a description or adding
seeds keeps the ids of the clips already made, and any other change makes new ones.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from drivesim.scenario import (
    SCHEMA_VERSION,
    Scenario,
    ScenarioError,
    format_validation_error,
    load_scenario,
    scenario_files,
)

HASH_CHARS = 12  # 48 bits: collisions are negligible for millions of scenarios
NOT_HASHED = ("seed", "description")


@dataclass(frozen=True)
class ClipSpec:
    """One clip to generate: a concrete scenario (no sweep, one seed) and where it came from."""

    scenario: Scenario
    scenario_hash: str
    variant: int  # index of the seed within its sweep point
    source: str  # the scenario file

    @property
    def seed(self) -> int:
        return self.scenario.seed

    @property
    def clip_id(self) -> str:
        return f"{self.scenario_hash}-{self.seed}"


def canonical_json(scenario: Scenario, exclude: tuple[str, ...] = NOT_HASHED) -> str:
    """The scenario as JSON with sorted keys and no whitespace (what the hash is of)."""
    data = scenario.model_dump(mode="json", exclude=set(exclude))
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def scenario_hash(scenario: Scenario) -> str:
    """Short sha256 of a concrete scenario without its seed and description."""
    return hashlib.sha256(canonical_json(scenario).encode()).hexdigest()[:HASH_CHARS]


def _concrete(scenario: Scenario, updates: dict, source: str) -> Scenario:
    data = scenario.model_dump(mode="json", exclude={"sweep", "variants"}) | updates
    data["version"] = SCHEMA_VERSION  # a v1 file and its v2 twin give the same clips
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        point = ", ".join(f"{k}={v}" for k, v in updates.items())
        raise ScenarioError(format_validation_error(e, f"{source} (sweep point {point})")) from None


def expand(scenario: Scenario, source: str = "<scenario>", variants: int | None = None) -> list[ClipSpec]:
    """A scenario -> its concrete clips, grid order (time_of_day, crowdedness, seed).
    variants overrides the file's `variants` (seeds seed, seed+1, ... per sweep point)."""
    sweep = scenario.sweep
    n = scenario.variants if variants is None else variants
    if n < 1:
        raise ScenarioError(f"{source}: variants={n}: give at least 1")
    if sweep is not None and sweep.seeds is not None and variants is not None and variants > 1:
        raise ScenarioError(f"{source}: sweep.seeds lists the seeds; --variants {variants} cannot add more")
    times = (sweep.time_of_day if sweep else None) or [scenario.time_of_day]
    crowds = (sweep.crowdedness if sweep else None) or [scenario.crowdedness]
    seeds = (sweep.seeds if sweep else None) or [scenario.seed + v for v in range(n)]
    clips = []
    for time_of_day, crowdedness in itertools.product(times, crowds):
        for variant, seed in enumerate(seeds):
            concrete = _concrete(
                scenario, {"time_of_day": time_of_day, "crowdedness": crowdedness, "seed": seed}, source
            )
            clips.append(ClipSpec(concrete, scenario_hash(concrete), variant, source))
    return clips


def expand_paths(paths: list[str | Path], variants: int | None = None) -> list[ClipSpec]:
    """Files, folders or globs -> every concrete clip; every file is validated before returning,
    and all problems are reported together (one ScenarioError)."""
    clips, problems = [], []
    for target in paths:
        try:
            files = scenario_files(target)
        except ScenarioError as e:
            problems.append(str(e))
            continue
        for path in files:
            try:
                clips += expand(load_scenario(path), str(path), variants)
            except ScenarioError as e:
                problems.append(str(e))
    if problems:
        raise ScenarioError("\n".join(problems))
    return unique_clips(clips)


def unique_clips(clips: list[ClipSpec]) -> list[ClipSpec]:
    """The clips once each; two files that describe the same clip are an error (one ScenarioError
    naming every pair), since they would compete for one catalog row."""
    seen: dict[str, ClipSpec] = {}
    problems = []
    for clip in clips:
        other = seen.get(clip.clip_id)
        if other is not None and other.source != clip.source:
            problems.append(
                f"{clip.source} and {other.source} describe the same clip "
                f"({clip.scenario.id}, seed {clip.seed}, id {clip.clip_id}): remove one, "
                "or change its seed"
            )
        seen.setdefault(clip.clip_id, clip)
    if problems:
        raise ScenarioError("\n".join(problems))
    return list(seen.values())
