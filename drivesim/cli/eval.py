"""`drivesim eval ...`: autoencoder, upsampler, samples, montage, denoising, context, the
real-photo detector's agreement and the metrics report.

report takes hydra overrides of the 'eval' config; the others take flags."""

from __future__ import annotations

import json
from pathlib import Path

from drivesim.cli.common import add_device, add_model, add_quiet, param_default
from drivesim.cli.eval_gain import register_gain
from drivesim.cli.eval_real import register_real
from drivesim.cli.generate import add_sampling_args, add_upsample_settings_args, upsample_settings
from drivesim.eval.autoencoder import evaluate_autoencoder
from drivesim.eval.autoencoder_detector import round_trip_detector
from drivesim.eval.context_use import context_use_report
from drivesim.eval.denoising import denoising_report
from drivesim.eval.detector import Detector
from drivesim.eval.detector_score import AP_CONF
from drivesim.eval.samples import time_of_day_report
from drivesim.eval.upsampler import LOW_RES, evaluate_upsampler
from drivesim.utils import DEFAULT_MODEL_DIR


def cmd_eval_denoising(args) -> int:
    report = denoising_report(
        str(args.model or DEFAULT_MODEL_DIR),
        args.cache_dir,
        args.clips,
        progress=not args.quiet,
        device=args.device,
    )
    for name, loss in report.items():
        print(f"{loss:.5f}  {name}")
    return 0


def cmd_eval_context(args) -> int:
    report = context_use_report(
        str(args.model or DEFAULT_MODEL_DIR),
        tuple(float(s) for s in args.strengths.split(",")),
        args.cache_dir,
        args.clips,
        args.steps,
        args.interpolation_steps,
        args.guidance_context,
        progress=not args.quiet,
        device=args.device,
    )
    for name, metrics in report.items():
        print(f"{name:<20} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return 0


def cmd_eval_autoencoder(args) -> int:
    report = evaluate_autoencoder(
        args.autoencoder,
        args.temporal_decoder,
        args.clips,
        args.frames,
        progress=not args.quiet,
        device=args.device,
    )
    if args.detector_clips:
        report["detector_round_trip"] = round_trip_detector(
            args.autoencoder,
            args.temporal_decoder,
            clips=args.detector_clips,
            detector=Detector(args.detector, conf=AP_CONF),
            progress=not args.quiet,
            device=args.device,
        )
    print(json.dumps(report, indent=2))
    return 0


def cmd_eval_upsampler(args) -> int:
    report = evaluate_upsampler(
        str(args.model or DEFAULT_MODEL_DIR),
        args.clips,
        args.frames,
        low_res=args.low_res,
        settings=upsample_settings(args),
        progress=not args.quiet,
        device=args.device,
    )
    print(json.dumps(report, indent=2))
    return 0


def cmd_eval_samples(args) -> int:
    from drivesim.diffusion.guidance import GuidanceScales
    from drivesim.pipelines.cascade import Cascade

    pipe = Cascade.from_pretrained(
        args.model or DEFAULT_MODEL_DIR, key_model="unet", interpolation=False, device=args.device
    ).key_model
    report = time_of_day_report(
        pipe,
        args.clips,
        args.frames,
        args.steps,
        GuidanceScales(args.guidance_scene, args.guidance_boxes, rescale=args.guidance_rescale),
        progress=not args.quiet,
        seeds=args.seeds,
        montage=args.montage,
    )
    print(json.dumps(report, indent=2))
    return 0


def cmd_eval_montage(args) -> int:
    from drivesim.eval.montage import clips_montage

    print(clips_montage(args.folder, args.out, args.frames))
    return 0


def cmd_eval_pair(args) -> int:
    from drivesim.eval.montage import upsample_pair

    print(upsample_pair(args.base, args.upsampled, args.out, args.frame))
    return 0


def cmd_eval_report(args) -> int:
    from drivesim.config import load_config, to_dataclass
    from drivesim.eval.report import EvalConfig, run_eval

    cfg = to_dataclass(EvalConfig, load_config(args.overrides, "eval"))
    report = run_eval(cfg, progress=not args.quiet)
    print(Path(cfg.out, "report.md").read_text())
    print(f"report: {cfg.out}/report.json ({report['seconds']:.0f} s)")
    return 0


def _held_out_args(parser, report) -> None:
    """--model, --cache-dir, --clips, --device and --quiet of the held-out evaluations."""
    add_model(parser)
    parser.add_argument(
        "--cache-dir",
        default=param_default(report, "cache_dir"),
        help="where held-out latent caches are built",
    )
    parser.add_argument("--clips", type=int, default=param_default(report, "clips"))
    add_device(parser)
    add_quiet(parser)


def register(subparsers) -> None:
    """`eval autoencoder | upsampler | samples | montage | pair | denoising | context | detector | augment |
    gain | report`."""
    ev = subparsers.add_parser("eval", help="evaluation reports")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)

    ev_ae = ev_sub.add_parser("autoencoder", help="PSNR + flicker, image vs temporal decoder")
    ev_ae.add_argument("--autoencoder", required=True, help="image AE checkpoint prefix or model folder")
    ev_ae.add_argument("--temporal-decoder", help="temporal decoder checkpoint prefix or model folder")
    ev_ae.add_argument("--clips", type=int, default=param_default(evaluate_autoencoder, "clips"))
    ev_ae.add_argument("--frames", type=int, default=param_default(evaluate_autoencoder, "num_frames"))
    ev_ae.add_argument(
        "--detector-clips",
        type=int,
        default=0,
        help="also the real-photo detector's box hit on this many held-out 512x1024 day world clips: "
        "as rendered, at 128x256, and through each decoder at 128x256 (0 = skip)",
    )
    ev_ae.add_argument("--detector", help="YOLOX-nano ONNX file (default: as `eval detector`)")
    add_device(ev_ae)
    add_quiet(ev_ae)
    ev_ae.set_defaults(func=cmd_eval_autoencoder)

    ev_u = ev_sub.add_parser(
        "upsampler",
        help="PSNR, SSIM and flicker against 512x1024 ground truth: bicubic, image and video upsampler",
    )
    add_model(ev_u)
    ev_u.add_argument("--clips", type=int, default=param_default(evaluate_upsampler, "clips"))
    ev_u.add_argument("--frames", type=int, default=param_default(evaluate_upsampler, "num_frames"))
    ev_u.add_argument(
        "--low-res",
        default=param_default(evaluate_upsampler, "low_res"),
        choices=LOW_RES,
        help="input: the truth area-downsampled, or that through the autoencoder",
    )
    add_upsample_settings_args(ev_u)
    add_device(ev_u)
    add_quiet(ev_u)
    ev_u.set_defaults(func=cmd_eval_upsampler)

    ev_s = ev_sub.add_parser("samples", help="day/night pairs (same layout and seed): luma night/day")
    add_model(ev_s)
    ev_s.add_argument("--clips", type=int, default=param_default(time_of_day_report, "clips"))
    ev_s.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="sampling seed per pair (default: 0..clips-1)"
    )
    ev_s.add_argument("--montage", default=None, help="write a PNG of the middle frames with boxes")
    ev_s.add_argument("--frames", type=int, default=param_default(time_of_day_report, "num_frames"))
    add_sampling_args(ev_s)
    add_device(ev_s)
    add_quiet(ev_s)
    ev_s.set_defaults(func=cmd_eval_samples)

    ev_m = ev_sub.add_parser(
        "montage",
        help="PNG of generated clips (first/middle/last frames) with "
        "their label boxes, e.g. of `make quick-demo`'s outputs",
    )
    ev_m.add_argument("folder", help="folder of <id>.mp4 + <id>.json")
    ev_m.add_argument("--out", required=True, help="PNG path")
    ev_m.add_argument("--frames", type=int, default=3, help="frames per clip")
    ev_m.set_defaults(func=cmd_eval_montage)

    ev_p = ev_sub.add_parser(
        "pair",
        help="PNG of a base frame beside its upsampled frame (whole, centre), "
        "e.g. of `drivesim generate --keep-base` outputs",
    )
    ev_p.add_argument("base", help="the base video, e.g. out/<id>.base.mp4")
    ev_p.add_argument("upsampled", help="the upsampled video, e.g. out/<id>.mp4")
    ev_p.add_argument("--out", required=True, help="PNG path")
    ev_p.add_argument("--frame", type=int, default=0)
    ev_p.set_defaults(func=cmd_eval_pair)

    ev_d = ev_sub.add_parser(
        "denoising", help="held-out eps-MSE of image/video/prediction/interpolation models (fixed noise)"
    )
    _held_out_args(ev_d, denoising_report)
    ev_d.set_defaults(func=cmd_eval_denoising)

    ev_c = ev_sub.add_parser(
        "context",
        help="held-out check that prediction / interpolation sampling "
        "follows real known frames, per SDEdit start strength",
    )
    _held_out_args(ev_c, context_use_report)
    ev_c.add_argument(
        "--strengths",
        default=",".join(f"{s:g}" for s in param_default(context_use_report, "strengths")),
        help="comma-separated, 1 = pure noise",
    )
    ev_c.add_argument("--steps", type=int, default=param_default(context_use_report, "steps"))
    ev_c.add_argument(
        "--interpolation-steps", type=int, default=param_default(context_use_report, "interpolation_steps")
    )
    ev_c.add_argument(
        "--guidance-context", type=float, default=param_default(context_use_report, "guidance_context")
    )
    ev_c.set_defaults(func=cmd_eval_context)

    register_real(ev_sub)
    register_gain(ev_sub)

    ev_r = ev_sub.add_parser(
        "report",
        help="metrics report of real / reconstructed / generated sets "
        "(hydra config 'eval' + overrides, e.g. device=cuda)",
    )
    ev_r.add_argument("overrides", nargs="*", help="hydra overrides, e.g. real.clips=32 fid_weights=...")
    add_quiet(ev_r, "no progress bars")
    ev_r.set_defaults(func=cmd_eval_report)
