"""`drivesim catalog ls|show|validate|compact`, and `drivesim generate --catalog` (batch generation
into a Parquet catalog with a progress bar and a summary table)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

LS_COLUMNS = (
    "clip_id",
    "scenario_id",
    "time_of_day",
    "crowdedness",
    "seed",
    "frames",
    "fps",
    "height",
    "width",
    "generation_seconds",
)


def format_table(rows: list[dict], columns: tuple[str, ...] | list[str]) -> str:
    """Rows -> a plain text table with aligned columns."""
    cell = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)
    cells = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def parse_filters(filters: list[str]):
    """['time_of_day=night', 'crowdedness>=moderate'] -> a pyarrow dataset expression (all of them;
    values typed by the schema, crowdedness ordered; drivesim.data.catalog_query)."""
    from drivesim.data.catalog_query import catalog_filter

    return catalog_filter(filters or None)


def cmd_ls(args) -> int:
    from drivesim.data.catalog import read_clips

    rows = read_clips(args.catalog, filter=parse_filters(args.where), columns=list(LS_COLUMNS)).to_pylist()
    rows.sort(key=lambda r: (r["scenario_id"], r["time_of_day"], r["crowdedness"], r["seed"]))
    print(format_table(rows, LS_COLUMNS))
    print(f"{len(rows)} clip(s)")
    return 0


def cmd_show(args) -> int:
    import pyarrow.dataset as ds

    from drivesim.data.catalog import CatalogError, read_clips, read_info
    from drivesim.export.catalog import failures

    if args.clip_id is None:
        info = read_info(args.catalog)
        table = read_clips(args.catalog, columns=["time_of_day", "crowdedness", "frames"])
        column = lambda name: table.column(name).to_pylist()
        counts = Counter(zip(column("time_of_day"), column("crowdedness")))
        print(
            f"catalog {args.catalog}: schema_version {info['schema_version']}, {table.num_rows} clip(s), "
            f"{sum(column('frames'))} frames, {len(failures(args.catalog))} failed"
        )
        rows = [{"time_of_day": t, "crowdedness": c, "clips": n} for (t, c), n in sorted(counts.items())]
        print(format_table(rows, ("time_of_day", "crowdedness", "clips")))
        return 0
    rows = read_clips(args.catalog, filter=ds.field("clip_id") == args.clip_id).to_pylist()
    if not rows:
        raise CatalogError(f"{args.catalog}: no clip {args.clip_id!r} (see `drivesim catalog ls`)")
    row = rows[0]
    if not args.boxes:
        row["boxes"] = f"{len(row['boxes'])} boxes (--boxes to list them)"
    print(json.dumps(row, indent=2, default=str))
    return 0


def cmd_validate(args) -> int:
    from drivesim.data.catalog_check import check_catalog

    report = check_catalog(args.catalog, rehash=not args.no_rehash)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in report.problems:
        print(f"problem: {line}")
    print(f"{report.rows} row(s), {len(report.problems)} problem(s), {len(report.warnings)} warning(s)")
    return 0 if report.ok else 1


def cmd_compact(args) -> int:
    from drivesim.export.catalog import compact

    stats = compact(args.catalog)
    print(
        f"{stats['fragments_before']} file(s) -> {stats['files_after']}, {stats['rows']} row(s), "
        f"{stats['duplicates_removed']} duplicate(s) removed"
    )
    return 0


def summary_table(results, wall_seconds: float) -> str:
    """The end-of-batch table: one line per clip, then the totals and clips per minute of wall time."""
    rows = [
        {
            "clip_id": r.clip.clip_id,
            "scenario": r.clip.scenario.id,
            "time_of_day": r.clip.scenario.time_of_day,
            "crowdedness": r.clip.scenario.crowdedness,
            "seed": r.clip.seed,
            "status": r.status,
            "frames": r.frames,
            "seconds": round(r.seconds, 1),
            "error": r.error[:60],
        }
        for r in results
    ]
    counts = Counter(r.status for r in results)
    rate = counts["generated"] / max(wall_seconds, 1e-9) * 60
    totals = ", ".join(f"{counts[s]} {s}" for s in ("generated", "skipped", "failed"))
    table = format_table(rows, list(rows[0]) if rows else ["clip_id"]) + f"\n{totals}; {rate:.2f} clips/min"
    return table + stage_line(results)


def stage_line(results) -> str:
    """Seconds per output frame by cascade stage over the clips generated in this run ('' if none)."""
    done = [r for r in results if r.status == "generated" and r.stage_seconds]
    frames = sum(r.frames for r in done)
    if not frames:
        return ""
    stages = {
        k: sum(r.stage_seconds.get(k, 0.0) for r in done) / frames
        for k in dict.fromkeys(k for r in done for k in r.stage_seconds)
    }
    parts = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
    return f"\ns/frame by stage ({frames} frames): {parts}; all {sum(r.seconds for r in done) / frames:.2f}"


def cmd_generate_catalog(args) -> int:
    """`drivesim generate --catalog`: the whole cascade per expanded clip into a Parquet catalog."""
    from drivesim.cli.generate import sampling_options, upsample_settings
    from drivesim.pipelines.batch import BatchOptions, generate_catalog
    from drivesim.pipelines.rollout import RolloutConfig
    from drivesim.utils import DEFAULT_MODEL_DIR

    rollout = RolloutConfig(
        **sampling_options(args, RolloutConfig),
        interpolation_steps=args.interpolation_steps,
        guidance_context=args.guidance_context,
        frame_correlation=args.frame_correlation,
    )
    options = BatchOptions(rollout, args.upsampler, upsample_settings(args))
    start = time.perf_counter()
    results = generate_catalog(
        args.scenario,
        args.out,
        options,
        args.model or DEFAULT_MODEL_DIR,
        variants=args.variants,
        device=args.device,
        progress=not args.quiet,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
    )
    wall = time.perf_counter() - start
    print(summary_table(results, wall))
    print(f"{wall:.0f} s -> {args.out}")
    return 1 if any(r.status == "failed" for r in results) else 0


def register(subparsers) -> None:
    """`catalog ls|show|validate|compact`."""
    catalog = subparsers.add_parser("catalog", help="inspect, check and compact Parquet clip catalogs")
    sub = catalog.add_subparsers(dest="catalog_command", required=True)
    ls = sub.add_parser("ls", help="one line per clip")
    ls.add_argument("catalog", type=Path)
    ls.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep rows where COLUMN equals VALUE, or compares (==, !=, >=, <=, >, <; "
        "crowdedness>=moderate); repeat to combine",
    )
    ls.set_defaults(func=cmd_ls)
    show = sub.add_parser("show", help="the catalog's summary, or one clip's row")
    show.add_argument("catalog", type=Path)
    show.add_argument("clip_id", nargs="?", default=None)
    show.add_argument("--boxes", action="store_true", help="list the clip's per-frame boxes")
    show.set_defaults(func=cmd_show)
    validate = sub.add_parser(
        "validate", help="re-hash media, find rows without media and orphan media; exit 1 on problems"
    )
    validate.add_argument("catalog", type=Path)
    validate.add_argument("--no-rehash", action="store_true", help="check existence only")
    validate.set_defaults(func=cmd_validate)
    compact = sub.add_parser("compact", help="merge per-clip fragments into one file per partition")
    compact.add_argument("catalog", type=Path)
    compact.set_defaults(func=cmd_compact)
