"""Paint one dash-cam frame (numpy + OpenCV) and measure exact per-car boxes and visibility."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from drivesim.world.camera import Camera
from drivesim.world.categories import solids_for
from drivesim.world.labels import Box
from drivesim.world.palette import Palette, headlight_gain
from drivesim.world.road import DASH_LENGTH_M, DASH_PERIOD_M, MARK_HALF_WIDTH_M, Road
from drivesim.world.roadside import Prop, camera_optics, clouds, paint_prop, props_near
from drivesim.world.traffic import SIDEWALK_M, Car
from drivesim.world.vehicle import Solid, VehiclePainter

NEAR_CLIP_M, FAR_CLIP_M = 1.0, 200.0
POLE_SPACING_M, POLE_HEIGHT_M = 30.0, 6.0
SUBPIXEL = 4  # cv2 fixed-point bits for polygon vertices
# Retroreflective parts (a truck's conspicuity tape) return the ego low beams towards the camera:
# lit as a diffuse surface with this much more headlight (capped at full brightness).
RETRO_GAIN = 8.0
SIDEWALK_HALF_M = 1.1  # half the width of a sidewalk (its centre is where walkers walk)


@dataclass(frozen=True)
class CarGeometry:
    """A car's solids, their projection, their silhouettes [K,2] each (and in cv2 fixed point),
    near depth (m), seen side."""

    solids: dict[str, Solid]
    points: dict[str, np.ndarray]  # projected corners [8,2] per solid
    hulls: list[np.ndarray]
    fixed_hulls: list[np.ndarray]
    depth: float
    side_sign: float


def _mix(a, b, t):
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


def _f32(rgb) -> np.ndarray:
    return np.asarray(rgb, np.float32)


def _fixed(points: np.ndarray) -> np.ndarray:
    """Continuous image coords (pixel k spans [k, k+1)) -> cv2 fixed point (pixel k centred at k)."""
    return np.rint((np.asarray(points) - 0.5) * (1 << SUBPIXEL)).astype(np.int32)


class FramePainter:
    """Renders frames of one road at one camera; stateless across frames."""

    def __init__(self, camera: Camera, road: Road, palette: Palette, seed: int = 0, sidewalks: bool = False):
        self.cam, self.road, self.pal, self.seed = camera, road, palette, seed
        self.sidewalks = sidewalks  # paved strips where people walk, SIDEWALK_M beyond each edge
        h, w = camera.height_px, camera.width_px
        self.ground_row0 = int(np.floor(camera.horizon_row - 0.5)) + 1  # first row below the horizon
        rows = np.arange(self.ground_row0, h, dtype=np.float64)
        self.z = camera.ground_depth(rows)[:, None]  # [Hg,1]
        self.metres_per_px = self.z / camera.focal_px  # [Hg,1]
        self.x_cam = (np.arange(w) + 0.5 - camera.center_col)[None, :] * self.metres_per_px  # [Hg,W]
        sky_t = np.clip(np.arange(h) / max(camera.horizon_row, 1.0), 0, 1)[:, None, None]
        cover = clouds(h, w, camera.horizon_row, seed)[..., None]
        self.sky = np.ascontiguousarray(
            _mix(palette.sky_top, palette.sky_horizon, sky_t) * (1 - cover) + cover * _f32(palette.cloud),
            np.float32,
        )
        self.glow_sigma = max(1.0, w / 200.0)
        # Per-pixel terms that do not change between frames (float32 keeps _ground fast).
        self.metres_per_px = self.metres_per_px.astype(np.float32)
        self.x_cam = self.x_cam.astype(np.float32)
        self.grass, self.asphalt = _f32(palette.grass), _f32(palette.asphalt)
        self.sidewalk = _f32(palette.sidewalk)
        self.white_mark, self.yellow_mark = _f32(palette.white_mark), _f32(palette.yellow_mark)
        gain = headlight_gain(self.x_cam, self.z).astype(np.float32)[..., None]
        self.ground_light = palette.ambient + gain
        self.mark_light = np.clip(2.5 * palette.ambient + 1.5 * gain, 0, 1)  # retro-reflective paint
        self.fog = np.exp(-self.z / palette.fog_m).astype(np.float32)[..., None]
        self.fog_color = _f32(palette.sky_horizon) * (1 - self.fog)

    # -- background -------------------------------------------------------------------------
    def _ground(self, s_ego: float, ego_lateral: float) -> np.ndarray:
        """Grass, asphalt and markings below the horizon -> [Hg,W,3] float32."""
        pal, road, mpp = self.pal, self.road, self.metres_per_px
        bend = self.road.bend(s_ego, self.z[:, 0]).astype(np.float32)[:, None]
        x_road = self.x_cam + np.float32(ego_lateral) - bend  # road lateral coordinate per pixel
        on_road = np.clip(
            np.minimum(x_road - road.left_edge_m, road.right_edge_m - x_road) / mpp + 0.5, 0, 1
        )[..., None]
        color = self.grass + (self.asphalt - self.grass) * on_road
        if self.sidewalks:
            beyond = np.maximum(road.left_edge_m - x_road, x_road - road.right_edge_m)  # m past an edge
            paved = np.clip((SIDEWALK_HALF_M - np.abs(beyond - SIDEWALK_M)) / mpp + 0.5, 0, 1)[..., None]
            color = color + (self.sidewalk - color) * paved
        dash_on = ((s_ego + self.z) % DASH_PERIOD_M) < DASH_LENGTH_M  # [Hg,1]
        cover = {"white": np.zeros_like(x_road), "yellow": np.zeros_like(x_road)}
        for m in road.markings():
            cov = np.clip((MARK_HALF_WIDTH_M - np.abs(x_road - m.lateral_m)) / mpp + 0.5, 0, 1)
            cover[m.color] += cov * dash_on if m.dashed else cov
        white, yellow = (np.clip(cover[c], 0, 1)[..., None] for c in ("white", "yellow"))
        marks = white * self.white_mark + yellow * self.yellow_mark
        coverage = np.clip(white + yellow, 0, 1)
        if pal.headlights:
            color = color * self.ground_light
            marks = marks * self.mark_light
        return (color * (1 - coverage) + marks) * self.fog + self.fog_color

    # -- objects ----------------------------------------------------------------------------
    def _camera_x(
        self, lateral: float, z: np.ndarray, s_ego: float, ego_lateral: float, camera_lateral: bool
    ) -> np.ndarray:
        if camera_lateral:
            return np.full_like(z, lateral)
        return lateral - ego_lateral + self.road.bend(s_ego, z)

    def _car_geometry(self, car: Car, s_ego: float, ego_lateral: float) -> CarGeometry | None:
        """The car's solids projected through the camera (None when out of the depth range)."""
        z_near, z_far = car.ahead - car.length / 2, car.ahead + car.length / 2
        if z_far <= NEAR_CLIP_M + 0.5 or z_near > FAR_CLIP_M:
            return None
        solids = solids_for(car.category, car.length, car.width, car.height, car.faces_camera, car.color)

        def project(points: np.ndarray) -> np.ndarray:  # car frame (x, y, d) [N,3] -> pixels [N,2]
            z = np.maximum(z_near + points[:, 2], NEAR_CLIP_M)
            x = self._camera_x(car.lateral, z, s_ego, ego_lateral, car.camera_lateral) + points[:, 0]
            u, v = self.cam.project(x, points[:, 1], z)
            return np.stack([u, v], 1)

        corners = project(np.concatenate([s.corners() for s in solids.values()])).astype(np.float32)
        points = dict(zip(solids, np.split(corners, len(solids))))  # [8,2] per solid
        hulls = [cv2.convexHull(p)[:, 0, :] for p in points.values()]
        centre_x = float(
            self._camera_x(
                car.lateral, np.array([max(z_near, NEAR_CLIP_M)]), s_ego, ego_lateral, car.camera_lateral
            )[0]
        )
        return CarGeometry(
            solids,
            points,
            hulls,
            [_fixed(hull) for hull in hulls],
            max(z_near, NEAR_CLIP_M),
            -1.0 if centre_x > 0 else 1.0,
        )

    def _paint_car(self, img, emissive, car: Car, geo: CarGeometry) -> None:
        pal, depth = self.pal, geo.depth
        light, retro = 1.0, 1.0
        if pal.headlights:
            cx = float(geo.hulls[-1][:, 0].mean() - self.cam.center_col) * depth / self.cam.focal_px
            gain = float(headlight_gain(np.array(cx), np.array(depth)))
            light = pal.ambient + gain
            retro = min(1.0, pal.ambient + RETRO_GAIN * gain)
        fog, haze = self._fog(depth)
        painter = VehiclePainter(
            lambda rgb: rgb * light * fog + haze,
            self.cam.mount_height_m,
            pal.headlights,
            retro=lambda rgb: rgb * retro * fog + haze,
        )
        painter.paint(
            img,
            emissive,
            geo.solids,
            geo.points,
            np.asarray(car.color, np.float32),
            car.faces_camera,
            geo.side_sign,
        )

    def _fog(self, depth: float) -> tuple[float, np.ndarray]:
        """Share of a surface's own colour left at `depth` m, and the horizon haze [3] added to it."""
        fog = float(np.exp(-depth / self.pal.fog_m))
        return fog, np.asarray(self.pal.sky_horizon, np.float32) * (1 - fog)

    def _shadow(self, shade: np.ndarray, car: Car, s_ego: float, ego_lateral: float) -> None:
        z0, z1 = car.ahead - car.length / 2 - 0.3, car.ahead + car.length / 2 + 0.3
        if z1 <= NEAR_CLIP_M + 0.5 or z0 > FAR_CLIP_M:
            return
        zs = np.array([max(z0, NEAR_CLIP_M), max(z1, NEAR_CLIP_M)])
        xc = self._camera_x(car.lateral, zs, s_ego, ego_lateral, car.camera_lateral)
        half = car.width / 2 + 0.3
        x = np.array([xc[0] - half, xc[0] + half, xc[1] + half, xc[1] - half])
        z = np.array([zs[0], zs[0], zs[1], zs[1]])
        u, v = self.cam.project(x, np.zeros(4), z)
        cv2.fillConvexPoly(shade, _fixed(np.stack([u, v], 1)), 0.5, cv2.LINE_AA, SUBPIXEL)

    def _poles(self, s_ego: float, ego_lateral: float) -> list[tuple[float, np.ndarray, float]]:
        first = np.ceil(s_ego / POLE_SPACING_M) * POLE_SPACING_M
        out = []
        for s in np.arange(first, s_ego + FAR_CLIP_M * 0.75, POLE_SPACING_M):
            z = s - s_ego
            if z < 2.0:
                continue
            x = self._camera_x(self.road.right_edge_m + 3.0, np.array([z]), s_ego, ego_lateral, False)
            u, v = self.cam.project(np.repeat(x, 2), np.array([0.0, POLE_HEIGHT_M]), np.full(2, z))
            out.append((z, np.stack([u, v], 1), max(1.0, 0.2 * self.cam.focal_px / z)))
        return out

    def _props(self, s_ego: float, ego_lateral: float) -> list[tuple[float, Prop, float, float]]:
        """(depth, prop, u, v of its base) of the roadside props in view."""
        out = []
        for prop in props_near(
            self.seed, s_ego + 3.0, s_ego + FAR_CLIP_M * 0.8, self.road.left_edge_m, self.road.right_edge_m
        ):
            z = prop.s - s_ego
            x = self._camera_x(prop.lateral, np.array([z]), s_ego, ego_lateral, False)
            u, v = self.cam.project(x, np.zeros(1), np.array([z]))
            if -0.5 * self.cam.width_px < u[0] < 1.5 * self.cam.width_px:
                out.append((z, prop, float(u[0]), float(v[0])))
        return out

    def _paint_prop(self, img, depth: float, prop: Prop, u: float, v: float) -> None:
        pal = self.pal
        fog, haze = self._fog(depth)
        paint_prop(img, prop, u, v, self.cam.focal_px / depth, pal.ambient, haze, fog, pal.headlights)

    # -- frame ------------------------------------------------------------------------------
    def paint(self, s_ego: float, ego_lateral: float, cars: list[Car]) -> tuple[np.ndarray, list[Box]]:
        """Render a frame -> (uint8 RGB [H,W,3], boxes of visible cars in pixels)."""
        cam, pal = self.cam, self.pal
        h, w = cam.height_px, cam.width_px
        img = self.sky.copy()
        img[self.ground_row0 :] = self._ground(s_ego, ego_lateral)
        if not pal.headlights:
            shade = np.zeros((h, w), np.float32)
            for car in cars:
                self._shadow(shade, car, s_ego, ego_lateral)
            img *= (1 - shade)[..., None]
        emissive = np.zeros((h, w, 3), np.float32) if pal.headlights else None
        instance = np.zeros((h, w), np.int32)  # 0 = background, i+1 = cars[i]
        geometry = {}
        # (depth, kind, item): item is (points, thickness) of a pole, (prop, u, v) of a prop, a car's index
        drawables: list[tuple[float, str, Any]] = [
            (z, "pole", (pts, thick)) for z, pts, thick in self._poles(s_ego, ego_lateral)
        ]
        drawables += [(z, "prop", (prop, u, v)) for z, prop, u, v in self._props(s_ego, ego_lateral)]
        for i, car in enumerate(cars):
            geo = self._car_geometry(car, s_ego, ego_lateral)
            if geo is not None:
                geometry[i] = geo
                drawables.append((geo.depth, "car", i))
        for depth, kind, item in sorted(drawables, key=lambda d: -d[0]):
            if kind == "prop":
                self._paint_prop(img, depth, *item)
                continue
            if kind == "pole":
                pts, thick = item
                fog = np.exp(-depth / pal.fog_m)
                color = np.asarray(pal.pole, np.float32) * fog + np.asarray(pal.sky_horizon) * (1 - fog)
                p0, p1 = _fixed(pts)
                cv2.line(img, tuple(p0), tuple(p1), color.tolist(), round(thick), cv2.LINE_AA, SUBPIXEL)
                continue
            geo = geometry[item]
            for hull in geo.fixed_hulls:
                if emissive is not None:  # a nearer car hides the lights behind it
                    cv2.fillConvexPoly(emissive, hull, (0, 0, 0), cv2.LINE_8, SUBPIXEL)
                cv2.fillConvexPoly(instance, hull, item + 1, cv2.LINE_8, SUBPIXEL)
            self._paint_car(img, emissive, cars[item], geo)
        if emissive is not None:
            img += cv2.GaussianBlur(emissive, (0, 0), self.glow_sigma) * 0.6
        rng = np.random.default_rng((self.seed, round(s_ego * 1000) % (1 << 62)))
        frame = np.clip(camera_optics(img, rng, pal.sensor_noise) + 0.5, 0, 255).astype(np.uint8)
        self.instance = instance  # id map of the last frame: 0 background, i+1 = cars[i]
        return frame, self._boxes(cars, geometry, instance)

    def boxes_only(self, s_ego: float, ego_lateral: float, cars: list[Car]) -> list[Box]:
        """The boxes `paint` would return, without painting pixels (occlusion included)."""
        instance = np.zeros((self.cam.height_px, self.cam.width_px), np.int32)
        geometry = {}
        for i, car in enumerate(cars):
            geo = self._car_geometry(car, s_ego, ego_lateral)
            if geo is not None:
                geometry[i] = geo
        for i in sorted(geometry, key=lambda i: -geometry[i].depth):
            for hull in geometry[i].fixed_hulls:
                cv2.fillConvexPoly(instance, hull, i + 1, cv2.LINE_8, SUBPIXEL)
        return self._boxes(cars, geometry, instance)

    def _boxes(self, cars: list[Car], geometry: dict, instance: np.ndarray) -> list[Box]:
        h, w = instance.shape
        visible = np.bincount(instance.ravel(), minlength=len(cars) + 1)
        boxes = []
        for i, geo in geometry.items():
            if visible[i + 1] == 0:
                continue
            points = np.concatenate(geo.hulls)
            x1, y1, x2, y2 = _in_frame_extent(geo.hulls, points, w, h)
            full = np.zeros(
                (
                    int(np.ceil(points[:, 1].max() - points[:, 1].min())) + 2,
                    int(np.ceil(points[:, 0].max() - points[:, 0].min())) + 2,
                ),
                np.uint8,
            )
            origin = np.floor(points.min(0))
            for hull in geo.hulls:
                cv2.fillConvexPoly(full, _fixed(hull - origin), 1, cv2.LINE_8, SUBPIXEL)
            ox, oy = int(origin[0]), int(origin[1])
            in_frame = int(full[max(0, -oy) : max(0, h - oy), max(0, -ox) : max(0, w - ox)].sum())
            drawn = int(full.sum())  # the whole silhouette, rasterised apart from the frame
            seen, total = int(visible[i + 1]), max(drawn, int(visible[i + 1]))
            boxes.append(
                Box(
                    round(float(x1), 2),
                    round(float(y1), 2),
                    round(float(x2), 2),
                    round(float(y2), 2),
                    cars[i].category,
                    cars[i].track_id,
                    seen / total,
                    # Scalabel's two flags apart: hidden by a nearer object (beyond the few edge
                    # pixels where the two rasterisations differ), and cut by the frame's edge.
                    occluded=in_frame - seen > max(2, 0.005 * in_frame),
                    truncated=in_frame < drawn,  # one raster: `visible` may exceed it by edge pixels
                )
            )
        return boxes


def _in_frame_extent(hulls: list[np.ndarray], points: np.ndarray, w: int, h: int) -> tuple[float, ...]:
    """x1, y1, x2, y2 of the silhouette's part inside the frame (hulls: [N,2] float pixels each)."""
    lo, hi = points.min(0), points.max(0)
    if lo.min() >= 0 and hi[0] <= w and hi[1] <= h:
        return (*lo, *hi)
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    cuts = [cv2.intersectConvexConvex(hull.astype(np.float32), frame) for hull in hulls]
    inside = [polygon.reshape(-1, 2) for area, polygon in cuts if area > 0]  # outside: area 0
    if not inside:  # only slivers under a pixel's area in frame: the clipped box of all
        return (*np.clip(lo, 0, [w, h]), *np.clip(hi, 0, [w, h]))
    clipped = np.concatenate(inside)
    return (*clipped.min(0), *clipped.max(0))
