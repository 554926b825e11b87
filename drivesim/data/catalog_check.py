"""Check a clip catalog: every row's media exists and matches its sha256, no media without a
row (orphans), no duplicate clip ids; leftovers of interrupted writers and failed clips are
reported as warnings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from drivesim.data.catalog import CLIPS, FAILED, MEDIA, MEDIA_SUFFIXES, CatalogError, read_clips, sha256_file


@dataclass
class CatalogReport:
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_catalog(root: str | Path, rehash: bool = True) -> CatalogReport:
    """Rows vs media files of the catalog at `root` (rehash: recompute every sha256)."""
    root = Path(root)
    report = CatalogReport()
    try:
        table = read_clips(
            root, columns=["clip_id"] + [f"{k}_{f}" for k in MEDIA_SUFFIXES for f in ("path", "sha256")]
        )
    except CatalogError as e:
        report.problems.append(str(e))
        return report
    rows = table.to_pylist()
    report.rows = len(rows)
    for clip_id, n in Counter(r["clip_id"] for r in rows).items():
        if n > 1:
            report.problems.append(f"clip {clip_id}: {n} rows (run `drivesim catalog compact`)")
    referenced = set()
    for row in rows:
        for kind in MEDIA_SUFFIXES:
            rel, digest = row[f"{kind}_path"], row[f"{kind}_sha256"]
            referenced.add(rel)
            path = root / rel
            if not path.is_file():
                report.problems.append(f"clip {row['clip_id']}: {kind} {rel} is missing")
            elif rehash and sha256_file(path) != digest:
                report.problems.append(
                    f"clip {row['clip_id']}: {kind} {rel} does not match its sha256 (changed or truncated)"
                )
    for path in sorted((root / MEDIA).iterdir()) if (root / MEDIA).is_dir() else []:
        rel = f"{MEDIA}/{path.name}"
        if path.name.startswith("."):
            report.warnings.append(
                f"{rel}: temporary file of an interrupted writer (the next run removes it)"
            )
        elif rel not in referenced:
            report.problems.append(
                f"{rel}: orphan media file, no row refers to it (re-run the batch that made it, or delete it)"
            )
    for path in sorted((root / CLIPS).rglob(".*")):
        if path.is_file():
            report.warnings.append(f"{path.relative_to(root)}: temporary file of an interrupted writer")
    for path in sorted((root / FAILED).glob("*.json")):
        report.warnings.append(f"{FAILED}/{path.name}: clip {path.stem} failed; the next run retries it")
    return report
