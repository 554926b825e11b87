"""Does an augmented variant keep its source's scene? Per variant row of an augment catalog: the
correlation of the source's and the variant's Sobel edge maps at given times, the variant/source
luma ratio and warp-error ratio (all on 128x256 grey or RGB frames of the 1:2 centre crop).

The edge correlation is the Pearson correlation of the two Sobel magnitude maps: 1 for the same
layout of edges (street, cars, buildings), about 0 for an unrelated scene.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from drivesim.data.catalog import media_path, read_clips
from drivesim.data.clips import center_crop_to_aspect, resample_indices
from drivesim.data.procedural import frames_to_tensor
from drivesim.data.sources import SourceClip, open_sources
from drivesim.data.video_folder import probe_video
from drivesim.metrics import mean_luma, warp_error

SIZE = (128, 256)  # (H, W) every frame is compared at
TIMES = (0.0, 1.0, 1.9)  # seconds into the variant (the check points)


def to_base(frame: np.ndarray, size: tuple[int, int] = SIZE) -> np.ndarray:
    """uint8 RGB [H,W,3] -> its 1:2 centre crop resized to `size` (area), uint8 RGB."""
    y0, y1, x0, x1 = center_crop_to_aspect(*frame.shape[:2], aspect_w_over_h=size[1] / size[0])
    return cv2.resize(frame[y0:y1, x0:x1], (size[1], size[0]), interpolation=cv2.INTER_AREA)


def edge_map(frame: np.ndarray) -> np.ndarray:
    """uint8 RGB [H,W,3] at SIZE -> Sobel gradient magnitude of its grey image, float32 [H,W]."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)


def edge_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the Sobel maps of two uint8 RGB frames of the same size."""
    ea, eb = edge_map(a).ravel(), edge_map(b).ravel()
    if ea.std() == 0 or eb.std() == 0:
        return 0.0
    return float(np.corrcoef(ea, eb)[0, 1])


def compare_to_source(
    variant: list[np.ndarray], source: list[np.ndarray], fps: float, times: tuple[float, ...] = TIMES
) -> dict:
    """Aligned frame lists (uint8 RGB at SIZE, frame f of each at f / fps s) -> the structure figures."""
    at = {f"{t:g}": min(round(t * fps), len(variant) - 1) for t in times}
    variant_t, source_t = frames_to_tensor(np.stack(variant)), frames_to_tensor(np.stack(source))
    return {
        "edge_correlation": {t: edge_correlation(variant[f], source[f]) for t, f in at.items()},
        "luma_ratio": mean_luma(variant_t) / max(mean_luma(source_t), 1e-6),
        "variant_luma": mean_luma(variant_t),
        "source_luma": mean_luma(source_t),
        "warp_error_ratio": warp_error(variant_t) / max(warp_error(source_t), 1e-6),
    }


def _source_of(row: dict, source_fps: float | None) -> SourceClip:
    path = row["source_path"]
    if "#" in path:  # a catalog clip: `catalog_root#clip_id`
        path = path.split("#")[0]
    for source in open_sources(path, source_fps):
        if source.clip_id == row["source_clip_id"]:
            return source
    raise FileNotFoundError(f"{row['clip_id']}: its source {row['source_clip_id']} is not in {path} any more")


def augment_report(
    catalog: str | Path, times: tuple[float, ...] = TIMES, source_fps: float | None = None
) -> list[dict]:
    """Every variant row of an augment catalog -> {clip_id, changes, keep_structure, figures}."""
    catalog = Path(catalog)
    rows = [r for r in read_clips(catalog).to_pylist() if r.get("source_path")]
    if not rows:
        raise ValueError(f"{catalog}: no augmented clips (rows with a source_path) to compare")
    out = []
    for row in rows:
        video = probe_video(catalog / media_path(row["clip_id"], "mp4"))
        n = video.num_frames
        variant = [to_base(f) for f in video.read_frames(list(range(n)))]
        source = _source_of(row, source_fps)
        indices = resample_indices(source.fps, row["fps"], row["source_start_s"] or 0.0, n)
        frames = source.read_frames([min(j, source.num_frames - 1) for j in indices])
        spec = json.loads(row["scenario_json"])
        out.append(
            {
                "clip_id": row["clip_id"],
                "source": row["source_clip_id"],
                "changes": row["augment_changes"],
                "keep_structure": spec.get("keep_structure"),
                **compare_to_source(variant, [to_base(f) for f in frames], row["fps"], times),
            }
        )
    return out


def augment_montage(
    catalog: str | Path, out: str | Path, times: tuple[float, ...] = TIMES, size: tuple[int, int] = (256, 512)
) -> Path:
    """A PNG: the first variant's source (top row), then every variant of that source, frames at
    `times`, each variant with its label boxes (the source's, carried over) -> out."""
    from drivesim.data.labels import read_scalabel
    from drivesim.utils import atomic_write

    catalog = Path(catalog)
    rows = [r for r in read_clips(catalog).to_pylist() if r.get("source_path")]
    if not rows:
        raise ValueError(f"{catalog}: no augmented clips (rows with a source_path) to draw")
    rows = [r for r in rows if r["source_clip_id"] == rows[0]["source_clip_id"]]
    fps, start = rows[0]["fps"], rows[0]["source_start_s"] or 0.0
    source = _source_of(rows[0], None)
    picks = [round(t * fps) for t in times]
    indices = [
        min(j, source.num_frames - 1) for j in resample_indices(source.fps, fps, start, max(picks) + 1)
    ]
    grid = [[to_base(f, size) for f in source.read_frames([indices[f] for f in picks])]]  # one read
    for row in rows:
        video = probe_video(catalog / media_path(row["clip_id"], "mp4"))
        labels = {
            lab.frame_index: lab for lab in read_scalabel(catalog / media_path(row["clip_id"], "labels"))
        }
        tiles = []
        for f in picks:
            frame = video.read_frames([min(f, video.num_frames - 1)])[0]
            sy, sx = size[0] / frame.shape[0], size[1] / frame.shape[1]
            tile = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            for b in (labels[f].boxes or []) if f in labels else []:
                p1, p2 = (round(b.x1 * sx), round(b.y1 * sy)), (round(b.x2 * sx), round(b.y2 * sy))
                cv2.rectangle(tile, p1, p2, (0, 255, 0), 2)
            tiles.append(tile)
        grid.append(tiles)
    image = np.concatenate([np.concatenate(r, 1) for r in grid], 0)
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"{out}: could not encode the montage")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: Path(tmp).write_bytes(png.tobytes()))
    return Path(out)
