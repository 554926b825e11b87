"""A PNG grid of frames with their conditioning boxes drawn over them (for eyes, not metrics)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from drivesim.utils import atomic_write, to_uint8


def draw_boxes(frame: np.ndarray, boxes: np.ndarray, colour=(255, 200, 0), thickness: int = 1) -> np.ndarray:
    """uint8 [H,W,3] + normalised xyxy boxes [N,4] -> copy with box outlines `thickness` px wide."""
    out = frame.copy()
    h, w = out.shape[:2]
    for x1, y1, x2, y2 in boxes:
        cv2.rectangle(out, (int(x1 * w), int(y1 * h)), (int(x2 * w) - 1, int(y2 * h) - 1), colour, thickness)
    return out


def _tile(image: np.ndarray, boxes: np.ndarray, title: str, scale: float) -> np.ndarray:
    """uint8 [H,W,3] + normalised boxes [N,4] -> the frame with boxes, scaled, titled."""
    interpolation = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    tile = cv2.resize(draw_boxes(image, boxes), None, fx=scale, fy=scale, interpolation=interpolation)
    cv2.putText(tile, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def save_montage(
    path: str | Path, panels: list[tuple[str, torch.Tensor, dict, int]], columns: int, scale: int = 2
) -> Path:
    """panels: (title, frame [3,H,W] in [-1,1], condition dict, frame index) -> PNG grid at `path`."""
    tiles = []
    for title, frame, cond, index in panels:
        mask = cond["box_mask"][index].numpy().astype(bool)
        tiles.append(_tile(to_uint8(frame[None])[0], cond["boxes"][index].numpy()[mask], title, scale))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[r : r + columns], axis=1) for r in range(0, len(tiles), columns)]
    return _write_png(path, np.concatenate(rows, axis=0))


def _write_png(path: str | Path, image: np.ndarray) -> Path:
    """uint8 RGB [H,W,3] -> PNG at path, atomically."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(png.tobytes()))
    return path


def read_frames(path: str | Path, indices: list[int]) -> list[np.ndarray]:
    """uint8 RGB [H,W,3] frames of an mp4 at the given indices (clamped to its length), decoded with
    PyAV like every other video the project reads."""
    from drivesim.data.video_folder import probe_video

    video = probe_video(Path(path))
    return video.read_frames([min(i, video.num_frames - 1) for i in indices])


def clips_montage(
    folder: str | Path, out: str | Path, frames_per_clip: int = 3, tile_height: int = 256
) -> Path:
    """One row per `<id>.mp4` in folder (first, middle, last frame) with the boxes of `<id>.json`
    drawn over them, every frame scaled to `tile_height` pixels -> PNG at `out`."""
    from drivesim.data.labels import read_scalabel

    videos = sorted(Path(folder).glob("*.mp4"))
    if not videos:
        raise FileNotFoundError(f"no .mp4 clips in {folder}")
    rows = []
    for video in videos:
        labels = read_scalabel(video.with_suffix(".json"))
        last = len(labels) - 1
        indices = sorted({round(k * last / max(frames_per_clip - 1, 1)) for k in range(frames_per_clip)})
        tiles = []
        for index, image in zip(indices, read_frames(video, indices)):
            h, w = image.shape[:2]
            boxes = np.array([[b.x1 / w, b.y1 / h, b.x2 / w, b.y2 / h] for b in labels[index].boxes or []])
            tiles.append(_tile(image, boxes.reshape(-1, 4), f"{video.stem} #{index}", tile_height / h))
        tiles += [np.zeros_like(tiles[0])] * (frames_per_clip - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
    return _write_png(out, np.concatenate(rows, axis=0))


def upsample_pair(
    base: str | Path, high: str | Path, out: str | Path, frame: int = 0, tile: tuple[int, int] = (256, 512)
) -> Path:
    """Frame `frame` of the base and of the upsampled video side by side (nearest-neighbour scaling,
    each tile `tile` pixels), whole frames above and their centre quarter below -> PNG at `out`."""
    (low,), (up,) = read_frames(base, [frame]), read_frames(high, [frame])
    rows = []
    for zoom, where in ((1, ""), (4, ", centre")):
        tiles = []
        for image, name in ((low, "base"), (up, "upsampled")):
            title = f"{name} {image.shape[0]}x{image.shape[1]}{where}"
            tiles.append(_tile(_centre(image, zoom, tile), np.zeros((0, 4)), title, 1))
        rows.append(np.concatenate(tiles, axis=1))
    return _write_png(out, np.concatenate(rows, axis=0))


def _centre(image: np.ndarray, zoom: int, size: tuple[int, int]) -> np.ndarray:
    """The centre 1/zoom (per side) of an image, resized to size (H,W)."""
    h, w = image.shape[:2]
    ch, cw = h // zoom, w // zoom
    y, x = (h - ch) // 2, (w - cw) // 2
    crop = image[y : y + ch, x : x + cw]
    interpolation = cv2.INTER_NEAREST if size[0] >= ch else cv2.INTER_AREA
    return cv2.resize(crop, (size[1], size[0]), interpolation=interpolation)
