"""The Parquet clip catalog: its layout, row schema and readers (writing: drivesim.export.catalog).

    CATALOG/
      meta/info.json                                   schema_version, fps, columns, partitioning
      clips/time_of_day=<day|night>/date=<YYYY-MM-DD>/<clip_id>.parquet   one fragment per clip
      media/<clip_id>.mp4 | .json | .png               video, Scalabel labels, thumbnail
      failed/<clip_id>.json                            the last error of a clip that failed

`clips/` is a hive-partitioned pyarrow dataset (time_of_day = the clip's time of day at its
start, date = the UTC day it was made); `compact` merges fragments into part-*.parquet files.
Files whose names start with '.' or '_' are temporaries that readers skip.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

CATALOG_SCHEMA_VERSION = 4
# Versions this drivesim reads: 2 added the augment columns (source_clip_id ... labels_complete) at the
# end; rows of version 1 read them as null (boxes_known null = true: scenario boxes are always known).
# 3 added box_counts (boxes and tracks per category); older rows read it as null.
# 4 added Scalabel's `occluded` and `truncated` flags to each box (before, a box was called
# occluded when any of it was unseen, hidden or outside the frame); older rows read them as null.
READABLE_SCHEMA_VERSIONS = (1, 2, 3, 4)
CLIPS, MEDIA, FAILED, INFO = "clips", "media", "failed", "meta/info.json"
MEDIA_SUFFIXES = {"mp4": ".mp4", "labels": ".json", "thumbnail": ".png"}

_change = pa.struct([("at", pa.float64()), ("value", pa.string())])
_category_count = pa.struct([("category", pa.string()), ("boxes", pa.int64()), ("tracks", pa.int64())])
_box = pa.struct(
    [
        ("frame", pa.int32()),
        ("track_id", pa.int32()),
        ("category", pa.string()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("x2", pa.float32()),
        ("y2", pa.float32()),
        ("visibility", pa.float32()),
        ("occluded", pa.bool_()),
        ("truncated", pa.bool_()),
    ]
)

PARTITION_COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("time_of_day", pa.string(), "day or night at the clip's start (partition)"),
    ("date", pa.string(), "UTC day the clip was made, YYYY-MM-DD (partition)"),
]
# (name, type, doc) of every column stored in a fragment, in order.
COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("clip_id", pa.string(), "`scenario_hash-seed`, unique in the catalog"),
    ("scenario_id", pa.string(), "the scenario's id"),
    ("scenario_hash", pa.string(), "short sha256 of the expanded scenario without seed and description"),
    ("seed", pa.int64(), "the clip's seed"),
    ("variant", pa.int32(), "index of the seed within its sweep point"),
    ("scenario_file", pa.string(), "the scenario YAML it came from"),
    ("scenario_json", pa.string(), "the expanded scenario (canonical JSON, seed included)"),
    ("crowdedness", pa.string(), "empty, light, moderate or crowded at the clip's start"),
    ("time_of_day_schedule", pa.list_(_change), "changes along the clip: from `at` s on, `value`"),
    ("crowdedness_schedule", pa.list_(_change), "changes along the clip: from `at` s on, `value`"),
    ("ego_speed_kmh", pa.float64(), "ego speed"),
    ("num_agents", pa.int32(), "scripted agents in the scenario"),
    ("model_versions", pa.string(), "JSON object: model part -> version"),
    ("model_hashes", pa.string(), "JSON object: model part -> sha256 of its weights file (16 hex digits)"),
    ("sampler", pa.string(), "key-frame sampler: dpmpp, ddim or euler"),
    ("steps", pa.int32(), "key-frame denoising steps"),
    ("interpolation_steps", pa.int32(), "interpolation denoising steps"),
    ("guidance_scene", pa.float64(), "CFG scale on time of day + crowdedness"),
    ("guidance_boxes", pa.float64(), "CFG scale on boxes"),
    ("guidance_context", pa.float64(), "CFG scale on context frames"),
    ("prediction_strength", pa.float64(), "SDEdit start of new key frames (1 = pure noise)"),
    ("interpolation_strength", pa.float64(), "SDEdit start of interpolated frames"),
    ("segments", pa.int32(), "prediction segments"),
    ("upsampler", pa.string(), "none, bicubic or model"),
    ("upsampler_steps", pa.int32(), "upsampler denoising steps (model only)"),
    ("upsampler_noise_level", pa.int32(), "noise augmentation level (model only)"),
    ("height", pa.int32(), "video height, pixels"),
    ("width", pa.int32(), "video width, pixels"),
    ("base_height", pa.int32(), "key-frame model's height, pixels"),
    ("base_width", pa.int32(), "key-frame model's width, pixels"),
    ("fps", pa.float64(), "frames per second of the video"),
    ("frames", pa.int32(), "frames in the video"),
    ("mp4_path", pa.string(), "relative to the catalog root"),
    ("mp4_sha256", pa.string(), "sha256 of the mp4 file"),
    ("mp4_bytes", pa.int64(), "size of the mp4 file"),
    ("labels_path", pa.string(), "Scalabel/BDD100K label JSON, relative"),
    ("labels_sha256", pa.string(), "sha256 of the label file"),
    ("thumbnail_path", pa.string(), "PNG of the first frame, relative"),
    ("thumbnail_sha256", pa.string(), "sha256 of the thumbnail"),
    ("generation_seconds", pa.float64(), "wall time to generate the clip"),
    ("seam_ratio", pa.float64(), "mean frame step across segment borders / inside segments"),
    ("flicker", pa.float64(), "mean absolute frame step inside segments (0-255)"),
    ("drift_per_min", pa.float64(), "brightness slope, 0-255 per minute"),
    ("created_at", pa.timestamp("us", tz="UTC"), "when the row was written"),
    ("drivesim_version", pa.string(), "package version that wrote the row"),
    ("boxes", pa.list_(_box), "per-frame boxes in pixels of the video (the conditioning layout)"),
    # schema_version 2: augmented variants of real clips (`drivesim augment`); null for scenario clips
    ("source_clip_id", pa.string(), "augment: id of the clip the variant was made from (null: scenario)"),
    ("source_path", pa.string(), "augment: the source video, frame folder or `catalog#clip_id`"),
    ("source_start_s", pa.float64(), "augment: where in the source the variant starts, seconds"),
    ("augment_changes", pa.string(), "augment: JSON object condition -> {from, to} of what was changed"),
    ("context_frames", pa.int32(), "augment: source frames encoded as the prediction context"),
    (
        "context_strength",
        pa.float64(),
        "augment: SDEdit strength that moved the context to the new "
        "conditions (0 = the source frames as they are)",
    ),
    (
        "boxes_known",
        pa.bool_(),
        "false when the source had no box annotations (`boxes` empty = unknown, "
        "not no cars); null in version-1 rows = true",
    ),
    (
        "labels_complete",
        pa.bool_(),
        "false when the boxes are unknown or the conditions may add cars that "
        "have no box (crowdedness raised above the source's)",
    ),
    # schema_version 3
    (
        "box_counts",
        pa.list_(_category_count),
        "per BDD100K category: its boxes over all frames and its distinct tracks (null before schema 3)",
    ),
]

FRAGMENT_SCHEMA = pa.schema(
    [pa.field(n, t, metadata={"doc": d}) for n, t, d in COLUMNS],
    metadata={"drivesim_catalog_schema_version": str(CATALOG_SCHEMA_VERSION)},
)
PARTITIONING = ds.partitioning(pa.schema([(n, t) for n, t, _ in PARTITION_COLUMNS]), flavor="hive")


LAYOUT = {
    "clips": f"{CLIPS}/time_of_day={{time_of_day}}/date={{date}}/{{clip_id}}.parquet",
    **{kind: f"{MEDIA}/{{clip_id}}{suffix}" for kind, suffix in MEDIA_SUFFIXES.items()},
    "failed": f"{FAILED}/{{clip_id}}.json",
}


class CatalogError(ValueError):
    """A catalog that cannot be read or written; the message names the path and the fix."""


def media_path(clip_id: str, kind: str) -> str:
    """Path of a clip's media file ('mp4' | 'labels' | 'thumbnail'), relative to the catalog root."""
    return f"{MEDIA}/{clip_id}{MEDIA_SUFFIXES[kind]}"


def info(fps: float | None = None) -> dict:
    """meta/info.json of this schema version (LeRobot-like: version, fps, features)."""
    columns = PARTITION_COLUMNS + COLUMNS
    return {
        "schema_version": CATALOG_SCHEMA_VERSION,
        "fps": fps,
        "layout": LAYOUT,
        "partitioning": [n for n, _, _ in PARTITION_COLUMNS],
        "clips_path": CLIPS,
        "features": {n: {"type": str(t), "doc": d} for n, t, d in columns},
    }


def read_info(root: str | Path) -> dict:
    """The catalog's meta/info.json; a CatalogError if it is missing or of another schema version."""
    path = Path(root) / INFO
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"{root}: not a drivesim catalog (no {INFO})") from None
    except json.JSONDecodeError as e:
        raise CatalogError(f"{path}: not valid JSON ({e})") from None
    if meta.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
        raise CatalogError(
            f"{path}: catalog schema_version {meta.get('schema_version')!r}; this drivesim "
            f"reads versions {', '.join(map(str, READABLE_SCHEMA_VERSIONS))} (a newer catalog "
            "needs a newer drivesim)"
        )
    return meta


def open_clips(root: str | Path) -> ds.Dataset:
    """The catalog's clip rows as a pyarrow dataset (partition columns included; columns an older
    schema version lacks read as null)."""
    read_info(root)
    schema = pa.unify_schemas([FRAGMENT_SCHEMA, PARTITIONING.schema])
    return ds.dataset(Path(root) / CLIPS, schema=schema, format="parquet", partitioning=PARTITIONING)


def read_clips(
    root: str | Path, filter: ds.Expression | None = None, columns: list[str] | None = None
) -> pa.Table:
    """Rows of the catalog (optionally filtered, e.g. ds.field('time_of_day') == 'night')."""
    return open_clips(root).to_table(filter=filter, columns=columns)


def clip_ids(root: str | Path) -> list[str]:
    """clip_id of every row (duplicates included, so a check can find them)."""
    if not (Path(root) / INFO).exists():
        return []
    return read_clips(root, columns=["clip_id"]).column("clip_id").to_pylist()


def fragment_files(root: str | Path) -> list[Path]:
    """The Parquet files of clips/ that readers see (temporaries excluded)."""
    return sorted(p for p in (Path(root) / CLIPS).rglob("*.parquet") if not p.name.startswith((".", "_")))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
