"""Roadside scenery beside the verges: trees and buildings at seeded places along the road, plus
the clouds of the sky and the camera's optics (blur and sensor noise).

Objects sit at fixed arc lengths, so they stay put in the world as the ego drives past; each is
drawn as a billboard at its depth, far to near, with the cars and poles.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SPACING_M = 14.0  # one roadside slot per side every SPACING_M metres
TREE_RGB = ((46, 78, 38), (60, 92, 44), (38, 64, 34), (72, 96, 50))
TRUNK_RGB = (70, 55, 40)
WALL_RGB = ((150, 140, 128), (176, 168, 150), (120, 110, 104), (190, 184, 176), (140, 120, 100))
WINDOW_DAY = np.array([60, 72, 88], np.float32)
WINDOW_NIGHT = np.array([235, 200, 120], np.float32)


@dataclass(frozen=True)
class Prop:
    """A tree (crown radius, trunk height) or a building (half width, height), at road coords."""

    kind: str  # tree | building
    s: float  # arc length (m)
    lateral: float  # road lateral coordinate of its centre (m)
    size: float
    height: float
    color: tuple[int, int, int]
    seed: int


def props_near(seed: int, s_from: float, s_to: float, left_m: float, right_m: float) -> list[Prop]:
    """The props with arc length in [s_from, s_to): the same props whenever asked (seeded per slot)."""
    out = []
    for k in range(int(np.floor(s_from / SPACING_M)), int(np.ceil(s_to / SPACING_M))):
        for side, edge in ((-1, left_m), (1, right_m)):
            rng = np.random.default_rng((seed, k, side + 1))
            if rng.random() < 0.3:
                continue
            s = (k + rng.random()) * SPACING_M
            if not s_from <= s < s_to:
                continue
            if rng.random() < 0.35:
                half = float(rng.uniform(5, 10))
                out.append(
                    Prop(
                        "building",
                        s,
                        edge + side * (half + rng.uniform(10, 18)),
                        half,
                        float(rng.uniform(6, 18)),
                        WALL_RGB[int(rng.integers(len(WALL_RGB)))],
                        int(rng.integers(1 << 30)),
                    )
                )
            else:
                out.append(
                    Prop(
                        "tree",
                        s,
                        edge + side * float(rng.uniform(4, 9)),
                        float(rng.uniform(1.8, 3.2)),
                        float(rng.uniform(1.5, 3.0)),
                        TREE_RGB[int(rng.integers(len(TREE_RGB)))],
                        int(rng.integers(1 << 30)),
                    )
                )
    return out


def paint_prop(
    img: np.ndarray,
    prop: Prop,
    u: float,
    v_ground: float,
    px_per_m: float,
    light: float,
    haze: np.ndarray,
    fog: float,
    night: bool,
) -> None:
    """Draw a prop whose base centre projects to (u, v_ground) at px_per_m pixels per metre."""

    def tone(rgb) -> list[float]:
        return (np.asarray(rgb, np.float32) * light * fog + haze).tolist()

    if prop.kind == "tree":
        trunk_w = max(1, round(0.3 * px_per_m))
        top = v_ground - prop.height * px_per_m
        cv2.line(
            img, (round(u), round(v_ground)), (round(u), round(top)), tone(TRUNK_RGB), trunk_w, cv2.LINE_AA
        )
        rng = np.random.default_rng(prop.seed)
        r = prop.size * px_per_m
        cy = top - 0.7 * r
        for i in range(5):  # a crown of overlapping blobs, darker below
            dx, dy = rng.uniform(-0.55, 0.55) * r, rng.uniform(-0.5, 0.4) * r
            shade = 0.75 + 0.35 * (i / 4) - 0.2 * (dy > 0)
            axes = (max(1, round(0.7 * r)), max(1, round(0.6 * r)))
            cv2.ellipse(
                img,
                (round(u + dx), round(cy + dy)),
                axes,
                0,
                0,
                360,
                tone(np.asarray(prop.color) * shade),
                -1,
                cv2.LINE_AA,
            )
        return
    half, height = prop.size * px_per_m, prop.height * px_per_m
    x0, x1, y0, y1 = u - half, u + half, v_ground - height, v_ground
    cv2.rectangle(img, (round(x0), round(y0)), (round(x1), round(y1)), tone(prop.color), -1, cv2.LINE_AA)
    storey, bay = 3.2 * px_per_m, 3.0 * px_per_m
    if storey < 3:
        return
    rng = np.random.default_rng(prop.seed)
    window = WINDOW_NIGHT if night else WINDOW_DAY
    for row in np.arange(y1 - storey, y0 + 0.3 * storey, -storey):
        for col in np.arange(x0 + 0.3 * bay, x1 - 0.7 * bay, bay):
            if night and rng.random() < 0.6:
                continue
            rgb = window if night else window * light * fog + haze
            cv2.rectangle(
                img,
                (round(col), round(row + 0.3 * storey)),
                (round(col + 0.55 * bay), round(row + 0.8 * storey)),
                np.asarray(rgb).tolist(),
                -1,
            )


def clouds(height: int, width: int, horizon: float, seed: int) -> np.ndarray:
    """Cloud cover of the sky, [H,W] in 0..1 (smooth noise, thinning towards the horizon)."""
    rng = np.random.default_rng(seed)
    field = np.zeros((height, width), np.float32)
    for cells, weight in ((4, 0.6), (9, 0.3), (20, 0.15)):
        coarse = rng.random((cells, cells * 2)).astype(np.float32)
        field += weight * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    rows = np.arange(height, dtype=np.float32)[:, None]
    fade = np.clip(1.0 - rows / max(horizon, 1.0), 0, 1) ** 0.5
    return np.clip((field - 0.55) * 2.5, 0, 1) * fade


def camera_optics(frame: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Lens blur (sigma scales with the width) and sensor noise (grey levels) on float32 [H,W,3]."""
    sigma = frame.shape[1] / 1280.0
    if sigma >= 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    grain = rng.standard_normal(frame.shape[:2], np.float32) * noise
    return frame + grain[..., None]
