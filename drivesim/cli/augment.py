"""`drivesim augment`: variants of real or catalog clips (day -> night, light -> crowded traffic) with
their labels carried over, written to a Parquet catalog with their provenance."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from drivesim.cli.common import add_device, add_model, add_quiet, field_default, resolution
from drivesim.cli.generate import add_upsample_settings_args, upsample_settings
from drivesim.pipelines.rollout import RolloutConfig
from drivesim.pipelines.upsample import METHODS


def cmd_augment(args) -> int:
    """Run `drivesim augment`; exit 0, 1 if a clip failed, 2 on bad input."""
    from drivesim.cli.catalog import format_table
    from drivesim.data.frame_folders import FrameFolderError
    from drivesim.data.labels import LabelFormatError
    from drivesim.data.video_folder import VideoReadError
    from drivesim.pipelines.augment import AugmentOptions, augment_catalog
    from drivesim.pipelines.augment_track import AugmentError, parse_changes
    from drivesim.utils import DEFAULT_MODEL_DIR

    try:
        change_sets = [parse_changes(text) for text in args.vary]
        rollout = RolloutConfig(
            steps=args.steps,
            interpolation_steps=args.interpolation_steps,
            guidance_scene=args.guidance_scene,
            guidance_boxes=args.guidance_boxes,
            guidance_context=args.guidance_context,
            context_frames=args.context_frames,
        )
        options = AugmentOptions(
            rollout,
            args.seconds,
            args.start,
            args.context_strength,
            args.resolution,
            args.upsampler,
            upsample_settings(args),
            variants=args.variants,
            seed=args.seed,
            keep_structure=args.keep_structure,
            keep_detail=args.keep_detail,
        )
        start = time.perf_counter()
        results = augment_catalog(
            args.input,
            args.out,
            change_sets,
            options,
            args.model or DEFAULT_MODEL_DIR,
            args.device,
            not args.quiet,
            args.source_fps,
            args.where or None,
        )
    except (AugmentError, FrameFolderError, LabelFormatError, VideoReadError, FileNotFoundError) as e:
        print(f"drivesim augment: {e}", file=sys.stderr)
        return 2
    rows = [
        {
            "clip_id": r.job.clip_id,
            "source": r.job.source.clip_id,
            "changes": ",".join(f"{k}={v}" for k, v in r.job.changes.items()),
            "seed": r.job.seed,
            "status": r.status,
            "frames": r.frames,
            "seconds": round(r.seconds, 1),
            "error": r.error[:60],
        }
        for r in results
    ]
    if rows:
        print(format_table(rows, list(rows[0])))
    counts = Counter(r.status for r in results)
    print(
        ", ".join(f"{counts[s]} {s}" for s in ("generated", "skipped", "failed"))
        + f" in {time.perf_counter() - start:.0f} s -> {args.out}"
    )
    return 1 if counts["failed"] else 0


def register(subparsers) -> None:
    """`augment` (defaults: AugmentOptions, RolloutConfig)."""
    from drivesim.pipelines.augment import CONTEXT_STRENGTH, AugmentOptions

    d = lambda name: field_default(AugmentOptions, name)
    r = lambda name: getattr(AugmentOptions().rollout, name)  # augment's rollout defaults
    aug = subparsers.add_parser(
        "augment",
        help="variants of real or catalog clips with changed conditions "
        "(labels carried over) into a Parquet catalog",
    )
    aug.add_argument(
        "--input",
        required=True,
        type=Path,
        help="a folder (videos with same-stem Scalabel labels, frame folders, the BDD100K MOT "
        "layout), one video, or a catalog",
    )
    aug.add_argument(
        "--vary",
        required=True,
        action="append",
        metavar="COND=VALUE[,COND=VALUE]",
        help="one variant per --vary, e.g. time_of_day=night,crowdedness=crowded (repeat for more)",
    )
    aug.add_argument("--out", required=True, type=Path, help="the catalog to write (resumable)")
    aug.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FILTER",
        help="catalog input: keep rows matching, e.g. 'time_of_day == day' (repeat: AND)",
    )
    aug.add_argument(
        "--source-fps",
        type=float,
        default=None,
        help="frame rate of image sequences whose labels give none (BDD100K MOT: 5 by default)",
    )
    aug.add_argument(
        "--seconds", type=float, default=d("seconds"), help="variant length (at most the rest of the source)"
    )
    aug.add_argument("--start", type=float, default=d("start_s"), help="where in each source to start, s")
    aug.add_argument("--variants", type=int, default=d("variants"), help="seeds per source and --vary")
    aug.add_argument("--seed", type=int, default=d("seed"), help="first seed")
    aug.add_argument(
        "--context-frames",
        type=int,
        default=r("context_frames"),
        choices=[1, 2],
        help="source frames (7.5 fps) encoded as the prediction context",
    )
    aug.add_argument(
        "--context-strength",
        type=float,
        default=None,
        help=f"SDEdit strength moving the context frames to the new conditions (0 = as they "
        f"are; default: 1 - --keep-structure, or with --keep-structure 0 {CONTEXT_STRENGTH:g} when "
        "the time of day changes, else 0)",
    )
    aug.add_argument(
        "--keep-structure",
        type=float,
        default=d("keep_structure"),
        metavar="S",
        help="how much of the source every frame keeps, 0..1: each frame starts from the source's own "
        "latents noised to 1 - S (SDEdit) under the new conditions; 0 keeps only the first frames "
        "(a new scene after them), 1 the source itself",
    )
    aug.add_argument(
        "--keep-detail",
        type=float,
        default=d("keep_detail"),
        metavar="D",
        help="with --keep-structure > 0: the share of the source's fine detail (high spatial "
        "frequencies of its latents: edges of the street, cars, buildings) in every frame; the "
        "variant keeps its own light and colours",
    )
    aug.add_argument("--steps", type=int, default=r("steps"))
    aug.add_argument("--interpolation-steps", type=int, default=r("interpolation_steps"))
    aug.add_argument("--guidance-scene", type=float, default=r("guidance_scene"))
    aug.add_argument("--guidance-boxes", type=float, default=r("guidance_boxes"))
    aug.add_argument("--guidance-context", type=float, default=r("guidance_context"), help="1 = none")
    aug.add_argument("--resolution", type=resolution, default=d("resolution"), help="output HxW")
    aug.add_argument(
        "--upsampler",
        default=d("upsampler"),
        choices=METHODS,
        help="how the 128x256 base video reaches --resolution (none: write the base video)",
    )
    add_upsample_settings_args(aug)
    add_model(aug)
    add_device(aug)
    add_quiet(aug)
    aug.set_defaults(func=cmd_augment)
