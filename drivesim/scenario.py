"""Scenario schema v2: what a scenario YAML file can say, validated with pydantic.

A scenario describes one clip: conditions (time of day, crowdedness), length, frame rate,
seed, ego motion, road, output resolution and optional scripted agents. Agents move by
waypoints (lane relative to the ego lane, metres ahead, at time t) or by an image box track
(normalised x1,y1,x2,y2 at time t); keyframes are linearly interpolated.

Schema v2 (a superset of v1; v1 files load unchanged) adds a `schedule` (time of day and
crowdedness changing along the clip), a `sweep` grid (time_of_day x crowdedness x seeds) and
`variants` (seeds per grid point); drivesim.scenario_expand turns such a file into concrete clips.
"""

from __future__ import annotations

import glob
from itertools import pairwise
from pathlib import Path
from typing import Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drivesim.data.conditions import CROWDEDNESS_CARS
from drivesim.validation import validation_problems
from drivesim.world import AgentTrack, WorldSpec

SCHEMA_VERSION = 2  # the newest; a file without `version` is read as this
V2_KEYS = ("schedule", "sweep", "variants")
MIN_SIDE, MAX_SIDE = 32, 2048  # output resolution limits per side, pixels
MAX_SEED = 2**63
TimeOfDay = Literal["day", "night"]
Crowdedness = Literal["empty", "light", "moderate", "crowded"]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file, field and fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Waypoint(_Strict):
    t: float = Field(ge=0, description="seconds from the clip start")
    lane: int | Literal["shoulder", "sidewalk"] = Field(
        default=0,
        description="lane relative to the ego lane: 0 ego lane, +1 right, -1 left; or 'shoulder', "
        "or 'sidewalk' (right of the shoulder, where people walk)",
    )
    ahead_m: float = Field(ge=-10, le=200, description="distance ahead of the ego camera (m)")


class BoxKey(_Strict):
    t: float = Field(ge=0, description="seconds from the clip start")
    box: tuple[float, float, float, float] = Field(
        description="x1, y1, x2, y2 normalised to [0, 1] of the frame"
    )

    @model_validator(mode="after")
    def _inside_frame(self) -> BoxKey:
        x1, y1, x2, y2 = self.box
        if not all(0.0 <= v <= 1.0 for v in self.box):
            raise ValueError(
                f"box {list(self.box)} leaves the frame: coordinates are normalised, each must be in [0, 1]"
            )
        if not (x1 < x2 and y1 < y2):
            raise ValueError(f"box {list(self.box)} is empty: need x1 < x2 and y1 < y2")
        if y2 <= 0.43:
            raise ValueError(
                f"box {list(self.box)} has its bottom edge (y2={y2}) at or above the "
                "horizon (0.42): a car on the road needs y2 > 0.43"
            )
        return self


class Agent(_Strict):
    id: int = Field(ge=1, description="track id written to the labels")
    category: Literal["car", "truck", "bus", "motorcycle", "bicycle", "pedestrian"] = Field(
        default="car", description="BDD100K name of the road user (its size, look and label)"
    )
    oncoming: bool = False
    waypoints: list[Waypoint] | None = None
    box_track: list[BoxKey] | None = None

    @model_validator(mode="after")
    def _one_track(self) -> Agent:
        if (self.waypoints is None) == (self.box_track is None):
            raise ValueError("give exactly one of 'waypoints' or 'box_track'")
        keys = self.waypoints or self.box_track
        if not keys:
            raise ValueError("the track needs at least one keyframe")
        if any(b.t < a.t for a, b in pairwise(keys)):
            raise ValueError("keyframes must be sorted by t")
        return self


class Ego(_Strict):
    speed_kmh: float = Field(default=72.0, ge=0, le=200)
    lane: int = Field(default=1, ge=0, description="ego lane, 0 = leftmost forward lane")


class RoadSpec(_Strict):
    curvature: Literal["straight", "gentle", "winding"] = "gentle"
    lanes_forward: int = Field(default=3, ge=1, le=4)
    lanes_oncoming: int = Field(default=1, ge=0, le=3)


class Output(_Strict):
    resolution: tuple[int, int] = Field(default=(128, 256), description="height, width in pixels")

    @model_validator(mode="after")
    def _supported_size(self) -> Output:
        h, w = self.resolution
        if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
            raise ValueError(
                f"resolution {h}x{w}: each side must be {MIN_SIDE}..{MAX_SIDE} pixels "
                "(drivesim's limit; the paper profile writes 512x1024), e.g. [128, 256] or "
                "[512, 1024]"
            )
        if h % 8 or w % 8:
            raise ValueError(
                f"resolution {h}x{w}: height and width must be multiples of 8 "
                "(the latent models downsample by 8), e.g. [128, 256] or [512, 1024]"
            )
        return self


class TimeOfDayChange(_Strict):
    at: float = Field(gt=0, description="seconds from the clip start")
    value: TimeOfDay


class CrowdednessChange(_Strict):
    at: float = Field(gt=0, description="seconds from the clip start")
    value: Crowdedness


class Schedule(_Strict):
    """Changes along the clip: from `at` seconds on, the condition is `value` (a step function;
    the scenario's time_of_day / crowdedness hold from 0 until the first change)."""

    time_of_day: list[TimeOfDayChange] = []
    crowdedness: list[CrowdednessChange] = []

    @model_validator(mode="after")
    def _increasing(self) -> Schedule:
        for name in ("time_of_day", "crowdedness"):
            times = [c.at for c in getattr(self, name)]
            if any(b <= a for a, b in pairwise(times)):
                raise ValueError(f"schedule.{name}: 'at' times {times} must be strictly increasing")
        return self


class Sweep(_Strict):
    """A grid: one clip per combination of the listed values (a missing key keeps the scenario's)."""

    time_of_day: list[TimeOfDay] | None = Field(default=None, min_length=1)
    crowdedness: list[Crowdedness] | None = Field(default=None, min_length=1)
    seeds: list[int] | None = Field(default=None, min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _unique(self) -> Sweep:
        for name in ("time_of_day", "crowdedness", "seeds"):
            values = getattr(self, name)
            if values is not None and len(set(values)) != len(values):
                raise ValueError(f"sweep.{name}: {values} repeats a value; list each once")
        if self.seeds is not None and not all(0 <= s < MAX_SEED for s in self.seeds):
            raise ValueError(f"sweep.seeds: {self.seeds}: each seed must be in 0..2**63-1")
        return self


class Scenario(_Strict):
    version: Literal[1, 2] = SCHEMA_VERSION
    id: str = Field(max_length=120)
    description: str = ""
    time_of_day: TimeOfDay = "day"
    crowdedness: Crowdedness = "light"
    duration_s: float | None = Field(default=None, gt=0, le=600)
    frames: int | None = Field(default=None, ge=1, le=36000)
    fps: float = Field(default=30.0, gt=0, le=120)
    seed: int = Field(default=0, ge=0, lt=MAX_SEED)
    ego: Ego = Ego()
    road: RoadSpec = RoadSpec()
    output: Output = Output()
    agents: list[Agent] = []
    schedule: Schedule = Schedule()
    sweep: Sweep | None = None
    variants: int = Field(default=1, ge=1, le=1000, description="seeds per sweep point: seed, seed+1, ...")

    @field_validator("id")
    @classmethod
    def _safe_file_name(cls, value: str) -> str:
        if (
            not value
            or not value[0].isascii()
            or not value[0].isalnum()
            or any(not (c.isascii() and (c.isalnum() or c in "_.-")) for c in value)
        ):
            raise ValueError(
                "an id names the output files: it must start with a letter or digit and "
                "use only letters, digits and _ . -"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.version == 1:
            used = [k for k in V2_KEYS if k in self.model_fields_set]
            if used:
                raise ValueError(
                    f"{', '.join(used)}: schema v2 key(s) in a 'version: 1' file; "
                    "set version: 2 (v2 reads every v1 file)"
                )
        if self.duration_s is not None and self.frames is not None:
            raise ValueError("give 'duration_s' or 'frames', not both")
        self._check_sweep_and_schedule()
        if self.ego.lane >= self.road.lanes_forward:
            raise ValueError(
                f"ego.lane={self.ego.lane} but the road has {self.road.lanes_forward} "
                f"forward lanes: use 0..{self.road.lanes_forward - 1}"
            )
        ids = [a.id for a in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError(f"agent ids must be unique, got {ids}")
        for where, crowdedness in self._crowdedness_values():
            top = CROWDEDNESS_CARS[crowdedness][1]
            if len(self.agents) > max(top, 0) and crowdedness != "crowded":
                raise ValueError(
                    f"{len(self.agents)} agents but {where} '{crowdedness}' "
                    f"allows at most {top} cars: raise crowdedness or remove agents"
                )
        lo = -(self.ego.lane + self.road.lanes_oncoming)
        hi = self.road.lanes_forward - 1 - self.ego.lane
        for i, agent in enumerate(self.agents):
            for j, key in enumerate(agent.waypoints or agent.box_track or []):
                where = f"agents[{i}].{'waypoints' if agent.waypoints else 'box_track'}[{j}]"
                if key.t > self.duration + 1e-9:
                    raise ValueError(f"{where}.t={key.t} is after the clip end ({self.duration:g} s)")
                lane = cast("int | str", getattr(key, "lane", "shoulder"))
                if not isinstance(lane, str) and not lo <= lane <= hi:
                    raise ValueError(
                        f"{where}.lane={lane}: this road has lanes {lo}..{hi} "
                        "relative to the ego lane (negative = left/oncoming)"
                    )
        return self

    def _check_sweep_and_schedule(self) -> None:
        sweep = self.sweep or Sweep()
        for name in ("time_of_day", "crowdedness"):
            if getattr(sweep, name) is not None and getattr(self.schedule, name):
                raise ValueError(
                    f"sweep.{name} and schedule.{name} are both set: a sweep picks one value "
                    "per clip, a schedule changes it along the clip; give one"
                )
            for i, change in enumerate(getattr(self.schedule, name)):
                if change.at >= self.duration:
                    raise ValueError(
                        f"schedule.{name}[{i}].at={change.at:g} is not inside the clip: "
                        f"use 0 < at < {self.duration:g} s"
                    )
        if sweep.seeds is not None and self.variants > 1:
            raise ValueError(
                f"sweep.seeds and variants={self.variants} are both set: list the seeds, "
                "or give variants (seeds seed, seed+1, ...), not both"
            )
        if self.seed + self.variants > MAX_SEED:
            raise ValueError(f"seed={self.seed} with variants={self.variants} passes 2**63-1: lower the seed")

    def _crowdedness_values(self) -> list[tuple[str, str]]:
        """(field, value) of every crowdedness this scenario's clips take."""
        swept = self.sweep is not None and self.sweep.crowdedness is not None
        values = [] if swept else [("crowdedness", self.crowdedness)]
        values += [
            (f"schedule.crowdedness[{i}].value", c.value) for i, c in enumerate(self.schedule.crowdedness)
        ]
        if swept:
            assert self.sweep is not None and self.sweep.crowdedness is not None  # swept says so
            values += [("sweep.crowdedness", c) for c in self.sweep.crowdedness]
        return values

    def time_of_day_at(self, seconds: float) -> str:
        """The scheduled time of day at `seconds` from the clip start."""
        return _value_at(self.time_of_day, self.schedule.time_of_day, seconds)

    def crowdedness_at(self, seconds: float) -> str:
        """The scheduled crowdedness at `seconds` from the clip start."""
        return _value_at(self.crowdedness, self.schedule.crowdedness, seconds)

    @property
    def num_frames(self) -> int:
        if self.frames is not None:
            return self.frames
        return max(1, round((self.duration_s if self.duration_s is not None else 2.0) * self.fps))

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def to_world_spec(self) -> WorldSpec:
        """The procedural-world description of this scenario."""
        agents = tuple(
            AgentTrack(
                track_id=a.id,
                waypoints=tuple((w.t, w.lane, w.ahead_m) for w in a.waypoints or []),
                boxes=tuple((b.t, b.box) for b in a.box_track or []),
                oncoming=a.oncoming,
                category=a.category,
            )
            for a in self.agents
        )
        h, w = self.output.resolution
        return WorldSpec(
            time_of_day=self.time_of_day,
            crowdedness=self.crowdedness,
            num_frames=self.num_frames,
            fps=self.fps,
            height=h,
            width=w,
            seed=self.seed,
            ego_speed=self.ego.speed_kmh / 3.6,
            curvature=self.road.curvature,
            lanes_forward=self.road.lanes_forward,
            lanes_oncoming=self.road.lanes_oncoming,
            ego_lane=self.ego.lane,
            agents=agents,
        )


def _value_at(start: str, changes: list, seconds: float) -> str:
    value = start
    for change in changes:
        if change.at <= seconds:
            value = change.value
    return value


def format_validation_error(err: ValidationError, source: str) -> str:
    """Pydantic errors of a Scenario -> one line per problem naming field, value and what is allowed."""
    return validation_problems(err, source, Scenario, "scenario")


def parse_scenario(data: object, source: str = "<scenario>") -> Scenario:
    """A parsed YAML mapping -> validated Scenario (raises ScenarioError)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping of keys, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(format_validation_error(e, source)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as e:
        raise ScenarioError(f"{path}: cannot read the scenario file: {e}") from None
    return parse_scenario(data, str(path))


def _yaml_problem(err: yaml.YAMLError) -> str:
    """The parser's problem at line:column of the file (its own text names '<unicode string>')."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def scenario_files(path: str | Path) -> list[Path]:
    """A scenario file, the sorted *.yaml / *.yml files of a folder, or the files a glob matches."""
    if any(c in str(path) for c in "*?[") and not Path(path).exists():
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not files:
            raise ScenarioError(f"{path}: the pattern matches no scenario file")
        return files
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        if not files:
            raise ScenarioError(f"{path}: folder has no .yaml scenario files")
        return files
    if not path.exists():
        raise ScenarioError(f"{path}: no such scenario file or folder")
    return [path]
