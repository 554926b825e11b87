"""Scenario schema v1: what a scenario YAML file can say, validated with pydantic.

A scenario describes one clip: conditions (time of day, crowdedness), length, frame rate,
seed, ego motion, road, output resolution and optional scripted agents. Agents move by
waypoints (lane relative to the ego lane, metres ahead, at time t) or by an image box track
(normalised x1,y1,x2,y2 at time t); keyframes are linearly interpolated.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivesim.data.conditions import CROWDEDNESS_CARS
from drivesim.world import AgentTrack, WorldSpec

SCHEMA_VERSION = 1


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file, field and fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Waypoint(_Strict):
    t: float = Field(ge=0, description="seconds from the clip start")
    lane: int | Literal["shoulder"] = Field(
        0, description="lane relative to the ego lane: 0 ego lane, +1 right, -1 left; or 'shoulder'")
    ahead_m: float = Field(ge=-10, le=200, description="distance ahead of the ego camera (m)")


class BoxKey(_Strict):
    t: float = Field(ge=0, description="seconds from the clip start")
    box: tuple[float, float, float, float] = Field(
        description="x1, y1, x2, y2 normalised to [0, 1] of the frame")

    @model_validator(mode="after")
    def _inside_frame(self) -> BoxKey:
        x1, y1, x2, y2 = self.box
        if not all(0.0 <= v <= 1.0 for v in self.box):
            raise ValueError(f"box {list(self.box)} leaves the frame: coordinates are normalised, "
                             "each must be in [0, 1]")
        if not (x1 < x2 and y1 < y2):
            raise ValueError(f"box {list(self.box)} is empty: need x1 < x2 and y1 < y2")
        if y2 <= 0.43:
            raise ValueError(f"box {list(self.box)} has its bottom edge (y2={y2}) at or above the "
                             "horizon (0.42): a car on the road needs y2 > 0.43")
        return self


class Agent(_Strict):
    id: int = Field(ge=1, description="track id written to the labels")
    category: Literal["car"] = "car"
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
    speed_kmh: float = Field(72.0, ge=0, le=200)
    lane: int = Field(1, ge=0, description="ego lane, 0 = leftmost forward lane")


class RoadSpec(_Strict):
    curvature: Literal["straight", "gentle", "winding"] = "gentle"
    lanes_forward: int = Field(3, ge=1, le=4)
    lanes_oncoming: int = Field(1, ge=0, le=3)


class Output(_Strict):
    resolution: tuple[int, int] = Field((128, 256), description="height, width in pixels")

    @model_validator(mode="after")
    def _multiple_of_8(self) -> Output:
        h, w = self.resolution
        if h % 8 or w % 8 or not (32 <= h <= 2048 and 32 <= w <= 4096):
            raise ValueError(f"resolution {h}x{w}: height and width must be multiples of 8 "
                             "(the latent models downsample by 8), e.g. [128, 256] or [512, 1024]")
        return self


class Scenario(_Strict):
    version: Literal[1] = SCHEMA_VERSION
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=120)
    description: str = ""
    time_of_day: Literal["day", "night"] = "day"
    crowdedness: Literal["empty", "light", "moderate", "crowded"] = "light"
    duration_s: float | None = Field(None, gt=0, le=600)
    frames: int | None = Field(None, ge=1, le=36000)
    fps: float = Field(30.0, gt=0, le=120)
    seed: int = Field(0, ge=0, lt=2**63)
    ego: Ego = Ego()
    road: RoadSpec = RoadSpec()
    output: Output = Output()
    agents: list[Agent] = []

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.duration_s is not None and self.frames is not None:
            raise ValueError("give 'duration_s' or 'frames', not both")
        if self.ego.lane >= self.road.lanes_forward:
            raise ValueError(f"ego.lane={self.ego.lane} but the road has {self.road.lanes_forward} "
                             f"forward lanes: use 0..{self.road.lanes_forward - 1}")
        ids = [a.id for a in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError(f"agent ids must be unique, got {ids}")
        top = CROWDEDNESS_CARS[self.crowdedness][1]
        if len(self.agents) > max(top, 0) and self.crowdedness != "crowded":
            raise ValueError(f"{len(self.agents)} agents but crowdedness '{self.crowdedness}' "
                             f"allows at most {top} cars: raise crowdedness or remove agents")
        lo = -(self.ego.lane + self.road.lanes_oncoming)
        hi = self.road.lanes_forward - 1 - self.ego.lane
        for i, agent in enumerate(self.agents):
            for j, key in enumerate(agent.waypoints or agent.box_track or []):
                where = f"agents[{i}].{'waypoints' if agent.waypoints else 'box_track'}[{j}]"
                if key.t > self.duration + 1e-9:
                    raise ValueError(f"{where}.t={key.t} is after the clip end ({self.duration:g} s)")
                lane = getattr(key, "lane", "shoulder")
                if lane != "shoulder" and not lo <= lane <= hi:
                    raise ValueError(f"{where}.lane={lane}: this road has lanes {lo}..{hi} "
                                     "relative to the ego lane (negative = left/oncoming)")
        return self

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
            )
            for a in self.agents
        )
        h, w = self.output.resolution
        return WorldSpec(time_of_day=self.time_of_day, crowdedness=self.crowdedness,
                         num_frames=self.num_frames, fps=self.fps, height=h, width=w,
                         seed=self.seed, ego_speed=self.ego.speed_kmh / 3.6,
                         curvature=self.road.curvature, lanes_forward=self.road.lanes_forward,
                         lanes_oncoming=self.road.lanes_oncoming, ego_lane=self.ego.lane,
                         agents=agents)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _submodel(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(loc: tuple) -> list[str]:
    """Field names of the model that holds the key at loc (for 'unknown key' errors)."""
    model: type[BaseModel] | None = Scenario
    for part in loc[:-1]:
        if isinstance(part, str) and model is not None and part in model.model_fields:
            model = _submodel(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def format_validation_error(err: ValidationError, source: str) -> str:
    """Pydantic errors -> one line per problem naming field, value and what is allowed."""
    lines = [f"{source}: invalid scenario ({err.error_count()} problem(s))"]
    for e in err.errors():
        where = _loc(e["loc"])
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(e["loc"]))
            lines.append(f"  {where}: unknown key; allowed keys here: {allowed}")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        value = "" if e["type"] == "missing" else f" = {e.get('input')!r}"
        lines.append(f"  {where}{value}: {msg}")
    return "\n".join(lines)


def parse_scenario(data: object, source: str = "<scenario>") -> Scenario:
    """A parsed YAML mapping -> validated Scenario (raises ScenarioError)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping of keys, got "
                            f"{type(data).__name__}")
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
        raise ScenarioError(f"{path}: not valid YAML: {e}") from None
    return parse_scenario(data, str(path))


def scenario_files(path: str | Path) -> list[Path]:
    """A scenario file, or the sorted *.yaml / *.yml files of a folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        if not files:
            raise ScenarioError(f"{path}: folder has no .yaml scenario files")
        return files
    if not path.exists():
        raise ScenarioError(f"{path}: no such scenario file or folder")
    return [path]
