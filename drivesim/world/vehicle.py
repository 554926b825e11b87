"""A vehicle as a few shaded solids (tyres, body, glass cabin) with lamps, plate and bumper.

Each solid is a convex hexahedron in car coordinates (x across the car, y up from the road, d
back from the face the camera sees). It is painted as its silhouette in the side shade, then
its top (when the camera is above it) and the face towards the camera with that face's parts,
so cars keep the outline a detector trained on photos knows: wheels, a glass cabin narrower
than the body, lamps at the body's corners. Solids are painted tyres, body, cabin: each hides
the one before. Road users under DETAIL_MIN_PX pixels tall are painted as silhouettes, faces, glass
and lamps only (crowded 128x256 renders 1.4x faster; docs/world.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

SUBPIXEL = 4
TYRE = np.array([24, 24, 26], np.float32)
GLASS = np.array([34, 40, 50], np.float32)
GLASS_SKY = np.array([105, 120, 140], np.float32)  # reflected sky at the top of a window by day
PLASTIC = np.array([38, 38, 40], np.float32)
METAL_ROD = np.array([120, 122, 126], np.float32)
PLATE = np.array([215, 215, 205], np.float32)
REAR_LAMP = np.array([190, 22, 18], np.float32)
SIGN = np.array([255, 170, 40], np.float32)  # a bus's destination sign (amber LEDs)
REFLECTOR = np.array([200, 30, 25], np.float32)
HEAD_LAMP = np.array([235, 235, 220], np.float32)
INTERIOR = np.array([150, 142, 112], np.float32)  # a bus's lit saloon seen through its windows at night
TAPE_WHITE = np.array([235, 235, 235], np.float32)
# A lamp's glow at night stops growing here: wider faces (a truck's) kept their lamps' radius and
# hid the whole face under two white discs, no shape left to find.
GLOW_MAX_PX = 14.0
DETAIL_MIN_PX = 12.0  # road users shorter than this are painted without their finer parts


@dataclass(frozen=True)
class Solid:
    """A hexahedron: rectangle at y0 (half width w0, depth d0..d1) below one at y1 (w1, e0..e1)."""

    w0: float
    w1: float
    y0: float
    y1: float
    d0: float
    d1: float
    e0: float
    e1: float
    x: float = 0.0  # offset across the car
    color: tuple[int, int, int] | None = None  # its own colour (a person's clothes); None: the body's
    # "bus": a cabin with pillared side windows, a destination sign over the windscreen and a small
    # rear window; "cargo": a box whose rear face is a roll-up door over a reflective strip;
    # "chassis": a truck's chassis seen from behind, the dark underside of its box with a guard bar
    style: str = ""

    def corners(self) -> np.ndarray:
        """[8,3] (x, y, d): bottom near-left, near-right, far-right, far-left, then the top four."""
        rows = []
        for w, y, a, b in ((self.w0, self.y0, self.d0, self.d1), (self.w1, self.y1, self.e0, self.e1)):
            rows += [(self.x - w, y, a), (self.x + w, y, a), (self.x + w, y, b), (self.x - w, y, b)]
        return np.array(rows, np.float64)


def car_solids(length: float, width: float, height: float, front_to_camera: bool) -> dict[str, Solid]:
    """Tyres, body and cabin of a car, depth measured from the face the camera sees."""
    hw, clearance, belt = width / 2, 0.28, 0.55 * height + 0.1
    # The cabin sits nearer the rear: a short boot and a long bonnet.
    near_gap, far_gap = (1.3, 0.6) if front_to_camera else (0.6, 1.3)
    tyre_r, tyre_w = 0.33, 0.24
    solids = {}
    for i, d in enumerate((0.75, length - 0.75)):
        for j, x in enumerate((-hw + tyre_w / 2 + 0.03, hw - tyre_w / 2 - 0.03)):
            solids[f"tyre{i}{j}"] = Solid(
                tyre_w / 2, tyre_w / 2, 0.0, 2 * tyre_r, d - tyre_r, d + tyre_r, d - tyre_r, d + tyre_r, x
            )
    solids["body"] = Solid(hw, hw * 0.97, clearance, belt, 0.0, length, 0.08, length - 0.08)
    solids["cabin"] = Solid(
        hw * 0.9, hw * 0.72, belt, height, near_gap, length - far_gap, near_gap + 0.45, length - far_gap - 0.5
    )
    return solids


def _height_px(points: dict[str, np.ndarray]) -> float:
    """How tall a road user is on screen (pixels)."""
    ys = np.concatenate([p[:, 1] for p in points.values()])
    return float(ys.max() - ys.min())


def _side(pts: np.ndarray, side_sign: float) -> np.ndarray:
    """A solid's side quad [near-bottom, far-bottom, far-top, near-top] that the camera sees
    (side_sign -1: its left, +1: its right)."""
    return pts[[0, 3, 7, 4] if side_sign < 0 else [1, 2, 6, 5]]


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.rint((np.asarray(points) - 0.5) * (1 << SUBPIXEL)).astype(np.int32)


def _sub_quad(quad: np.ndarray, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """The part [u0,u1] x [v0,v1] (bilinear) of an image quad [bottom-left, bottom-right, top-right,
    top-left] [4,2]."""
    # plain floats: 4x faster than numpy on [4,2] (these run ~200 times a frame)
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = quad.tolist()
    out = []
    for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
        bottom_x, bottom_y = ax + (bx - ax) * u, ay + (by - ay) * u
        top_x, top_y = dx + (cx - dx) * u, dy + (cy - dy) * u
        out.append((bottom_x + (top_x - bottom_x) * v, bottom_y + (top_y - bottom_y) * v))
    return np.array(out)


class VehiclePainter:
    """Paints a car's projected solids; `shade(rgb)` applies its light and fog, `retro(rgb)` the
    same for retroreflective parts (a truck's conspicuity tape), which send the ego headlights back
    and so shine at night far beyond the light they get (default: shade)."""

    def __init__(
        self,
        shade: Callable[[np.ndarray], np.ndarray],
        camera_height: float,
        night: bool,
        retro: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.shade, self.camera_height, self.night = shade, camera_height, night
        self.retro = retro or shade

    def _fill(self, img, quad, rgb) -> None:
        cv2.fillConvexPoly(img, _fixed(quad), np.asarray(rgb, np.float64).tolist(), cv2.LINE_AA, SUBPIXEL)

    def _lit(self, img, emissive, quad, rgb: np.ndarray, glow: float) -> None:
        """A part that gives light (a lamp, a sign): its own colour at night, with rgb * glow into
        emissive; by day it is shaded like any surface."""
        self._fill(img, quad, rgb if self.night else self.shade(rgb))
        if emissive is not None:
            self._fill(emissive, quad, rgb * glow)

    def paint(
        self,
        img: np.ndarray,
        emissive: np.ndarray | None,
        solids: dict[str, Solid],
        points: dict[str, np.ndarray],
        body_rgb: np.ndarray,
        front_to_camera: bool,
        side_sign: float,
    ) -> None:
        """Paint one car's solids (corners projected to pixels [8,2] each) into img [H,W,3] float32,
        and its lamps into emissive."""
        body = np.asarray(body_rgb, np.float32)
        if _height_px(points) < DETAIL_MIN_PX:
            self._small(img, emissive, solids, points, body, front_to_camera)
            return
        for name, solid in solids.items():  # tyres, body, cabin: each hides the one before
            pts = points[name]
            near = pts[[0, 1, 5, 4]]
            base = TYRE if name.startswith("tyre") else body
            if solid.color is not None or (name not in ("body", "cabin") and not name.startswith("tyre")):
                rgb = np.asarray(solid.color or body_rgb, np.float32)
                self._plain(img, pts, rgb, solid)
                if solid.style == "cargo":
                    self._cargo(img, emissive, pts, rgb, front_to_camera, side_sign)
                continue
            self._fill(img, cv2.convexHull(pts)[:, 0], self.shade(base * 0.62))
            if name == "cabin":
                self._cabin_side(img, pts, side_sign, solid.style)
            if solid.y1 < self.camera_height:  # the camera sees the top
                self._fill(img, pts[4:], self.shade(base * (0.6 if name.startswith("tyre") else 1.08)))
            if name.startswith("tyre"):
                self._fill(img, near, self.shade(TYRE * 1.2))
            elif name == "body":
                self._body_face(img, emissive, near, body, front_to_camera, solid.style == "chassis")
            elif solid.style == "bus":
                self._bus_face(img, emissive, near, body, front_to_camera)
            else:
                self._fill(img, near, self.shade(body * 0.9))
                glass = _sub_quad(near, 0.07, 0.93, 0.06, 0.9)
                self._fill(img, glass, self.shade(GLASS))
                if not self.night:  # sky reflected in the upper part of the glass
                    self._fill(img, _sub_quad(near, 0.07, 0.93, 0.62, 0.9), self.shade(GLASS_SKY * 0.6))

    def _small(self, img, emissive, solids: dict[str, Solid], points: dict, body: np.ndarray, front: bool):
        """A road user a few pixels tall: each solid's silhouette and near face, glass, and lamps;
        finer parts would cover less than a pixel (and cost 4x the time)."""
        for name, solid in solids.items():
            pts = points[name]
            rgb = TYRE if name.startswith("tyre") else np.asarray(solid.color or body, np.float32)
            self._fill(img, cv2.convexHull(pts)[:, 0], self.shade(rgb * 0.62))
            near = pts[[0, 1, 5, 4]]
            if name == "cabin":
                self._fill(img, near, self.shade(GLASS))
            elif not name.startswith("tyre"):
                self._fill(img, near, self.shade(rgb * 0.85))
            if name == "body":
                self._lamps(img, emissive, near, front)

    def _plain(self, img, pts: np.ndarray, rgb: np.ndarray, solid: Solid) -> None:
        """A part in one colour (a cargo box, a limb): side shade, lit top, the near face between."""
        self._fill(img, cv2.convexHull(pts)[:, 0], self.shade(rgb * 0.62))
        if solid.y1 < self.camera_height:
            self._fill(img, pts[4:], self.shade(rgb * 1.08))
        self._fill(img, pts[[0, 1, 5, 4]], self.shade(rgb * 0.9))

    def _cabin_side(self, img, pts: np.ndarray, side_sign: float, style: str = "") -> None:
        """Side windows on the cabin side the camera sees (side_sign -1: its left, +1: its right);
        a bus's are a row of panes between pillars."""
        side = _side(pts, side_sign)
        if style != "bus":
            self._fill(img, _sub_quad(side, 0.08, 0.92, 0.1, 0.88), self.shade(GLASS * 0.9))
            return
        panes = 7
        pane = INTERIOR if self.night else self.shade(GLASS)  # a bus's saloon is lit at night
        for k in range(panes):
            u0 = 0.02 + 0.96 * k / panes
            self._fill(img, _sub_quad(side, u0 + 0.012, u0 + 0.96 / panes - 0.012, 0.04, 0.93), pane)

    def _bus_face(self, img, emissive, face: np.ndarray, body: np.ndarray, front: bool) -> None:
        """A bus's upper face: the windscreen under a destination sign and its mirrors, or the rear
        window under a route sign, with engine louvres and tall lamps."""
        self._fill(img, face, self.shade(body * 0.9))
        if front:  # the driver's end is dark at night; the saloon shows through the rear window
            self._fill(img, _sub_quad(face, 0.04, 0.96, 0.0, 0.8), self.shade(GLASS))
            if not self.night:
                self._fill(img, _sub_quad(face, 0.04, 0.96, 0.5, 0.8), self.shade(GLASS_SKY * 0.55))
            sign = _sub_quad(face, 0.08, 0.92, 0.83, 0.97)
            self._fill(img, sign, self.shade(PLASTIC * 0.6))
            for u0, u1 in ((-0.1, -0.02), (1.02, 1.1)):  # the mirrors that hang before the windscreen
                self._fill(img, _sub_quad(face, u0, u1, 0.45, 0.68), self.shade(PLASTIC))
            self._lit(img, emissive, _sub_quad(face, 0.2, 0.8, 0.87, 0.93), SIGN, 0.5)
        else:  # a city bus's rear: a rear window under the route sign, engine louvres, tall lamps
            glass = INTERIOR * 0.8 if self.night else self.shade(GLASS)
            self._fill(img, _sub_quad(face, 0.14, 0.86, 0.5, 0.82), glass)
            self._lit(img, emissive, _sub_quad(face, 0.32, 0.68, 0.86, 0.95), SIGN, 0.5)  # route sign
            for v in (0.12, 0.2, 0.28, 0.36):  # engine-bay louvres
                self._fill(img, _sub_quad(face, 0.22, 0.78, v, v + 0.04), self.shade(PLASTIC * 0.8))
            for u0 in (0.02, 0.9):  # tall rear lamp clusters at the corners
                self._lit(img, emissive, _sub_quad(face, u0, u0 + 0.08, 0.06, 0.42), REAR_LAMP, 0.6)

    def _cargo(self, img, emissive, pts: np.ndarray, rgb: np.ndarray, front: bool, side_sign: float) -> None:
        """A cargo box's rails along the side the camera sees and, from behind, its roll-up door (a
        roll-up door's slats found more trucks with the real-photo detector than swing doors)."""
        side = _side(pts, side_sign)
        for v0, v1 in ((0.0, 0.05), (0.96, 1.0)):
            self._fill(img, _sub_quad(side, 0.0, 1.0, v0, v1), self.shade(rgb * 0.45))
        if front:
            return
        face = pts[[0, 1, 5, 4]]
        for v0, k in ((0.0, 0.78), (0.25, 0.84), (0.5, 0.9), (0.75, 0.96)):  # lit from above
            self._fill(img, _sub_quad(face, 0.0, 1.0, v0, 1.0), self.shade(rgb * k))
        dark = self.shade(rgb * 0.55)
        for u0, u1, v0, v1 in (
            (0.0, 1.0, 0.0, 0.04),
            (0.0, 1.0, 0.97, 1.0),
            (0.0, 0.03, 0, 1),
            (0.97, 1.0, 0, 1),
        ):
            self._fill(img, _sub_quad(face, u0, u1, v0, v1), dark)  # the door's frame
        for k in range(1, 12):  # the slats of a roll-up door
            v = 0.06 + 0.9 * k / 12
            self._fill(img, _sub_quad(face, 0.03, 0.97, v - 0.006, v + 0.006), self.shade(rgb * 0.6))
        self._fill(img, _sub_quad(face, 0.44, 0.56, 0.1, 0.13), self.shade(METAL_ROD))  # the handle
        for u in (0.02, 0.42, 0.48, 0.54, 0.92):  # identification and clearance lamps along the top
            self._lit(img, emissive, _sub_quad(face, u, u + 0.05, 0.955, 0.99), REAR_LAMP, 0.6)
        for k in range(10):  # red-white conspicuity tape along the bottom
            colour = REFLECTOR if k % 2 == 0 else TAPE_WHITE
            self._fill(
                img, _sub_quad(face, 0.04 + 0.092 * k, 0.04 + 0.092 * (k + 1), 0.05, 0.09), self.retro(colour)
            )
        for u0, u1 in ((0.03, 0.15), (0.85, 0.97)):  # and white corner marks at the top
            self._fill(img, _sub_quad(face, u0, u1, 0.9, 0.935), self.retro(TAPE_WHITE))
        for u0 in (0.03, 0.94):
            self._fill(img, _sub_quad(face, u0, u0 + 0.03, 0.78, 0.935), self.retro(TAPE_WHITE))

    def _body_face(
        self, img, emissive, face: np.ndarray, body: np.ndarray, front: bool, chassis=False
    ) -> None:
        """The body's face: bumper, grille or plate, lamps; a truck's chassis from behind is the dark
        underside of its cargo box with an underride guard."""
        if chassis:
            self._fill(img, face, self.shade(PLASTIC * 0.55))
            self._fill(img, _sub_quad(face, 0.03, 0.97, 0.05, 0.3), self.shade(METAL_ROD * 0.8))  # the guard
            for u0 in (0.04, 0.8):  # mud flaps behind the rear wheels
                self._fill(img, _sub_quad(face, u0, u0 + 0.16, -0.6, 0.2), self.shade(TYRE * 0.7))
        else:
            for v0, v1, k in ((0.0, 1.0, 0.72), (0.35, 1.0, 0.82), (0.6, 1.0, 0.92), (0.8, 1.0, 1.0)):
                self._fill(img, _sub_quad(face, 0.0, 1.0, v0, v1), self.shade(body * k))  # lit from above
            self._fill(
                img, _sub_quad(face, 0.02, 0.98, 0.93, 1.0), self.shade(np.minimum(body * 1.25 + 20, 255))
            )
            self._fill(img, _sub_quad(face, 0.0, 1.0, 0.0, 0.22), self.shade(PLASTIC))  # bumper
            self._fill(img, _sub_quad(face, 0.06, 0.94, 0.0, 0.06), self.shade(PLASTIC * 0.5))
        if front:
            self._fill(img, _sub_quad(face, 0.3, 0.7, 0.3, 0.58), self.shade(PLASTIC * 0.8))  # grille
        else:
            self._fill(img, _sub_quad(face, 0.39, 0.61, 0.28, 0.46), self.shade(PLATE))
        self._lamps(img, emissive, face, front)

    def _lamps(self, img, emissive, face: np.ndarray, front: bool) -> None:
        """Head or rear lamps at the corners of a body face, and their glow at night."""
        lamp = HEAD_LAMP if front else REAR_LAMP
        v0, v1 = (0.6, 0.8) if front else (0.6, 0.78)
        for u0, u1 in ((0.02, 0.27), (0.73, 0.98)):
            if front:  # a dark housing: a white lamp on a white body would leave no lamp to see
                self._fill(img, _sub_quad(face, u0, u1, v0 - 0.06, v1 + 0.05), self.shade(PLASTIC * 0.6))
                u0, u1 = u0 + 0.03, u1 - 0.03
            quad = _sub_quad(face, u0, u1, v0, v1)
            lit = lamp * (1.15 if self.night else 1.0)
            self._fill(img, quad, lit if self.night else self.shade(lit))
            if emissive is not None:
                centre = quad.mean(0)
                radius = max(1.0, 0.5 * float(np.linalg.norm(quad[1] - quad[0])))
                cv2.circle(
                    emissive,
                    tuple(int(c) for c in _fixed(centre)),
                    round(min(radius * (2 if front else 1.4), GLOW_MAX_PX) * (1 << SUBPIXEL)),
                    lamp.tolist(),
                    -1,
                    cv2.LINE_AA,
                    SUBPIXEL,
                )
