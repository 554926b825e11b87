"""Pinhole dash-cam: x right, y up, z forward (metres), camera at `height` above a flat road."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

Coords = TypeVar("Coords", float, np.ndarray)  # scalars or arrays of points


@dataclass(frozen=True)
class Camera:
    height_px: int
    width_px: int
    focal_px: float
    horizon_row: float  # image row of the vanishing line
    mount_height_m: float = 1.4

    @classmethod
    def for_size(cls, height: int, width: int) -> Camera:
        """A ~60 degree horizontal field of view camera whose horizon sits at 42 % of the height."""
        return cls(height, width, focal_px=0.86 * width, horizon_row=0.42 * height)

    @property
    def center_col(self) -> float:
        return self.width_px / 2.0

    def project(self, x: Coords, y: Coords, z: Coords) -> tuple[Coords, Coords]:
        """World points (metres, z > 0) -> pixel (u, v)."""
        u = self.center_col + self.focal_px * x / z
        v = self.horizon_row + self.focal_px * (self.mount_height_m - y) / z
        return u, v

    def ground_depth(self, rows: np.ndarray) -> np.ndarray:
        """Depth z of the flat ground seen at pixel-centre rows below the horizon (inf above)."""
        dv = rows + 0.5 - self.horizon_row
        with np.errstate(divide="ignore"):
            return np.where(dv > 0, self.focal_px * self.mount_height_m / np.maximum(dv, 1e-6), np.inf)

    def unproject_ground(self, u: float, v: float) -> tuple[float, float]:
        """Pixel on the ground (below the horizon) -> (x, z) in metres."""
        dv = max(v - self.horizon_row, 1e-3)
        z = self.focal_px * self.mount_height_m / dv
        return (u - self.center_col) * z / self.focal_px, z
