"""`drivesim eval detector` and `drivesim eval augment`: generated or augmented clips judged against
the real world, by a real-photo detector and against their real source clip."""

from __future__ import annotations

import sys

from drivesim.cli.common import add_detector, add_json, add_quiet, add_road_band, param_default
from drivesim.data.frame_folders import FrameFolderError
from drivesim.data.video_folder import VideoReadError
from drivesim.eval.detector import Detector, DetectorWeightsError
from drivesim.eval.detector_score import AP_CONF, detector_report
from drivesim.utils import write_json_atomic

DETECTOR_COLUMNS = (
    ("frames", "frames", "d"),
    ("vehicle_frame_share", "vehicle frames", ".3f"),
    ("eligible_boxes", "boxes", "d"),
    ("box_hits", "hits", "d"),
    ("box_hit_rate", "hit rate", ".3f"),
    ("ap50", "AP50", ".3f"),
    ("frechet_to_reference", "Frechet to ref", ".2f"),
)


def detector_table(report: dict) -> str:
    """`eval detector`'s report -> a fixed-width table, one row per time-of-day group."""
    columns = [c for c in DETECTOR_COLUMNS if any(c[0] in g for g in report["groups"].values())]
    rows = [["group", *(title for _, title, _ in columns)]]
    groups = dict(report["groups"])
    if "reference" in report:
        groups["reference"] = report["reference"]
    for name, g in groups.items():
        rows.append([name, *("-" if g.get(key) is None else format(g[key], fmt) for key, _, fmt in columns)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in rows
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def cmd_eval_detector(args) -> int:
    try:
        detector = Detector(args.detector, conf=AP_CONF)
        report = detector_report(
            args.clips,
            detector,
            args.reference,
            args.reference_from_s,
            args.every,
            progress=not args.quiet,
            road_band=args.road_band,
        )
    except (DetectorWeightsError, FileNotFoundError, VideoReadError, FrameFolderError) as e:
        print(e, file=sys.stderr)  # DetectorWeightsError: a missing or unreadable ONNX file
        return 2
    print(f"{report['set']}: detector {report['detector']}, every {report['every']} frames")
    if "reference" in report:
        print(f"reference {report['reference']['set']} from {report['reference']['from_s']:g} s")
    print(detector_table(report))
    for name, group in report["groups"].items():
        classes = group.get("per_class") or {}
        if classes:  # box hit per label category (a hit: a detection of its group, IoU >= 0.5)
            cells = [f"{c} {v['hits']}/{v['boxes']} = {v['hit_rate']:.2f}" for c, v in classes.items()]
            print(f"{name} box hit by class: " + ", ".join(cells))
    if args.json:
        write_json_atomic(report, args.json, indent=2)
        print(f"report: {args.json}")
    if args.montage:
        from drivesim.eval.detector_montage import detector_montage

        sets = ([(args.reference, args.reference_from_s)] if args.reference else []) + [(args.clips, 0.0)]
        print(f"montage: {detector_montage(sets, detector, args.montage)}")
    return 0


def cmd_eval_augment(args) -> int:
    from drivesim.eval.augment_structure import augment_report

    times = tuple(float(t) for t in args.times.split(","))
    try:
        rows = augment_report(args.catalog, times, args.source_fps)
    except (ValueError, FileNotFoundError, VideoReadError, FrameFolderError) as e:
        print(e, file=sys.stderr)
        return 2
    for row in rows:
        edges = "  ".join(f"{t} s {c:.2f}" for t, c in row["edge_correlation"].items())
        print(
            f"{row['clip_id']}  {row['changes']}  keep {row['keep_structure']}  edges: {edges}  "
            f"luma x{row['luma_ratio']:.2f}  warp error x{row['warp_error_ratio']:.2f}"
        )
    if args.json:
        write_json_atomic(rows, args.json, indent=2)
        print(f"report: {args.json}")
    if args.montage:
        from drivesim.eval.augment_structure import augment_montage

        print(f"montage: {augment_montage(args.catalog, args.montage, times)}")
    return 0


def register_real(ev_sub) -> None:
    """`eval detector` and `eval augment` into the `eval` subparsers."""
    ev_det = ev_sub.add_parser(
        "detector",
        help="real-photo detector (YOLOX-nano) vs the clips' box labels "
        "by time of day: box hit rate, AP50, vehicle frames, "
        "Frechet on its features to a reference",
    )
    ev_det.add_argument(
        "clips", help="clip folder (videos / frame folders + Scalabel .json), a video, or a catalog"
    )
    ev_det.add_argument(
        "--reference",
        default=None,
        help="set to compare features with (e.g. real footage), same forms as clips",
    )
    ev_det.add_argument(
        "--reference-from-s",
        type=float,
        default=param_default(detector_report, "reference_from_s"),
        help="skip the reference's first seconds",
    )
    ev_det.add_argument(
        "--every",
        type=int,
        default=param_default(detector_report, "every"),
        help="detect on every K-th frame",
    )
    add_detector(ev_det)
    add_road_band(ev_det)
    add_json(ev_det)
    ev_det.add_argument(
        "--montage",
        default=None,
        help="also draw a PNG: a row per clip (reference first) with labels in green "
        "and the detector's vehicles in magenta",
    )
    add_quiet(ev_det)
    ev_det.set_defaults(func=cmd_eval_detector)

    ev_aug = ev_sub.add_parser(
        "augment",
        help="augmented clips vs their real source: Sobel edge correlation at given times, luma and "
        "warp-error ratios (does a variant keep the street?)",
    )
    ev_aug.add_argument("catalog", help="a catalog written by `drivesim augment`")
    ev_aug.add_argument("--times", default="0,1,1.9", help="seconds into each variant, comma-separated")
    ev_aug.add_argument(
        "--source-fps", type=float, default=None, help="frame rate of source frame folders without one"
    )
    add_json(ev_aug, "rows")
    ev_aug.add_argument(
        "--montage",
        default=None,
        help="also draw a PNG: the source, then each of its variants with their boxes, at --times",
    )
    ev_aug.set_defaults(func=cmd_eval_augment)
