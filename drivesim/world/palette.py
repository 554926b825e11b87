"""Colours and lighting of the two times of day (RGB floats in 0..255)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Palette:
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    grass: tuple[float, float, float]
    asphalt: tuple[float, float, float]
    white_mark: tuple[float, float, float]
    yellow_mark: tuple[float, float, float]
    pole: tuple[float, float, float]
    ambient: float  # multiplier on lit surfaces away from any light
    headlights: bool  # ego and other cars light the scene
    fog_m: float  # distance over which surfaces fade to the horizon colour
    cloud: tuple[float, float, float] = (235, 238, 242)
    sensor_noise: float = 5.0  # grey levels of camera grain (a real-photo detector found more cars with it)
    sidewalk: tuple[float, float, float] = (182, 179, 172)  # concrete paving where people walk


DAY = Palette(
    sky_top=(70, 130, 210),
    sky_horizon=(185, 210, 235),
    grass=(85, 120, 60),
    asphalt=(165, 163, 160),
    white_mark=(235, 235, 235),
    yellow_mark=(230, 190, 40),
    pole=(90, 90, 95),
    ambient=1.0,
    headlights=False,
    fog_m=220.0,
)
NIGHT = Palette(
    sky_top=(3, 4, 12),
    sky_horizon=(18, 20, 38),
    grass=(30, 38, 24),
    asphalt=(70, 70, 76),
    white_mark=(250, 250, 240),
    yellow_mark=(245, 200, 60),
    pole=(35, 35, 40),
    # Street-lit, not moonlit: 0.25 / 150 m (was 0.12 / 90 m) found 0.44 -> 0.50 of the night boxes
    # in 24 random crowded clips and 0.35 -> 0.40 in the scenarios (docs/world.md, 2026-12-07).
    ambient=0.25,
    headlights=True,
    fog_m=150.0,
    cloud=(24, 26, 40),
    sidewalk=(78, 78, 80),
    sensor_noise=5.0,
)

PALETTES = {"day": DAY, "night": NIGHT}


def headlight_gain(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Ego low-beam illumination (0..~1.6) at camera-frame ground point (x, z) in metres."""
    cone = np.exp(-0.5 * (x / (1.2 + 0.28 * np.abs(z))) ** 2)
    falloff = np.clip(z / 6.0, 0, 1) * np.exp(-np.clip(z, 0, None) / 38.0)
    return 1.6 * cone * falloff
