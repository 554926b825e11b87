"""`drivesim label INPUT --out DIR`: pseudo-label real footage with the YOLOX-nano detector and
ByteTrack (drivesim.eval.pseudo_label)."""

from __future__ import annotations

import sys
import time

from drivesim.cli.common import add_detector, add_quiet, add_road_band, param_default
from drivesim.data.frame_folders import FrameFolderError
from drivesim.data.video_folder import VideoReadError
from drivesim.eval.detector import DetectorWeightsError
from drivesim.eval.pseudo_label import PseudoLabelError, label_sources


def cmd_label(args) -> int:
    start = time.perf_counter()
    try:
        summaries = label_sources(
            args.input,
            args.out,
            args.every,
            args.road_band,
            args.source_fps,
            args.detector,
            args.min_score,
            progress=not args.quiet,
        )
    except (DetectorWeightsError, PseudoLabelError, FrameFolderError, VideoReadError, FileNotFoundError) as e:
        print(e, file=sys.stderr)
        return 2
    for s in summaries:
        print(
            f"{s.labels}: {s.processed}/{s.frames} frames labelled, {s.frames_with_car} with a car, "
            f"{s.boxes} boxes, {s.tracks} tracks"
            + (" (" + ", ".join(f"{c} {n}" for c, n in s.per_class.items()) + ")" if s.per_class else "")
        )
    print(f"{len(summaries)} clip(s) in {time.perf_counter() - start:.1f} s")
    return 0


def register(subparsers) -> None:
    """`label`."""
    p = subparsers.add_parser(
        "label",
        help="pseudo-label real footage (videos, frame folders, BDD100K MOT) "
        "with a local YOLOX-nano detector and ByteTrack: Scalabel JSON",
    )
    p.add_argument("input", help="a video, a frame folder, or a folder of them (searched recursively)")
    p.add_argument("--out", required=True, help="folder for <stem>.json (+ <stem>.meta.json) per clip")
    add_road_band(p)
    p.add_argument(
        "--every",
        type=int,
        default=param_default(label_sources, "every"),
        help="label every K-th frame; the others are written with unknown boxes",
    )
    p.add_argument(
        "--source-fps",
        type=float,
        default=None,
        help="frame rate of frame folders without timestamps in their labels",
    )
    add_detector(p)
    p.add_argument(
        "--min-score",
        type=float,
        default=param_default(label_sources, "min_score"),
        help="detections written as labels (weaker ones only help the tracker)",
    )
    add_quiet(p)
    p.set_defaults(func=cmd_label)
