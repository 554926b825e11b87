"""Road geometry: lanes, markings and a smooth curvature profile along the driven distance."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

LANE_WIDTH_M = 3.6
MARK_HALF_WIDTH_M = 0.075
DASH_PERIOD_M = 12.0
DASH_LENGTH_M = 3.0


@dataclass(frozen=True)
class Marking:
    lateral_m: float  # position across the road, 0 = centre divider, + = right
    color: str  # "white" | "yellow"
    dashed: bool


@dataclass(frozen=True)
class Road:
    """Lateral layout (0 = divider, forward lanes to the right) and curvature k(s) = sum of sines."""

    lanes_forward: int
    lanes_oncoming: int
    curve_amplitudes: tuple[float, ...]  # 1/m
    curve_periods: tuple[float, ...]  # m
    curve_phases: tuple[float, ...]  # rad

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        curvature: str = "gentle",
        lanes_forward: int | None = None,
        lanes_oncoming: int | None = None,
    ) -> Road:
        """Sample a road; curvature is 'straight', 'gentle' or 'winding'."""
        scale = {"straight": 0.0, "gentle": 1.0 / 900, "winding": 1.0 / 260}[curvature]
        return cls(
            lanes_forward=int(lanes_forward if lanes_forward is not None else rng.integers(2, 4)),
            lanes_oncoming=int(lanes_oncoming if lanes_oncoming is not None else rng.integers(1, 3)),
            curve_amplitudes=tuple(float(a) for a in scale * rng.uniform(0.4, 1.0, 2)),
            curve_periods=tuple(float(p) for p in rng.uniform(250, 700, 2)),
            curve_phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 2)),
        )

    @property
    def left_edge_m(self) -> float:
        return -self.lanes_oncoming * LANE_WIDTH_M

    @property
    def right_edge_m(self) -> float:
        return self.lanes_forward * LANE_WIDTH_M

    def lane_center(self, lane: int) -> float:
        """Lateral centre of a lane: 0.. forward lanes (0 = leftmost), -1.. oncoming lanes."""
        return (lane + 0.5) * LANE_WIDTH_M

    def markings(self) -> list[Marking]:
        marks = [Marking(-0.15, "yellow", False), Marking(0.15, "yellow", False)]
        marks += [Marking(i * LANE_WIDTH_M, "white", True) for i in range(1, self.lanes_forward)]
        marks += [Marking(-i * LANE_WIDTH_M, "white", True) for i in range(1, self.lanes_oncoming)]
        marks += [
            Marking(self.left_edge_m + 0.3, "white", False),
            Marking(self.right_edge_m - 0.3, "white", False),
        ]
        return marks

    def curvature(self, s: np.ndarray) -> np.ndarray:
        """Curvature (1/m) at arc length s (m)."""
        k = np.zeros_like(s, dtype=np.float64)
        for a, p, ph in zip(self.curve_amplitudes, self.curve_periods, self.curve_phases):
            k += a * np.sin(2 * np.pi * s / p + ph)
        return k

    def bend(self, s_ego: float, z: np.ndarray) -> np.ndarray:
        """Lateral shift (m) of the road at distances z ahead, relative to the ego heading line.

        Small-angle integration of the curvature: d(z) = int_0^z int_0^z1 k(s_ego + z2).
        """
        return np.interp(z, BEND_GRID, _bend_profile(self, float(s_ego)))


BEND_GRID = np.linspace(0.0, 400.0, 801)


@functools.lru_cache(maxsize=8)  # every object of a frame asks for the same ego position
def _bend_profile(road: Road, s_ego: float) -> np.ndarray:
    """Lateral shift of the road on BEND_GRID ahead of s_ego."""
    dz = BEND_GRID[1] - BEND_GRID[0]
    heading = np.concatenate([[0.0], np.cumsum(road.curvature(s_ego + BEND_GRID[:-1])) * dz])
    return np.concatenate([[0.0], np.cumsum(heading[:-1]) * dz])
