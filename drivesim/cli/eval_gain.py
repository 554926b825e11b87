"""`drivesim eval gain`: a small detector trained on real frames vs real frames + their variants
(and + re-lit copies), scored on held-out real footage (AP50 per seed)."""

from __future__ import annotations

import sys

from drivesim.cli.common import add_json, add_quiet, param_default, resolution
from drivesim.data.frame_folders import FrameFolderError
from drivesim.data.labels import LabelFormatError
from drivesim.data.video_folder import VideoReadError
from drivesim.eval.augment_gain import ARMS, augment_gain
from drivesim.utils import write_json_atomic


def gain_table(report: dict) -> str:
    """`augment_gain`'s report -> one line per arm: AP50 per seed, mean +- std, minutes per run."""
    lines = []
    for arm, result in report["arms"].items():
        per_seed = "  ".join(f"seed {r['seed']} {r['ap50'] or 0:.3f}" for r in result["runs"])
        minutes = sum(r["seconds"] for r in result["runs"]) / len(result["runs"]) / 60
        lines.append(
            f"{arm:<14} AP50 {result['ap50_mean']:.3f} +- {result['ap50_std']:.3f}  ({per_seed})  "
            f"{minutes:.1f} min per run"
        )
    return "\n".join(lines)


def cmd_eval_gain(args) -> int:
    try:
        report = augment_gain(
            args.train,
            args.variants,
            args.heldout,
            steps=args.steps,
            seeds=tuple(args.seeds),
            size=args.size,
            batch=args.batch,
            variant_share=args.variant_share,
            every=args.every,
            arms=tuple(args.arms),
            progress=not args.quiet,
        )
    except (ValueError, FileNotFoundError, VideoReadError, FrameFolderError, LabelFormatError) as e:
        print(e, file=sys.stderr)
        return 2
    sets = report["sets"]
    for name, s in sets.items():
        print(f"{name:<9} {s['frames']:>5} frames  {s['vehicle_boxes']:>6} vehicle boxes  {s['path']}")
    print(
        f"{report['steps']} steps of batch {report['batch']} at {args.size[0]}x{args.size[1]}, "
        f"variant share {report['variant_share']:g}"
    )
    print(gain_table(report))
    if "gain" in report:
        print(f"gain (mean AP50, real+variants - real): {report['gain']:+.3f}")
    if "gain_over_jitter" in report:
        print(f"gain over re-lighting (real+variants - real+jitter): {report['gain_over_jitter']:+.3f}")
    if args.json:
        write_json_atomic(report, args.json, indent=2)
        print(f"report: {args.json}")
    return 0


def register_gain(ev_sub) -> None:
    """`eval gain` into the `eval` subparsers."""
    p = ev_sub.add_parser(
        "gain",
        help="augmentation gain on a real task: a small vehicle detector (CenterNet, random init) "
        "trained on real frames, real + variants and real + re-lit copies; AP50 on held-out real "
        "footage per seed",
    )
    p.add_argument(
        "--train", required=True, help="labelled real clips: a folder, a video + .json, frame folders"
    )
    p.add_argument(
        "--variants",
        default=None,
        help="their variants: a catalog from `drivesim augment` (for real+variants)",
    )
    p.add_argument("--heldout", required=True, help="labelled real clips the detector never trains on")
    p.add_argument("--steps", type=int, default=param_default(augment_gain, "steps"), help="per run")
    p.add_argument("--seeds", type=int, nargs="+", default=list(param_default(augment_gain, "seeds")))
    p.add_argument("--batch", type=int, default=param_default(augment_gain, "batch"))
    p.add_argument(
        "--size",
        type=resolution,
        default=param_default(augment_gain, "size"),
        help="detector input HxW (frames centre-cropped to 1:2)",
    )
    p.add_argument(
        "--variant-share",
        type=float,
        default=param_default(augment_gain, "variant_share"),
        help="share of each batch drawn from the variants (real+variants) or re-lit (real+jitter)",
    )
    p.add_argument(
        "--every", type=int, default=param_default(augment_gain, "every"), help="train on every K-th frame"
    )
    p.add_argument(
        "--arms",
        nargs="+",
        choices=ARMS,
        default=list(ARMS),
        help="which runs to make (e.g. the real baseline alone, while variants are being made)",
    )
    add_json(p)
    add_quiet(p)
    p.set_defaults(func=cmd_eval_gain)
