"""`drivesim rollout`: a long clip from one scenario, segment by segment, resumable."""

from __future__ import annotations

import json

from drivesim.cli.common import add_device, add_model, add_quiet, field_default
from drivesim.cli.generate import FRAME_CORRELATION_HELP, add_upsampler_args, upsample_settings
from drivesim.pipelines.rollout import FACTOR, RolloutConfig, for_seconds
from drivesim.pipelines.rollout_job import RenderSettings, rollout_cascade, run_rollout
from drivesim.utils import DEFAULT_MODEL_DIR

DEFAULT_SECONDS = 10.0


def cmd_rollout(args) -> int:
    from drivesim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    seed = args.seed if args.seed is not None else scenario.seed
    cfg = RolloutConfig(
        segments=args.segments or 1,
        new_frames=args.new_frames,
        context_frames=args.context_frames,
        interpolate=not args.no_interpolate,
        steps=args.steps,
        interpolation_steps=args.interpolation_steps,
        guidance_context=args.guidance_context,
        frame_correlation=args.frame_correlation,
        seed=seed,
        prediction_strength=args.prediction_strength,
        interpolation_strength=args.interpolation_strength,
    )
    model_dir = args.model or DEFAULT_MODEL_DIR
    render = RenderSettings(
        args.decode_chunk, args.device, args.upsampler, upsample_settings(args), args.keep_base
    )
    cascade = rollout_cascade(model_dir, cfg, render, [scenario.output.resolution])
    cfg = cascade.fit(cfg)  # the checkpoints' key rate and latent size
    if not args.segments:  # else whole segments, as many frames as they make
        cfg = for_seconds(cfg, args.seconds)
    crowd = args.crowdedness.split(",") if args.crowdedness else None
    meta = run_rollout(
        scenario,
        args.out,
        cfg,
        model_dir,
        crowd,
        render=render,
        cascade=cascade,
        progress=not args.quiet,
    ).meta
    diag = {k: v for k, v in meta.diagnostics.items() if k != "segments"}
    print(json.dumps(diag, indent=2))
    print(f"{meta.frames} frames at {meta.fps:g} fps -> {args.out}/{meta.scenario_id}.mp4")
    return 0


def register(subparsers) -> None:
    """`rollout` (defaults: RolloutConfig)."""
    d = lambda name: field_default(RolloutConfig, name)
    key_fps = d("key_fps")
    ro = subparsers.add_parser(
        "rollout",
        help=f"a long clip from one scenario: prediction segments, "
        f"interpolation to {key_fps * FACTOR:g} fps, streamed to disk, resumable",
    )
    ro.add_argument("scenario", help="scenario YAML file")
    ro.add_argument("--out", required=True, help="output folder")
    ro.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help="length: the whole segments it needs, cut to these seconds",
    )
    ro.add_argument(
        "--segments", type=int, default=None, help="a number of whole segments instead of --seconds (not cut)"
    )
    ro.add_argument("--new-frames", type=int, default=d("new_frames"), help="key frames added per segment")
    ro.add_argument("--context-frames", type=int, default=d("context_frames"), choices=[1, 2])
    ro.add_argument("--steps", type=int, default=d("steps"))
    ro.add_argument("--interpolation-steps", type=int, default=d("interpolation_steps"))
    ro.add_argument(
        "--guidance-context", type=float, default=d("guidance_context"), help="1 = no context guidance"
    )
    ro.add_argument("--no-interpolate", action="store_true", help=f"key frames only ({key_fps:g} fps)")
    ro.add_argument(
        "--frame-correlation", type=float, default=d("frame_correlation"), help=FRAME_CORRELATION_HELP
    )
    ro.add_argument(
        "--prediction-strength",
        type=float,
        default=d("prediction_strength"),
        help="new key frames start from the last context frame noised this far (1 = pure noise)",
    )
    ro.add_argument(
        "--interpolation-strength",
        type=float,
        default=d("interpolation_strength"),
        help="interpolated frames start from the blend of their key frames noised this far (1 = pure "
        "noise; 0, the default, = the blend itself, without the interpolation model: see the model card)",
    )
    ro.add_argument(
        "--decode-chunk",
        type=int,
        default=field_default(RenderSettings, "decode_chunk"),
        help="frames per temporal-decoder call: larger is faster and needs more memory; "
        "the frames are the same",
    )
    ro.add_argument(
        "--crowdedness",
        default=None,
        help="per segment, comma-separated (last repeats), e.g. light,moderate,crowded",
    )
    ro.add_argument("--seed", type=int, default=None, help="default: the scenario's seed")
    add_upsampler_args(ro)
    add_model(ro)
    add_device(ro)
    add_quiet(ro)
    ro.set_defaults(func=cmd_rollout)
