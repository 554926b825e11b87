"""Paint one dash-cam frame (numpy + OpenCV) and measure exact per-car boxes and visibility."""

from __future__ import annotations

import cv2
import numpy as np

from drivesim.world.camera import Camera
from drivesim.world.labels import Box
from drivesim.world.palette import Palette, headlight_gain
from drivesim.world.road import DASH_LENGTH_M, DASH_PERIOD_M, MARK_HALF_WIDTH_M, Road
from drivesim.world.traffic import Car

NEAR_CLIP_M, FAR_CLIP_M = 1.0, 200.0
POLE_SPACING_M, POLE_HEIGHT_M = 30.0, 6.0
SUBPIXEL = 4  # cv2 fixed-point bits for polygon vertices
WINDOW_GLASS = np.array([25, 30, 38], np.float32)


def _mix(a, b, t):
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


def _f32(rgb) -> np.ndarray:
    return np.asarray(rgb, np.float32)


def _fixed(points: np.ndarray) -> np.ndarray:
    """Continuous image coords (pixel k spans [k, k+1)) -> cv2 fixed point (pixel k centred at k)."""
    return np.round((np.asarray(points) - 0.5) * (1 << SUBPIXEL)).astype(np.int32)


class FramePainter:
    """Renders frames of one road at one camera; stateless across frames."""

    def __init__(self, camera: Camera, road: Road, palette: Palette):
        self.cam, self.road, self.pal = camera, road, palette
        h, w = camera.height_px, camera.width_px
        self.ground_row0 = int(np.floor(camera.horizon_row - 0.5)) + 1  # first row below the horizon
        rows = np.arange(self.ground_row0, h, dtype=np.float64)
        self.z = camera.ground_depth(rows)[:, None]  # [Hg,1]
        self.metres_per_px = self.z / camera.focal_px  # [Hg,1]
        self.x_cam = (np.arange(w) + 0.5 - camera.center_col)[None, :] * self.metres_per_px  # [Hg,W]
        sky_t = np.clip(np.arange(h) / max(camera.horizon_row, 1.0), 0, 1)[:, None, None]
        self.sky = np.ascontiguousarray(
            np.broadcast_to(_mix(palette.sky_top, palette.sky_horizon, sky_t), (h, w, 3)), np.float32)
        self.glow_sigma = max(1.0, w / 200.0)
        # Per-pixel terms that do not change between frames (float32 keeps _ground fast).
        self.metres_per_px = self.metres_per_px.astype(np.float32)
        self.x_cam = self.x_cam.astype(np.float32)
        self.grass, self.asphalt = _f32(palette.grass), _f32(palette.asphalt)
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
        on_road = np.clip(np.minimum(x_road - road.left_edge_m, road.right_edge_m - x_road) / mpp
                          + 0.5, 0, 1)[..., None]
        color = self.grass + (self.asphalt - self.grass) * on_road
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
    def _camera_x(self, lateral: float, z: np.ndarray, s_ego: float, ego_lateral: float,
                  camera_lateral: bool) -> np.ndarray:
        if camera_lateral:
            return np.full_like(z, lateral)
        return lateral - ego_lateral + self.road.bend(s_ego, z)

    def _car_geometry(self, car: Car, s_ego: float, ego_lateral: float):
        """Projected 3D box of a car: (near-face quad [4,2], hull [K,2], depth) or None."""
        z_near, z_far = car.ahead - car.length / 2, car.ahead + car.length / 2
        if z_far <= NEAR_CLIP_M + 0.5 or z_near > FAR_CLIP_M:
            return None
        zs = np.array([max(z_near, NEAR_CLIP_M), max(z_far, NEAR_CLIP_M)])
        xc = self._camera_x(car.lateral, zs, s_ego, ego_lateral, car.camera_lateral)
        corners = []
        for x0, z in zip(xc, zs):
            for dx, y in ((-1, 0), (1, 0), (1, car.height), (-1, car.height)):
                corners.append((x0 + dx * car.width / 2, y, z))
        c = np.array(corners)
        u, v = self.cam.project(c[:, 0], c[:, 1], c[:, 2])
        pts = np.stack([u, v], 1).astype(np.float32)
        hull = cv2.convexHull(pts)[:, 0, :]
        return pts[:4], hull, float(zs[0])

    def _paint_car(self, img, emissive, car: Car, near_face: np.ndarray, hull: np.ndarray,
                   depth: float) -> None:
        pal = self.pal
        light = 1.0
        if pal.headlights:
            cx = float(near_face[:, 0].mean() - self.cam.center_col) * depth / self.cam.focal_px
            light = pal.ambient + float(headlight_gain(np.array(cx), np.array(depth)))
        body = np.asarray(car.color, np.float32) * light
        fog = np.exp(-depth / pal.fog_m)
        haze = np.asarray(pal.sky_horizon, np.float32) * (1 - fog)
        cv2.fillConvexPoly(img, _fixed(hull), (body * 0.6 * fog + haze).tolist(), cv2.LINE_AA,
                           SUBPIXEL)
        cv2.fillConvexPoly(img, _fixed(near_face), (body * fog + haze).tolist(), cv2.LINE_AA,
                           SUBPIXEL)
        # near_face corners: bottom-left, bottom-right, top-right, top-left
        (x0, y1), (x1, _), (_, y0) = near_face[0], near_face[1], near_face[2]
        w, hgt = x1 - x0, y1 - y0
        window = np.array([[x0 + 0.12 * w, y0 + 0.08 * hgt], [x1 - 0.12 * w, y0 + 0.08 * hgt],
                           [x1 - 0.12 * w, y0 + 0.42 * hgt], [x0 + 0.12 * w, y0 + 0.42 * hgt]])
        cv2.fillConvexPoly(img, _fixed(window), (WINDOW_GLASS * max(light, 0.3) * fog + haze).tolist(),
                           cv2.LINE_AA, SUBPIXEL)
        front = car.faces_camera
        lamp_y = y0 + (0.62 if front else 0.5) * hgt
        lamp_r = max(0.5, 0.07 * w)
        lamp_rgb = np.array([255, 245, 215] if front else [235, 25, 20], np.float32)
        for lx in (x0 + 0.15 * w, x1 - 0.15 * w):
            center = tuple(int(c) for c in _fixed(np.array([lx, lamp_y])))
            radius = round(lamp_r * (1 << SUBPIXEL))
            if pal.headlights:
                cv2.circle(emissive, center, radius * (3 if front else 2), lamp_rgb.tolist(), -1,
                           cv2.LINE_AA, SUBPIXEL)
            cv2.circle(img, center, radius, (lamp_rgb * (1.0 if pal.headlights else 0.75)).tolist(),
                       -1, cv2.LINE_AA, SUBPIXEL)

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

    # -- frame ------------------------------------------------------------------------------
    def paint(self, s_ego: float, ego_lateral: float, cars: list[Car]) -> tuple[np.ndarray, list[Box]]:
        """Render a frame -> (uint8 RGB [H,W,3], boxes of visible cars in pixels)."""
        cam, pal = self.cam, self.pal
        h, w = cam.height_px, cam.width_px
        img = self.sky.copy()
        img[self.ground_row0:] = self._ground(s_ego, ego_lateral)
        if not pal.headlights:
            shade = np.zeros((h, w), np.float32)
            for car in cars:
                self._shadow(shade, car, s_ego, ego_lateral)
            img *= (1 - shade)[..., None]
        emissive = np.zeros((h, w, 3), np.float32) if pal.headlights else None
        instance = np.zeros((h, w), np.int32)  # 0 = background, i+1 = cars[i]
        geometry = {}
        drawables = [(z, "pole", (pts, thick)) for z, pts, thick in self._poles(s_ego, ego_lateral)]
        for i, car in enumerate(cars):
            geo = self._car_geometry(car, s_ego, ego_lateral)
            if geo is not None:
                geometry[i] = geo
                drawables.append((geo[2], "car", i))
        for depth, kind, item in sorted(drawables, key=lambda d: -d[0]):
            if kind == "pole":
                pts, thick = item
                fog = np.exp(-depth / pal.fog_m)
                color = np.asarray(pal.pole, np.float32) * fog + np.asarray(pal.sky_horizon) * (1 - fog)
                p0, p1 = _fixed(pts)
                cv2.line(img, tuple(p0), tuple(p1), color.tolist(), round(thick), cv2.LINE_AA,
                         SUBPIXEL)
                continue
            near_face, hull, _ = geometry[item]
            if emissive is not None:  # a nearer car hides the lights behind it
                cv2.fillConvexPoly(emissive, _fixed(hull), (0, 0, 0), cv2.LINE_8, SUBPIXEL)
            self._paint_car(img, emissive, cars[item], near_face, hull, depth)
            cv2.fillConvexPoly(instance, _fixed(hull), item + 1, cv2.LINE_8, SUBPIXEL)
        if emissive is not None:
            img += cv2.GaussianBlur(emissive, (0, 0), self.glow_sigma) * 0.6
        frame = np.clip(img + 0.5, 0, 255).astype(np.uint8)
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
        for i in sorted(geometry, key=lambda i: -geometry[i][2]):
            cv2.fillConvexPoly(instance, _fixed(geometry[i][1]), i + 1, cv2.LINE_8, SUBPIXEL)
        return self._boxes(cars, geometry, instance)

    def _boxes(self, cars: list[Car], geometry: dict, instance: np.ndarray) -> list[Box]:
        h, w = instance.shape
        visible = np.bincount(instance.ravel(), minlength=len(cars) + 1)
        boxes = []
        for i, (_, hull, _) in geometry.items():
            if visible[i + 1] == 0:
                continue
            x1, y1 = np.clip(hull.min(0), 0, [w, h])
            x2, y2 = np.clip(hull.max(0), 0, [w, h])
            full = np.zeros((int(np.ceil(hull[:, 1].max() - hull[:, 1].min())) + 2,
                             int(np.ceil(hull[:, 0].max() - hull[:, 0].min())) + 2), np.uint8)
            origin = np.floor(hull.min(0))
            cv2.fillConvexPoly(full, _fixed(hull - origin), 1, cv2.LINE_8, SUBPIXEL)
            total = max(int(full.sum()), int(visible[i + 1]))
            boxes.append(Box(round(float(x1), 2), round(float(y1), 2), round(float(x2), 2),
                             round(float(y2), 2), "car", cars[i].track_id,
                             float(visible[i + 1]) / total))
        return boxes
