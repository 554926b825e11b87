"""`drivesim generate`: one clip per scenario file with the key-frame video LDM, or with --catalog
the whole cascade per expanded clip into a Parquet catalog (drivesim.cli.catalog)."""

from __future__ import annotations

import time
from pathlib import Path

from drivesim.cli.common import add_device, add_model, add_quiet, field_default, param_default
from drivesim.diffusion.samplers import SAMPLERS
from drivesim.pipelines.batch import BACKENDS, generate_catalog
from drivesim.pipelines.generate import GenerateOptions
from drivesim.pipelines.rollout import RolloutConfig
from drivesim.pipelines.upsample import METHODS, UpsampleSettings
from drivesim.utils import DEFAULT_MODEL_DIR

FRAME_CORRELATION_HELP = (
    "shared part of the starting noise across frames (default: the noise prior the "
    "model trained with; 0 = independent)"
)


def cmd_generate(args) -> int:
    from drivesim.pipelines.generate import generate_scenarios

    if args.catalog:
        from drivesim.cli.catalog import cmd_generate_catalog
        from drivesim.data.catalog import CatalogError

        if args.overwrite or args.keep_base:
            raise CatalogError(
                "--overwrite and --keep-base are for the folder mode: a catalog keeps the "
                "clips it has (write to a new --out to remake them) and stores the final "
                "video only"
            )

        return cmd_generate_catalog(args)
    if len(args.scenario) > 1 or args.variants is not None:
        from drivesim.scenario import ScenarioError

        raise ScenarioError(
            "several --scenario paths and --variants need --catalog; without it give one "
            "scenario file or folder"
        )
    options = GenerateOptions(
        **sampling_options(args, GenerateOptions),
        max_frames=args.max_frames,
        overwrite=args.overwrite,
        frame_correlation=args.frame_correlation,
        guidance_rescale=args.guidance_rescale,
        upsampler=args.upsampler,
        upsample=upsample_settings(args),
        keep_base=args.keep_base,
    )
    start = time.perf_counter()
    paths = generate_scenarios(
        args.scenario[0],
        args.out,
        options,
        args.model or DEFAULT_MODEL_DIR,
        progress=not args.quiet,
        device=args.device,
    )
    for p in paths:
        print(p)
    print(f"generated {len(paths)} clip(s) in {time.perf_counter() - start:.0f} s -> {args.out}")
    return 0


SHARED_SAMPLING = ("sampler", "steps", "guidance_scene", "guidance_boxes")


def sampling_options(args, config: type) -> dict:
    """--sampler/--steps/--guidance-scene/--guidance-boxes of `generate`: the flag if given, else the
    default of `config` (GenerateOptions in folder mode, RolloutConfig with --catalog)."""
    return {
        name: field_default(config, name) if getattr(args, name) is None else getattr(args, name)
        for name in SHARED_SAMPLING
    }


def add_sampling_args(parser) -> None:
    """--steps, --guidance-scene/-boxes/-rescale (defaults: GenerateOptions)."""
    d = lambda name: field_default(GenerateOptions, name)
    parser.add_argument("--steps", type=int, default=d("steps"))
    parser.add_argument(
        "--guidance-scene",
        type=float,
        default=d("guidance_scene"),
        help="CFG scale, time of day + crowdedness",
    )
    parser.add_argument("--guidance-boxes", type=float, default=d("guidance_boxes"), help="CFG scale, boxes")
    parser.add_argument(
        "--guidance-rescale", type=float, default=d("guidance_rescale"), help="CFG rescale phi (0 = off)"
    )


def add_upsampler_args(parser) -> None:
    """--upsampler, --keep-base and the upsample settings."""
    parser.add_argument(
        "--upsampler",
        default=field_default(GenerateOptions, "upsampler"),
        choices=METHODS,
        help="how the 128x256 base video reaches the scenario's output.resolution: bicubic (the "
        "default: the tiny diffusion upsampler does not beat it on today's world, see the model "
        "card), the diffusion upsampler (model), or none (write the base video)",
    )
    parser.add_argument("--keep-base", action="store_true", help="also write the base video (<id>.base.mp4)")
    add_upsample_settings_args(parser)


def add_upsample_settings_args(parser) -> None:
    """--upsample-steps, --upsample-noise, --tile (defaults: UpsampleSettings)."""
    d = lambda name: field_default(UpsampleSettings, name)
    parser.add_argument("--upsample-steps", type=int, default=d("steps"), help="upsampler denoising steps")
    parser.add_argument(
        "--upsample-noise",
        type=int,
        default=d("noise_level"),
        help="noise augmentation level of the base video (0-999; the model trained on 0-20)",
    )
    parser.add_argument(
        "--tile", type=int, default=d("tile"), help="upsampler tile side in output pixels (memory vs speed)"
    )


def upsample_settings(args) -> UpsampleSettings:
    """The --upsample-* flags as settings; a bad value exits with its message (no traceback)."""
    try:
        return UpsampleSettings(steps=args.upsample_steps, noise_level=args.upsample_noise, tile=args.tile)
    except ValueError as e:
        raise SystemExit(f"drivesim: {e}") from None


def register(subparsers) -> None:
    """`generate`."""
    gen = subparsers.add_parser("generate", help="generate clips for scenario files with the video LDM")
    gen.add_argument(
        "--scenario",
        required=True,
        nargs="+",
        help="scenario YAML files, folders or globs (several need --catalog)",
    )
    gen.add_argument("--out", required=True, type=Path, help="output folder, or the catalog with --catalog")
    gen.add_argument(
        "--catalog",
        action="store_true",
        help="write a Parquet catalog: every clip of every sweep runs the whole cascade (key "
        "frames, rollout to the scenario's duration, 30 fps, upsampling); resumable",
    )
    gen.add_argument(
        "--variants",
        type=int,
        default=None,
        help="--catalog: seeds per sweep point (overrides the files' `variants`)",
    )
    gen.add_argument(
        "--backend",
        default=param_default(generate_catalog, "backend"),
        choices=BACKENDS,
        help="--catalog: run the clips here one by one, or as Ray tasks",
    )
    gen.add_argument(
        "--workers",
        type=int,
        default=param_default(generate_catalog, "workers"),
        help="--backend ray: actors (each loads the models once and takes 1 CPU)",
    )
    gen.add_argument(
        "--ray-address",
        default=None,
        help="--backend ray: a running cluster (HEAD:6379); default: start a local one",
    )
    add_model(gen)
    gen.add_argument("--sampler", default=None, choices=SAMPLERS)
    add_sampling_args(gen)
    # --sampler/--steps/--guidance-*: defaults of GenerateOptions, or RolloutConfig with --catalog
    gen.set_defaults(**dict.fromkeys(SHARED_SAMPLING))
    rollout_default = lambda name: field_default(RolloutConfig, name)
    gen.add_argument(
        "--interpolation-steps",
        type=int,
        default=rollout_default("interpolation_steps"),
        help="--catalog: interpolation denoising steps",
    )
    gen.add_argument(
        "--guidance-context",
        type=float,
        default=rollout_default("guidance_context"),
        help="--catalog: CFG scale on the context frames (1 = none); --guidance-rescale "
        "applies to the folder mode only",
    )
    gen.add_argument(
        "--max-frames",
        type=int,
        default=field_default(GenerateOptions, "max_frames"),
        help="folder mode: key frames per clip (at the key-frame model's rate, 7.5 fps for "
        "the shipped one); --catalog makes the scenario's duration",
    )
    gen.add_argument(
        "--frame-correlation",
        type=float,
        default=field_default(GenerateOptions, "frame_correlation"),
        help=FRAME_CORRELATION_HELP,
    )
    add_upsampler_args(gen)
    gen.add_argument("--overwrite", action="store_true", help="folder mode: remake complete clips")
    add_device(gen)
    add_quiet(gen)
    gen.set_defaults(func=cmd_generate)
