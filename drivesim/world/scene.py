"""A procedural driving clip: spec in, RGB frames and exact per-frame box labels out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from drivesim.world.camera import Camera
from drivesim.world.categories import CLOTHES, size_of
from drivesim.world.labels import BDD_TIME_OF_DAY, CROWDEDNESS_CARS, Box, FrameLabel
from drivesim.world.palette import PALETTES
from drivesim.world.render import FramePainter
from drivesim.world.road import Road
from drivesim.world.traffic import CAR_COLORS, Keyframe, ScriptedAgent, Traffic, lane_lateral
from drivesim.world.walkers import Walkers

WARMUP_S = 1.0  # simulated before the first frame so traffic is already in motion


@dataclass(frozen=True)
class AgentTrack:
    """A scripted car: waypoints (t s, lane relative to the ego lane, metres ahead of the
    camera to the car's near face) or image boxes (t s, normalised xyxy of the near face)."""

    track_id: int
    waypoints: tuple[tuple[float, int | Literal["shoulder", "sidewalk"], float], ...] = ()
    boxes: tuple[tuple[float, tuple[float, float, float, float]], ...] = ()
    oncoming: bool = False
    category: str = "car"  # BDD100K name (world/categories.py)


@dataclass(frozen=True)
class WorldSpec:
    time_of_day: str = "day"
    crowdedness: str = "light"
    num_frames: int = 60
    fps: float = 30.0
    height: int = 128
    width: int = 256
    seed: int = 0
    ego_speed: float = 20.0  # m/s
    curvature: str = "gentle"  # straight | gentle | winding
    lanes_forward: int | None = None
    lanes_oncoming: int | None = None
    ego_lane: int | None = None  # 0 = leftmost forward lane; random when None
    agents: tuple[AgentTrack, ...] = field(default_factory=tuple)
    # people walking on the sidewalks (world/walkers.py); off by default: the shipped 1-class
    # models would read their boxes as cars
    walkers: bool = False


@dataclass
class Clip:
    frames: np.ndarray  # uint8 [T,H,W,3] RGB
    labels: list[FrameLabel]
    spec: WorldSpec


class World:
    """Seeded simulation of one clip; iterate `frames()` to stream (image, labels)."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        self.road = Road.random(rng, spec.curvature, spec.lanes_forward, spec.lanes_oncoming)
        self.camera = Camera.for_size(spec.height, spec.width)
        on_foot = any(lane == "sidewalk" for a in spec.agents for _, lane, _ in a.waypoints)
        self.painter = FramePainter(
            self.camera, self.road, PALETTES[spec.time_of_day], spec.seed, sidewalks=spec.walkers or on_foot
        )
        self.ego_lane = int(rng.integers(0, self.road.lanes_forward))
        if spec.ego_lane is not None:
            self.ego_lane = spec.ego_lane
        self.ego_lateral = self.road.lane_center(self.ego_lane)
        self.s_ego0 = self.s_ego = float(rng.uniform(0, 10_000))
        lo, hi = CROWDEDNESS_CARS[spec.crowdedness]
        n_random = max(0, int(rng.integers(lo, hi + 1)) - len(spec.agents))
        first_id = 1 + max((a.track_id for a in spec.agents), default=0)
        self.agents = [self._scripted(a, i) for i, a in enumerate(spec.agents)]
        reserved = tuple(self._lane_lateral_of(a.at(0.0)) for a in self.agents)
        self.traffic = Traffic(
            rng, self.road, self.ego_lane, spec.ego_speed, n_random, first_id, reserved, mix_seed=spec.seed
        )
        self.walkers = (
            Walkers(spec.seed, self.road, spec.ego_speed, spec.crowdedness) if spec.walkers else None
        )
        self.time_offset = 0.0  # clip time of the next frame (advance() moves it)
        for _ in range(int(WARMUP_S * spec.fps)):
            self._step(1.0 / spec.fps)

    def _scripted(self, agent: AgentTrack, index: int) -> ScriptedAgent:
        color = CAR_COLORS[(agent.track_id + index) % len(CAR_COLORS)]
        if agent.category == "pedestrian" or agent.category in ("bicycle", "motorcycle"):
            color = CLOTHES[(agent.track_id + index) % len(CLOTHES)]  # the person's clothes
        length, width, height = size_of(agent.category)
        if agent.waypoints:
            keys = [
                Keyframe(
                    t,
                    ahead + length / 2,
                    lane_lateral(self.road, lane if isinstance(lane, str) else self.ego_lane + lane),
                    width,
                    height,
                )
                for t, lane, ahead in agent.waypoints
            ]
            return ScriptedAgent(
                agent.track_id, keys, color, agent.oncoming, category=agent.category, length=length
            )
        keys = []
        for t, (x1, y1, x2, y2) in agent.boxes:
            w, h = self.spec.width, self.spec.height
            x, z = self.camera.unproject_ground((x1 + x2) / 2 * w, y2 * h)
            metres_per_px = z / self.camera.focal_px
            keys.append(
                Keyframe(
                    t,
                    z + length / 2,
                    x,
                    width=(x2 - x1) * w * metres_per_px,
                    height=(y2 - y1) * h * metres_per_px,
                )
            )
        return ScriptedAgent(
            agent.track_id, keys, color, agent.oncoming, True, category=agent.category, length=length
        )

    def _lane_lateral_of(self, car) -> float:
        if not car.camera_lateral:
            return car.lateral
        return car.lateral + self.ego_lateral - float(self.road.bend(self.s_ego0, car.ahead))

    def advance(self, num_frames: int) -> None:
        """Simulate num_frames frames without painting them (skip ahead cheaply)."""
        dt = 1.0 / self.spec.fps
        for _ in range(num_frames):
            self._step(dt)
        self.time_offset += num_frames * dt

    def _step(self, dt: float) -> None:
        self.traffic.step(dt)
        if self.walkers is not None:
            self.walkers.step(dt, self.traffic.cars, self.ego_lateral)
        self.s_ego += self.spec.ego_speed * dt

    def labels(self) -> Iterator[FrameLabel]:
        """Yield each frame's FrameLabel without painting (same boxes as frames())."""
        for i, (cars, attributes) in enumerate(self._states()):
            boxes = self.painter.boxes_only(self.s_ego, self.ego_lateral, cars)
            yield FrameLabel(i, boxes, attributes)

    def _states(self) -> Iterator[tuple[list, dict[str, str]]]:
        """Per frame: the cars to draw and the frame attributes; advances the simulation."""
        spec, dt = self.spec, 1.0 / self.spec.fps
        attributes = {
            "timeofday": BDD_TIME_OF_DAY[spec.time_of_day],
            "weather": "clear",
            "scene": "highway",
            "crowdedness": spec.crowdedness,
        }
        for i in range(spec.num_frames):
            people = self.walkers.people if self.walkers is not None else []
            scripted = [a.at(self.time_offset + i * dt) for a in self.agents]
            yield self.traffic.cars + scripted + people, dict(attributes)
            self._step(dt)

    def frames(self) -> Iterator[tuple[np.ndarray, FrameLabel]]:
        """Yield (uint8 RGB [H,W,3], FrameLabel) for each of spec.num_frames frames."""
        for i, (cars, attributes) in enumerate(self._states()):
            image, boxes = self.painter.paint(self.s_ego, self.ego_lateral, cars)
            yield image, FrameLabel(i, boxes, attributes)


def render_clip(spec: WorldSpec) -> Clip:
    """Render a whole clip into memory: frames uint8 [T,H,W,3] plus labels."""
    images, labels = [], []
    for image, label in World(spec).frames():
        images.append(image)
        labels.append(label)
    return Clip(np.stack(images), labels, spec)


def boxes_of(labels: list[FrameLabel]) -> list[list[Box]]:
    """Per-frame box lists of a label list (unknown boxes become empty lists)."""
    return [list(lab.boxes or []) for lab in labels]
