"""Write a Parquet clip catalog (layout and schema: drivesim.data.catalog), one clip at a time.

A clip is committed media first (each file renamed into place), its one-row Parquet fragment
last, so a reader never sees a row without its media; a process killed mid-clip leaves at most
media without a row, which the next run of the same batch regenerates and overwrites. One
writer at a time: `lock()` holds an flock on CATALOG/.lock (released by the OS if killed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import av
import cv2
import pyarrow as pa
import pyarrow.parquet as pq

from drivesim.data.catalog import (
    CATALOG_SCHEMA_VERSION,
    CLIPS,
    FAILED,
    FRAGMENT_SCHEMA,
    INFO,
    MEDIA,
    MEDIA_SUFFIXES,
    CatalogError,
    fragment_files,
    info,
    media_path,
    read_clips,
    read_info,
    sha256_file,
)
from drivesim.data.labels import VISIBILITY_DECIMALS, FrameLabel
from drivesim.utils import atomic_write, write_json_atomic

THUMBNAIL_WIDTH = 256
FILLED_ON_COMMIT = {f"{kind}_{field}" for kind in MEDIA_SUFFIXES for field in ("path", "sha256")} | {
    "mp4_bytes",
    "created_at",
    "drivesim_version",
}


def drivesim_version() -> str:
    try:
        return metadata.version("drivesim")
    except metadata.PackageNotFoundError:
        return "unknown"


def box_rows(labels: list[FrameLabel]) -> list[dict]:
    """Per-frame labels -> rows of the `boxes` column (pixels of the labelled video)."""
    return [
        {
            "frame": label.frame_index,
            "track_id": b.track_id,
            "category": b.category,
            "x1": b.x1,
            "y1": b.y1,
            "x2": b.x2,
            "y2": b.y2,
            "visibility": round(b.visibility, VISIBILITY_DECIMALS),  # as its labels file says
            "occluded": b.occluded,
            "truncated": b.truncated,
        }
        for label in labels
        for b in label.boxes or []
    ]


def write_thumbnail(video: str | Path, png: str | Path, width: int = THUMBNAIL_WIDTH) -> None:
    """The first frame of an mp4 as a PNG `width` pixels wide, written atomically."""
    with av.open(str(video)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", small)
    if not ok:
        raise RuntimeError(f"{video}: could not encode its thumbnail")
    atomic_write(png, lambda tmp: Path(tmp).write_bytes(data.tobytes()))


class CatalogWriter:
    """Adds clips to the catalog at `root` (created with its meta/info.json if new)."""

    def __init__(self, root: str | Path, fps: float | None = None):
        self.root = Path(root)
        try:
            for sub in (CLIPS, MEDIA, FAILED, "meta"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            if not (self.root / INFO).exists():
                write_json_atomic(info(fps), self.root / INFO, indent=2)
        except OSError as e:
            raise CatalogError(
                f"{root}: cannot write the catalog there ({e.strerror}); choose a writable --out folder"
            ) from None
        old = read_info(self.root)
        if old["schema_version"] < CATALOG_SCHEMA_VERSION:  # the new columns are additive: old rows read null
            write_json_atomic(info(old.get("fps")), self.root / INFO, indent=2)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the catalog's writer lock; a CatalogError if another process holds it."""
        with open(self.root / ".lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CatalogError(
                    f"{self.root}: another process is writing this catalog; wait for it "
                    "or write to another --out"
                ) from None
            finish_compaction(self.root)  # before removing temporaries: they may be its new files
            self.remove_temporaries()
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def remove_temporaries(self) -> list[Path]:
        """Delete the hidden temp files a killed writer left in media/ and clips/ (hold the lock)."""
        stale = [p for sub in (MEDIA, CLIPS) for p in (self.root / sub).rglob(".*") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def commit(self, row: dict, mp4: Path, labels: Path) -> Path:
        """Move a finished clip's mp4 and labels into media/, write its thumbnail, then its row
        (the media fields are filled here). Returns the fragment's path."""
        clip_id = row["clip_id"]
        expected = (set(FRAGMENT_SCHEMA.names) - FILLED_ON_COMMIT) | {"time_of_day"}
        if set(row) != expected:
            raise ValueError(
                f"catalog row of {clip_id}: missing {sorted(expected - set(row))}, unknown "
                f"{sorted(set(row) - expected)} (schema: drivesim.data.catalog.COLUMNS)"
            )
        paths = {kind: self.root / media_path(clip_id, kind) for kind in ("mp4", "labels", "thumbnail")}
        os.replace(mp4, paths["mp4"])
        os.replace(labels, paths["labels"])
        write_thumbnail(paths["mp4"], paths["thumbnail"])
        for kind, path in paths.items():
            row[f"{kind}_path"] = media_path(clip_id, kind)
            row[f"{kind}_sha256"] = sha256_file(path)
        row["mp4_bytes"] = paths["mp4"].stat().st_size
        now = dt.datetime.now(dt.UTC)
        row |= {"created_at": now, "drivesim_version": drivesim_version()}
        partition = f"time_of_day={row.pop('time_of_day')}/date={now.date().isoformat()}"
        folder = self.root / CLIPS / partition
        folder.mkdir(parents=True, exist_ok=True)
        fragment = folder / f"{clip_id}.parquet"
        table = pa.Table.from_pylist([row], schema=FRAGMENT_SCHEMA)
        atomic_write(fragment, lambda tmp: pq.write_table(table, tmp))
        (self.root / FAILED / f"{clip_id}.json").unlink(missing_ok=True)
        return fragment

    def record_failure(self, clip_id: str, details: dict, error: BaseException) -> dict:
        """failed/<clip_id>.json: the error and how often it happened; the clip is retried next run."""
        path = self.root / FAILED / f"{clip_id}.json"
        attempts = json.loads(path.read_text()).get("attempts", 0) if path.exists() else 0
        record = {
            "clip_id": clip_id,
            **details,
            "error": f"{type(error).__name__}: {error}",
            "attempts": attempts + 1,
            "last_attempt": dt.datetime.now(dt.UTC).isoformat(),
        }
        write_json_atomic(record, path, indent=2)
        return record


def failures(root: str | Path) -> list[dict]:
    """The records of clips whose last attempt failed."""
    return [json.loads(p.read_text()) for p in sorted((Path(root) / FAILED).glob("*.json"))]


JOURNAL = "meta/compaction.json"


def compact(root: str | Path) -> dict:
    """Merge every partition's fragments into one part file, one row per clip_id (the newest).
    Crash-safe: new files are hidden until a journal lists them, then renamed in, old ones deleted."""
    writer = CatalogWriter(root)
    with writer.lock():
        old = fragment_files(writer.root)
        table = read_clips(writer.root)
        ids, created = table.column("clip_id").to_pylist(), table.column("created_at").to_pylist()
        newest = {}
        for i in sorted(range(len(ids)), key=lambda i: created[i], reverse=True):
            newest.setdefault(ids[i], i)
        table = table.take(sorted(newest.values()))
        renames = []
        keys = list(zip(table.column("time_of_day").to_pylist(), table.column("date").to_pylist()))
        for time_of_day, date in sorted(set(keys)):
            rows = table.take([i for i, k in enumerate(keys) if k == (time_of_day, date)])
            folder = writer.root / CLIPS / f"time_of_day={time_of_day}" / f"date={date}"
            name = f"part-{uuid.uuid4().hex[:12]}.parquet"
            part = rows.drop_columns(["time_of_day", "date"]).cast(FRAGMENT_SCHEMA)
            pq.write_table(part, folder / f".{name}.tmp")
            renames.append([str(folder / f".{name}.tmp"), str(folder / name)])
        write_json_atomic({"renames": renames, "delete": [str(p) for p in old]}, writer.root / JOURNAL)
        finish_compaction(writer.root)
    return {
        "fragments_before": len(old),
        "files_after": len(renames),
        "rows": table.num_rows,
        "duplicates_removed": len(ids) - table.num_rows,
    }


def finish_compaction(root: str | Path) -> None:
    """Roll an interrupted compaction forward (its journal lists complete hidden files)."""
    journal = Path(root) / JOURNAL
    if not journal.exists():
        return
    plan = json.loads(journal.read_text())
    for tmp, final in plan["renames"]:
        if Path(tmp).exists():
            os.replace(tmp, final)
    for path in plan["delete"]:
        Path(path).unlink(missing_ok=True)
    journal.unlink()
