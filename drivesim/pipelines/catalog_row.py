"""One catalog row from a finished rollout: the clip's ids and conditions, the settings and
model versions it was made with, its video's size and its diagnostics (schema:
drivesim.data.catalog.COLUMNS; the media fields are filled when the clip is committed)."""

from __future__ import annotations

import json

from drivesim.data.labels import FrameLabel
from drivesim.export.catalog import box_rows
from drivesim.pipelines.rollout_meta import RolloutMeta
from drivesim.scenario_expand import ClipSpec, canonical_json

# The augment columns of a clip made from a scenario: no source, boxes = the whole conditioning layout.
SCENARIO_CLIP = {
    "source_clip_id": None,
    "source_path": None,
    "source_start_s": None,
    "augment_changes": None,
    "context_frames": None,
    "context_strength": None,
    "boxes_known": True,
    "labels_complete": True,
}


def cascade_columns(
    meta: RolloutMeta, labels: list[FrameLabel], seconds: float, model_hashes: dict[str, str]
) -> dict:
    """run_rollout's metadata + the written labels -> the columns every generated clip has: model
    versions, sampler settings, video size, diagnostics and boxes."""
    cfg, up, diag = meta.rollout, meta.upsampler, meta.diagnostics
    return {
        "model_versions": json.dumps(meta.model_versions, sort_keys=True),
        "model_hashes": json.dumps(model_hashes, sort_keys=True),
        "sampler": cfg.sampler,
        "steps": cfg.steps,
        "interpolation_steps": cfg.interpolation_steps,
        "guidance_scene": cfg.guidance_scene,
        "guidance_boxes": cfg.guidance_boxes,
        "guidance_context": cfg.guidance_context,
        "prediction_strength": cfg.prediction_strength,
        "interpolation_strength": cfg.interpolation_strength,
        "segments": cfg.segments,
        "upsampler": up["method"],
        "upsampler_steps": up.get("steps"),
        "upsampler_noise_level": up.get("noise_level"),
        "height": meta.resolution[0],
        "width": meta.resolution[1],
        "base_height": meta.base_resolution[0],
        "base_width": meta.base_resolution[1],
        "fps": meta.fps,
        "frames": meta.frames,
        "generation_seconds": seconds,
        "seam_ratio": diag["seam_ratio"],
        "flicker": diag["within"],
        "drift_per_min": diag["brightness_slope_per_min"],
        "boxes": box_rows(labels),
        "box_counts": category_counts(labels),
    }


def category_counts(labels: list[FrameLabel]) -> list[dict]:
    """Labels -> [{category, boxes, tracks}] per category, by name (the box_counts column)."""
    boxes: dict[str, int] = {}
    tracks: dict[str, set[int]] = {}
    for label in labels:
        for box in label.boxes or []:
            boxes[box.category] = boxes.get(box.category, 0) + 1
            tracks.setdefault(box.category, set()).add(box.track_id)
    return [{"category": c, "boxes": boxes[c], "tracks": len(tracks[c])} for c in sorted(boxes)]


def catalog_row(
    clip: ClipSpec, meta: RolloutMeta, labels: list[FrameLabel], seconds: float, model_hashes: dict[str, str]
) -> dict:
    """ClipSpec + run_rollout's metadata + the written labels -> a row dict (without media fields)."""
    s = clip.scenario
    return {
        "clip_id": clip.clip_id,
        "scenario_id": s.id,
        "scenario_hash": clip.scenario_hash,
        "seed": clip.seed,
        "variant": clip.variant,
        "scenario_file": clip.source,
        "scenario_json": canonical_json(s, exclude=()),
        "time_of_day": s.time_of_day,
        "crowdedness": s.crowdedness,
        "time_of_day_schedule": [c.model_dump() for c in s.schedule.time_of_day],
        "crowdedness_schedule": [c.model_dump() for c in s.schedule.crowdedness],
        "ego_speed_kmh": s.ego.speed_kmh,
        "num_agents": len(s.agents),
        **cascade_columns(meta, labels, seconds, model_hashes),
        **SCENARIO_CLIP,
    }
