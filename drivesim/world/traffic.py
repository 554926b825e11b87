"""Cars on the road: random traffic for a crowdedness bucket, plus scripted agents.

Positions are road coordinates: `lateral` across the road (0 = centre divider, + right) and
`ahead` = distance along the road in front of the ego camera (m). Random cars keep the
bucket's car count constant: a car that leaves the simulated range is replaced by a new one
(new track id) far ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivesim.world.categories import draw_size
from drivesim.world.road import LANE_WIDTH_M, Road

NEAR_M, FAR_M = -12.0, 170.0  # simulated range around the ego
SPAWN_MIN_M, SPAWN_MAX_M = 8.0, 120.0
RESPAWN_MIN_M, RESPAWN_MAX_M = 125.0, 165.0
MIN_GAP_M = 9.0
SIDEWALK_M = 3.2  # from the road's right edge to where people walk
TRAFFIC_MIX = {"car": 0.86, "truck": 0.09, "bus": 0.05}  # vehicle classes of random moving traffic

# Body colours in about the mix of real traffic: mostly white, silver, grey and black.
CAR_COLORS = [
    (235, 235, 235),
    (200, 202, 205),
    (150, 152, 155),
    (30, 30, 33),
    (60, 62, 66),
    (30, 45, 90),
    (140, 25, 25),
    (215, 215, 210),
    (90, 92, 96),
    (20, 22, 24),
]


@dataclass
class Car:
    track_id: int
    kind: str  # "same" | "oncoming" | "parked" | "scripted"
    lateral: float
    ahead: float
    speed: float  # m/s along the road direction (negative = oncoming)
    color: tuple[int, int, int]
    length: float = 4.5
    width: float = 1.8
    height: float = 1.5
    camera_lateral: bool = False  # lateral is camera x (box tracks), not road coordinates
    category: str = "car"  # BDD100K name (world/categories.py)

    @property
    def faces_camera(self) -> bool:
        """True when the camera sees the car's front (headlights) rather than its rear."""
        return self.kind == "oncoming" or (self.kind == "scripted" and self.speed < 0)


@dataclass(frozen=True)
class Keyframe:
    """A scripted agent's state at time t: lateral is road metres or None (keep previous)."""

    t: float
    ahead: float
    lateral: float
    width: float = 1.8
    height: float = 1.5


class Traffic:
    """Random traffic of `n_cars` cars around an ego driving lane `ego_lane` at `ego_speed`."""

    def __init__(
        self,
        rng: np.random.Generator,
        road: Road,
        ego_lane: int,
        ego_speed: float,
        n_cars: int,
        first_track_id: int = 1,
        reserved_laterals: tuple[float, ...] = (),
        mix_seed: int = 0,
    ):
        self.rng, self.road, self.ego_lane, self.ego_speed = rng, road, ego_lane, ego_speed
        self.mix_seed = mix_seed
        self.reserved = reserved_laterals  # lanes of scripted agents: random cars keep out
        self.next_id = first_track_id
        self.cars: list[Car] = []
        for _ in range(n_cars):
            self._spawn(SPAWN_MIN_M, SPAWN_MAX_M)

    def _lane_of(self, kind: str) -> float:
        r = self.road
        if kind == "oncoming":
            return r.lane_center(-int(self.rng.integers(1, r.lanes_oncoming + 1)))
        if kind == "parked":
            return r.right_edge_m + 1.4
        return r.lane_center(int(self.rng.integers(0, r.lanes_forward)))

    def _free(self, lateral: float, ahead: float) -> bool:
        if any(abs(lateral - r) < 1.0 for r in self.reserved):
            return False
        if abs(lateral - self.road.lane_center(self.ego_lane)) < 1.0 and ahead < 12.0:
            return False  # never spawn on top of the ego
        return all(abs(c.lateral - lateral) > 1.0 or abs(c.ahead - ahead) > MIN_GAP_M for c in self.cars)

    def _spawn(self, lo: float, hi: float) -> None:
        kind = str(self.rng.choice(["same", "oncoming", "parked"], p=[0.55, 0.3, 0.15]))
        for attempt in range(60):
            if attempt == 30:  # this kind's lanes are full or reserved: try the other side
                kind = "oncoming" if kind != "oncoming" else "parked"
            lateral, ahead = self._lane_of(kind), float(self.rng.uniform(lo, hi))
            if self._free(lateral, ahead):
                break
        speed = {
            "same": self.ego_speed + self.rng.normal(0, 2.0),
            "oncoming": -float(self.rng.uniform(12, 25)),
            "parked": 0.0,
        }[kind]
        color = CAR_COLORS[int(self.rng.integers(len(CAR_COLORS)))]
        size = draw_size("car", self.rng)
        # The vehicle class from its own stream (per track id), so the cars, lanes and speeds of a
        # seed stay those of the world before trucks and buses came.
        own = np.random.default_rng([self.mix_seed, self.next_id, 28])
        category = (
            "car" if kind == "parked" else str(own.choice(list(TRAFFIC_MIX), p=list(TRAFFIC_MIX.values())))
        )
        if category != "car":
            size = draw_size(category, own)
        self.cars.append(
            Car(
                self.next_id,
                kind,
                lateral,
                ahead,
                max(speed, 0.0) if kind == "same" else speed,
                color,
                *size,
                category=category,
            )
        )
        self.next_id += 1

    def step(self, dt: float) -> None:
        """Advance all cars by dt seconds (simple car following), replacing cars that left."""
        for car in self.cars:
            speed = car.speed
            if car.kind == "same":
                leader = min(
                    (
                        c.ahead
                        for c in self.cars
                        if c is not car
                        and c.kind != "oncoming"
                        and abs(c.lateral - car.lateral) < 1.0
                        and c.ahead > car.ahead
                    ),
                    default=None,
                )
                if leader is not None and leader - car.ahead < MIN_GAP_M:
                    speed = min(speed, self.ego_speed - 1.0)
                in_ego_lane = abs(car.lateral - self.road.lane_center(self.ego_lane)) < 1.0
                if in_ego_lane and car.ahead < 12.0:
                    speed = max(speed, self.ego_speed + 1.0)  # the ego keeps its distance
            car.ahead += (speed - self.ego_speed) * dt
        gone = [c for c in self.cars if not NEAR_M <= c.ahead <= FAR_M]
        for car in gone:
            self.cars.remove(car)
            self._spawn(RESPAWN_MIN_M, RESPAWN_MAX_M)


class ScriptedAgent:
    """A car that follows keyframes linearly interpolated in time (held outside their range)."""

    def __init__(
        self,
        track_id: int,
        keyframes: list[Keyframe],
        color: tuple[int, int, int],
        oncoming: bool = False,
        camera_lateral: bool = False,
        category: str = "car",
        length: float = 4.5,
    ):
        self.keyframes = sorted(keyframes, key=lambda k: k.t)
        self.car = Car(
            track_id,
            "scripted",
            keyframes[0].lateral,
            keyframes[0].ahead,
            -1.0 if oncoming else 1.0,
            color,
            length,
            camera_lateral=camera_lateral,
            category=category,
        )

    def at(self, t: float) -> Car:
        """The agent's car state at time t (seconds)."""
        ts = np.array([k.t for k in self.keyframes])
        for name in ("ahead", "lateral", "width", "height"):
            values = np.array([getattr(k, name) for k in self.keyframes])
            setattr(self.car, name, float(np.interp(t, ts, values)))
        return self.car


def lane_lateral(road: Road, lane: int | str) -> float:
    """Lateral position of a lane given as an index (0 = leftmost forward lane), 'shoulder' or
    'sidewalk' (beyond the shoulder, where people walk)."""
    if lane == "shoulder":
        return road.right_edge_m + 1.4
    if lane == "sidewalk":
        return road.right_edge_m + SIDEWALK_M
    return road.lane_center(int(lane))


__all__ = ["LANE_WIDTH_M", "Car", "Keyframe", "ScriptedAgent", "Traffic", "lane_lateral"]
