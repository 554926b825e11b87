"""`drivesim bench ...`: speed and memory benchmarks (defaults: the bench functions')."""

from __future__ import annotations

from drivesim.bench.decode import bench_decode
from drivesim.bench.rollout import bench_rollout
from drivesim.bench.unet import bench_unet
from drivesim.bench.world import bench_world
from drivesim.cli.common import add_model, latent_size, param_default, resolution


def cmd_bench_world(args) -> int:
    from drivesim.bench.world import format_rows

    print(format_rows(bench_world(args.sizes, args.frames, args.seeds)))
    return 0


def cmd_bench_unet(args) -> int:
    from drivesim.bench.unet import format_rows

    rows = bench_unet(args.batch, args.frames, args.latent[0], args.latent[1], args.repeats, args.threads)
    shape = f"[{args.batch},{args.frames},4,{args.latent[0]},{args.latent[1]}]"
    print(format_rows(rows, shape))
    return 0


def cmd_bench_decode(args) -> int:
    from drivesim.bench.decode import decoder_params, format_rows

    rows = bench_decode(tuple(args.lengths), args.chunk, args.threads, args.full_up_to)
    print(format_rows(rows, decoder_params()))
    return 0


def cmd_bench_rollout(args) -> int:
    from drivesim.bench.rollout import format_rows

    print(
        format_rows(
            bench_rollout(
                tuple(args.segments),
                args.steps,
                args.interpolation_steps,
                args.model,
                args.scenario,
                args.threads,
                args.upsampler,
            )
        )
    )
    return 0


def cmd_bench_cascade(args) -> int:
    from drivesim.bench.cascade import bench_cascade, format_rows

    rows = bench_cascade(
        tuple(args.paths),
        args.scenario,
        args.seconds,
        args.steps,
        args.interpolation_steps,
        args.model,
        args.threads,
        args.device,
    )
    print(format_rows(rows))
    return 0


def cmd_bench_upsample(args) -> int:
    from drivesim.bench.upsample import bench_upsample, format_rows

    rows = bench_upsample(
        tuple(args.tiles), args.frames, tuple(args.lengths), args.steps, args.model, args.threads
    )
    print(format_rows(rows))
    return 0


def cmd_bench_dataloader(args) -> int:
    from drivesim.bench.dataloader import bench_dataloader, format_rows

    rows = bench_dataloader(
        args.catalog,
        tuple(args.workers),
        args.batch_size,
        args.num_frames,
        args.fps,
        args.size,
        args.stride,
        args.epochs,
    )
    print(format_rows(rows))
    return 0


def register(subparsers) -> None:
    """`bench world | rollout | upsample | unet | decode | dataloader`."""
    bench = subparsers.add_parser("bench", help="speed and memory benchmarks")
    sub = bench.add_subparsers(dest="bench_command", required=True)

    world = sub.add_parser("world", help="procedural renderer frames/s")
    world.add_argument(
        "--sizes", type=resolution, nargs="+", default=[(128, 256), (512, 1024)], help="HEIGHTxWIDTH ..."
    )
    world.add_argument(
        "--frames", type=int, default=param_default(bench_world, "frames"), help="frames per clip"
    )
    world.add_argument(
        "--seeds", type=int, default=param_default(bench_world, "seeds"), help="clips per time of day"
    )
    world.set_defaults(func=cmd_bench_world)

    ro = sub.add_parser("rollout", help="rollout peak memory and s/frame vs length")
    ro.add_argument("--segments", type=int, nargs="+", default=list(param_default(bench_rollout, "segments")))
    ro.add_argument("--steps", type=int, default=param_default(bench_rollout, "steps"))
    ro.add_argument(
        "--interpolation-steps", type=int, default=param_default(bench_rollout, "interpolation_steps")
    )
    ro.add_argument("--scenario", default=param_default(bench_rollout, "scenario"))
    add_model(ro)
    ro.add_argument("--threads", type=int, default=param_default(bench_rollout, "threads"))
    ro.add_argument(
        "--upsampler", default=param_default(bench_rollout, "upsampler"), choices=["none", "bicubic", "model"]
    )
    ro.set_defaults(func=cmd_bench_rollout)

    from drivesim.bench.cascade import PATHS, bench_cascade

    ca = sub.add_parser(
        "cascade",
        help="the whole cascade at the scenario's resolution (512x1024): s/frame by stage and peak "
        "memory, reference vs fast paths side by side (each in a fresh process)",
    )
    ca.add_argument(
        "--paths", nargs="+", choices=list(PATHS), default=list(param_default(bench_cascade, "paths"))
    )
    ca.add_argument("--scenario", default=param_default(bench_cascade, "scenario"))
    ca.add_argument("--seconds", type=float, default=param_default(bench_cascade, "seconds"))
    ca.add_argument("--steps", type=int, default=param_default(bench_cascade, "steps"))
    ca.add_argument(
        "--interpolation-steps", type=int, default=param_default(bench_cascade, "interpolation_steps")
    )
    add_model(ca)
    ca.add_argument("--threads", type=int, default=param_default(bench_cascade, "threads"))
    ca.add_argument("--device", default=param_default(bench_cascade, "device"), help="cpu or cuda[:N]")
    ca.set_defaults(func=cmd_bench_cascade)

    from drivesim.bench.upsample import bench_upsample

    up = sub.add_parser(
        "upsample",
        help="upsampler s/frame and peak memory vs tile size and clip length: "
        "bicubic, image and video upsampler",
    )
    up.add_argument("--tiles", type=int, nargs="+", default=list(param_default(bench_upsample, "tiles")))
    up.add_argument("--frames", type=int, default=param_default(bench_upsample, "frames"))
    up.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=list(param_default(bench_upsample, "lengths")),
        help="clip lengths for the memory-vs-length rows",
    )
    up.add_argument("--steps", type=int, default=None, help="denoising steps (default: the upsampler's)")
    add_model(up)
    up.add_argument("--threads", type=int, default=param_default(bench_upsample, "threads"))
    up.set_defaults(func=cmd_bench_upsample)

    unet = sub.add_parser("unet", help="our video UNet vs diffusers' SVD UNet")
    unet.add_argument("--batch", type=int, default=param_default(bench_unet, "batch"))
    unet.add_argument("--frames", type=int, default=param_default(bench_unet, "frames"))
    unet.add_argument(
        "--latent",
        type=latent_size,
        help="HxW latent",
        default=(param_default(bench_unet, "height"), param_default(bench_unet, "width")),
    )
    unet.add_argument("--repeats", type=int, default=param_default(bench_unet, "repeats"))
    unet.add_argument("--threads", type=int, default=param_default(bench_unet, "threads"))
    unet.set_defaults(func=cmd_bench_unet)

    decode = sub.add_parser("decode", help="chunked temporal decoding: memory vs length")
    decode.add_argument(
        "--lengths", type=int, nargs="+", default=list(param_default(bench_decode, "lengths"))
    )
    decode.add_argument("--chunk", type=int, default=param_default(bench_decode, "chunk"))
    decode.add_argument("--threads", type=int, default=param_default(bench_decode, "threads"))
    decode.add_argument(
        "--full-up-to",
        type=int,
        default=param_default(bench_decode, "full_up_to"),
        help="also decode whole clips at once up to this length",
    )
    decode.set_defaults(func=cmd_bench_decode)

    from drivesim.bench.dataloader import bench_dataloader

    dl = sub.add_parser("dataloader", help="DataLoader clips/s from a catalog (map-style and stream)")
    dl.add_argument("catalog", help="catalog folder")
    dl.add_argument(
        "--workers", type=int, nargs="+", default=list(param_default(bench_dataloader, "workers"))
    )
    dl.add_argument("--batch-size", type=int, default=param_default(bench_dataloader, "batch_size"))
    dl.add_argument("--num-frames", type=int, default=param_default(bench_dataloader, "num_frames"))
    dl.add_argument("--fps", type=float, default=param_default(bench_dataloader, "fps"))
    dl.add_argument("--size", type=resolution, default=param_default(bench_dataloader, "size"), help="HxW")
    dl.add_argument(
        "--stride",
        type=float,
        default=param_default(bench_dataloader, "stride_s"),
        help="seconds between clip windows",
    )
    dl.add_argument("--epochs", type=int, default=param_default(bench_dataloader, "epochs"))
    dl.set_defaults(func=cmd_bench_dataloader)
