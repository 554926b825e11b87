"""The `drivesim` command: parse arguments, resolve configs, call the library."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from drivesim.data.conditions import CROWDEDNESS, TIME_OF_DAY


def _height_width(text: str, example: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write HEIGHTxWIDTH, e.g. {example}") from None
    return h, w


def _resolution(text: str) -> tuple[int, int]:
    h, w = _height_width(text, "128x256")
    if h % 8 or w % 8:
        raise argparse.ArgumentTypeError(f"resolution {text!r}: height and width must be multiples of 8")
    return h, w


def _world_jobs(args) -> list[tuple[str, object]]:
    """(clip id, WorldSpec) for each clip the `world render` arguments ask for."""
    from drivesim.scenario import load_scenario, scenario_files
    from drivesim.world import WorldSpec

    jobs = []
    if args.scenario:
        for path in scenario_files(args.scenario):
            scenario = load_scenario(path)
            spec = scenario.to_world_spec()
            if args.resolution:
                spec = type(spec)(**{**vars(spec), "height": args.resolution[0],
                                     "width": args.resolution[1]})
            jobs.append((scenario.id, spec))
        return jobs
    h, w = args.resolution or (128, 256)
    for i in range(args.num_clips):
        seed = args.seed + i
        tod = args.time_of_day or TIME_OF_DAY[seed % 2]
        crowd = args.crowdedness or CROWDEDNESS[(seed // 2) % len(CROWDEDNESS)]
        spec = WorldSpec(time_of_day=tod, crowdedness=crowd, num_frames=args.frames, fps=args.fps,
                         height=h, width=w, seed=seed)
        jobs.append((f"world_{tod}_{crowd}_seed{seed}", spec))
    return jobs


def cmd_world_render(args) -> int:
    from drivesim.export.world_clips import is_complete, write_world_clip

    jobs = _world_jobs(args)
    todo = [(cid, spec) for cid, spec in jobs if args.overwrite or not is_complete(args.out, cid)]
    if len(todo) < len(jobs):
        print(f"skipping {len(jobs) - len(todo)} complete clip(s) in {args.out} (--overwrite to redo)")
    start = time.perf_counter()
    total = sum(spec.num_frames for _, spec in todo)
    with tqdm(total=total, unit="frame", desc="render", disable=args.quiet) as bar:
        for cid, spec in todo:
            bar.set_postfix_str(cid)
            video, labels = write_world_clip(spec, args.out, cid, bar)
            if args.quiet:
                continue
            tqdm.write(f"{video}  {labels}")
    seconds = time.perf_counter() - start
    if total:
        print(f"wrote {len(todo)} clip(s), {total} frames in {seconds:.1f} s "
              f"({total / seconds:.1f} frames/s) to {args.out}")
    return 0


def cmd_generate(args) -> int:
    from drivesim.pipelines.generate import DEFAULT_MODEL_DIR, GenerateOptions, generate_scenarios

    options = GenerateOptions(sampler=args.sampler, steps=args.steps,
                              guidance_scene=args.guidance_scene, guidance_boxes=args.guidance_boxes,
                              max_frames=args.max_frames, overwrite=args.overwrite,
                              frame_correlation=args.frame_correlation,
                              guidance_rescale=args.guidance_rescale)
    start = time.perf_counter()
    paths = generate_scenarios(args.scenario, args.out, options, args.model or DEFAULT_MODEL_DIR,
                               progress=not args.quiet)
    for p in paths:
        print(p)
    print(f"generated {len(paths)} clip(s) in {time.perf_counter() - start:.0f} s -> {args.out}")
    return 0


def cmd_rollout(args) -> int:
    import json
    import math

    from drivesim.pipelines.generate import DEFAULT_MODEL_DIR
    from drivesim.pipelines.rollout import RolloutConfig
    from drivesim.pipelines.rollout_job import run_rollout
    from drivesim.scenario import load_scenario

    seed = args.seed if args.seed is not None else load_scenario(args.scenario).seed
    key_fps = 7.5
    if args.segments:
        segments = args.segments
    else:  # K key frames give 4K-3 output frames at 30 fps (K without interpolation)
        out_frames = math.ceil(args.seconds * key_fps * (1 if args.no_interpolate else 4))
        keys = out_frames if args.no_interpolate else math.ceil((out_frames + 3) / 4)
        segments = max(1, math.ceil(keys / args.new_frames))
    cfg = RolloutConfig(segments=segments, new_frames=args.new_frames, context_frames=args.context_frames,
                        interpolate=not args.no_interpolate, steps=args.steps,
                        interpolation_steps=args.interpolation_steps, guidance_context=args.guidance_context,
                        frame_correlation=args.frame_correlation, seed=seed,
                        prediction_strength=args.prediction_strength,
                        interpolation_strength=args.interpolation_strength)
    crowd = args.crowdedness.split(",") if args.crowdedness else None
    meta = run_rollout(args.scenario, args.out, cfg, args.model or DEFAULT_MODEL_DIR, crowd,
                       progress=not args.quiet, decode_chunk=args.decode_chunk)
    diag = {k: v for k, v in meta["diagnostics"].items() if k != "segments"}
    print(json.dumps(diag, indent=2))
    print(f"{meta['frames']} frames at {meta['fps']:g} fps -> {args.out}/{meta['scenario_id']}.mp4")
    return 0


def cmd_eval_denoising(args) -> int:
    from drivesim.eval.denoising import denoising_report
    from drivesim.pipelines.generate import DEFAULT_MODEL_DIR

    report = denoising_report(args.model or str(DEFAULT_MODEL_DIR), args.cache_dir, args.clips,
                              progress=not args.quiet)
    for name, loss in report.items():
        print(f"{loss:.5f}  {name}")
    return 0


def cmd_eval_context(args) -> int:
    from drivesim.eval.context_use import context_use_report
    from drivesim.pipelines.generate import DEFAULT_MODEL_DIR

    report = context_use_report(args.model or str(DEFAULT_MODEL_DIR),
                                tuple(float(s) for s in args.strengths.split(",")), args.cache_dir,
                                args.clips, args.steps, args.interpolation_steps, args.guidance_context,
                                progress=not args.quiet)
    for name, metrics in report.items():
        print(f"{name:<20} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return 0


def cmd_eval_autoencoder(args) -> int:
    import json

    from drivesim.eval.autoencoder import evaluate_autoencoder

    report = evaluate_autoencoder(args.autoencoder, args.temporal_decoder, args.clips, args.frames,
                                  progress=not args.quiet)
    print(json.dumps(report, indent=2))
    return 0


def cmd_eval_samples(args) -> int:
    import json

    from drivesim.diffusion.guidance import GuidanceScales
    from drivesim.eval.samples import time_of_day_report
    from drivesim.pipelines.video_ldm import VideoLDMPipeline
    from drivesim.utils import DEFAULT_MODEL_DIR

    pipe = VideoLDMPipeline.from_pretrained(args.model or DEFAULT_MODEL_DIR)
    report = time_of_day_report(pipe, args.clips, args.frames, args.steps,
                                GuidanceScales(args.guidance_scene, args.guidance_boxes,
                                               rescale=args.guidance_rescale),
                                progress=not args.quiet, seeds=args.seeds, montage=args.montage)
    print(json.dumps(report, indent=2))
    return 0


def cmd_eval_report(args) -> int:
    from drivesim.config import load_config, to_dataclass
    from drivesim.eval.report import EvalConfig, run_eval

    cfg = to_dataclass(EvalConfig, load_config(args.overrides, "eval"))
    report = run_eval(cfg, progress=not args.quiet)
    print(Path(cfg.out, "report.md").read_text())
    print(f"report: {cfg.out}/report.json ({report['seconds']:.0f} s)")
    return 0


def cmd_scenario_validate(args) -> int:
    from drivesim.scenario import ScenarioError, load_scenario, scenario_files

    failed = 0
    for target in args.paths:
        try:
            files = scenario_files(target)
        except ScenarioError as e:
            print(e, file=sys.stderr)
            failed += 1
            continue
        for path in files:
            try:
                s = load_scenario(path)
                print(f"ok  {path}: {s.id} ({s.time_of_day}, {s.crowdedness}, {s.num_frames} frames "
                      f"@ {s.fps:g} fps, {s.output.resolution[0]}x{s.output.resolution[1]}, "
                      f"{len(s.agents)} agent(s))")
            except ScenarioError as e:
                print(e, file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def cmd_data_inspect(args) -> int:

    from drivesim.config import load_config
    from drivesim.data.build import build_dataset, data_config

    cfg = data_config(load_config(args.overrides)["data"])
    dataset = build_dataset(cfg)
    print(f"{type(dataset).__name__}: {len(dataset)} items  ({cfg})")
    for i in range(min(args.samples, len(dataset))):
        start = time.perf_counter()
        frames, cond = dataset[i]
        ms = (time.perf_counter() - start) * 1000
        n_boxes = int(cond["box_mask"].sum())
        print(f"[{i}] frames {tuple(frames.shape)} {frames.dtype} range "
              f"[{frames.min():.2f}, {frames.max():.2f}]  time_of_day={int(cond['time_of_day'])} "
              f"crowdedness={int(cond['crowdedness'])} boxes_known={bool(cond['boxes_known'])} "
              f"boxes={n_boxes}  {ms:.0f} ms")
    return 0


def cmd_bench_world(args) -> int:
    from drivesim.bench.world import bench_world, format_rows

    print(format_rows(bench_world(args.sizes, args.frames, args.seeds)))
    return 0


def cmd_bench_unet(args) -> int:
    from drivesim.bench.unet import bench_unet, format_rows

    rows = bench_unet(args.batch, args.frames, args.latent[0], args.latent[1], args.repeats,
                      args.threads)
    shape = f"[{args.batch},{args.frames},4,{args.latent[0]},{args.latent[1]}]"
    print(format_rows(rows, shape))
    return 0


def cmd_bench_decode(args) -> int:
    from drivesim.bench.decode import bench_decode, decoder_params, format_rows

    rows = bench_decode(tuple(args.lengths), args.chunk, args.threads, args.full_up_to)
    print(format_rows(rows, decoder_params()))
    return 0


def cmd_bench_rollout(args) -> int:
    from drivesim.bench.rollout import bench_rollout, format_rows

    print(format_rows(bench_rollout(tuple(args.segments), args.steps, args.interpolation_steps, args.model,
                                    args.scenario, args.threads)))
    return 0


def _latent_size(text: str) -> tuple[int, int]:
    return _height_width(text, "16x32")


# model -> (module, config dataclass, train function, hydra config name)
TRAINERS = {
    "autoencoder": ("drivesim.train.autoencoder", "AETrainConfig", "train_autoencoder", "train_autoencoder"),
    "image-ldm": ("drivesim.train.ldm", "LDMTrainConfig", "train_ldm", "train_image_ldm"),
    "video-ldm": ("drivesim.train.ldm", "LDMTrainConfig", "train_ldm", "train_video_ldm"),
    "prediction": ("drivesim.train.ldm", "LDMTrainConfig", "train_ldm", "train_prediction"),
    "interpolation": ("drivesim.train.ldm", "LDMTrainConfig", "train_ldm", "train_interpolation"),
    "probes": ("drivesim.train.probes", "ProbeTrainConfig", "train_probes", "train_probes"),
}


def cmd_train(args) -> int:
    import importlib

    from drivesim.config import load_config, to_dataclass

    module_name, config_class, train_fn, config_name = TRAINERS[args.model]
    module = importlib.import_module(module_name)
    cfg = to_dataclass(getattr(module, config_class), load_config(args.overrides, config_name))
    path = getattr(module, train_fn)(cfg, progress=not args.quiet)
    print(f"trained: {path}")
    return 0


def _held_out_args(parser: argparse.ArgumentParser, clips: int) -> None:
    """--model, --cache-dir, --clips and --quiet of the held-out evaluations."""
    parser.add_argument("--model", default=None, help="model folder (default: the shipped tiny model)")
    parser.add_argument("--cache-dir", default="runs/latents", help="where held-out latent caches are built")
    parser.add_argument("--clips", type=int, default=clips)
    parser.add_argument("--quiet", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drivesim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    world = sub.add_parser("world", help="the procedural driving world")
    world_sub = world.add_subparsers(dest="world_command", required=True)
    render = world_sub.add_parser("render", help="render procedural clips to mp4 + label JSON")
    render.add_argument("--scenario", help="a scenario YAML file or a folder of them")
    render.add_argument("--out", required=True, type=Path, help="output folder")
    render.add_argument("--num-clips", type=int, default=4, help="random clips (no --scenario)")
    render.add_argument("--seed", type=int, default=0, help="first seed of random clips")
    render.add_argument("--time-of-day", choices=TIME_OF_DAY, help="fix time of day (random clips)")
    render.add_argument("--crowdedness", choices=CROWDEDNESS, help="fix crowdedness (random clips)")
    render.add_argument("--frames", type=int, default=60, help="frames per random clip")
    render.add_argument("--fps", type=float, default=30.0)
    render.add_argument("--resolution", type=_resolution, help="HEIGHTxWIDTH, overrides scenarios")
    render.add_argument("--overwrite", action="store_true", help="re-render complete clips")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=cmd_world_render)

    gen = sub.add_parser("generate", help="generate clips for scenario files with the video LDM")
    gen.add_argument("--scenario", required=True, help="a scenario YAML file or a folder of them")
    gen.add_argument("--out", required=True, type=Path, help="output folder")
    gen.add_argument("--model", help="model folder (default: the shipped tiny model)")
    gen.add_argument("--sampler", default="dpmpp", choices=["ddim", "dpmpp", "euler"])
    gen.add_argument("--steps", type=int, default=20)
    gen.add_argument("--guidance-scene", type=float, default=3.0, help="CFG scale, time of day + crowdedness")
    gen.add_argument("--guidance-boxes", type=float, default=2.0, help="CFG scale, boxes")
    gen.add_argument("--max-frames", type=int, default=16, help="key frames per clip (7.5 fps)")
    gen.add_argument("--frame-correlation", type=float, default=None,
                     help="shared part of the starting noise across frames (default: the noise prior "
                          "the model trained with; 0 = independent)")
    gen.add_argument("--guidance-rescale", type=float, default=0.7, help="CFG rescale phi (0 = off)")
    gen.add_argument("--overwrite", action="store_true")
    gen.add_argument("--quiet", action="store_true")
    gen.set_defaults(func=cmd_generate)

    ro = sub.add_parser("rollout", help="a long clip from one scenario: prediction segments, interpolation "
                                        "to 30 fps, streamed to disk, resumable")
    ro.add_argument("scenario", help="scenario YAML file")
    ro.add_argument("--out", required=True, help="output folder")
    ro.add_argument("--seconds", type=float, default=10.0, help="length (sets --segments)")
    ro.add_argument("--segments", type=int, default=None)
    ro.add_argument("--new-frames", type=int, default=6, help="key frames added per segment")
    ro.add_argument("--context-frames", type=int, default=2, choices=[1, 2])
    ro.add_argument("--steps", type=int, default=20)
    ro.add_argument("--interpolation-steps", type=int, default=10)
    ro.add_argument("--guidance-context", type=float, default=1.5, help="1 = no context guidance")
    ro.add_argument("--no-interpolate", action="store_true", help="key frames only (7.5 fps)")
    ro.add_argument("--frame-correlation", type=float, default=None,
                    help="shared part of the starting noise across frames (default: the noise prior "
                         "the model trained with; 0 = independent)")
    ro.add_argument("--prediction-strength", type=float, default=0.7,
                    help="new key frames start from the last context frame noised this far (1 = pure noise)")
    ro.add_argument("--interpolation-strength", type=float, default=0.5,
                    help="interpolated frames start from the blend of their key frames noised this far "
                         "(1 = pure noise)")
    ro.add_argument("--decode-chunk", type=int, default=7,
                    help="frames per temporal-decoder call: larger is faster and needs more memory; "
                         "the frames are the same")
    ro.add_argument("--crowdedness", default=None, help="per segment, comma-separated (last repeats), "
                                                        "e.g. light,moderate,crowded")
    ro.add_argument("--seed", type=int, default=None, help="default: the scenario's seed")
    ro.add_argument("--model", default=None, help="model folder (default: the shipped tiny model)")
    ro.add_argument("--quiet", action="store_true")
    ro.set_defaults(func=cmd_rollout)

    ev = sub.add_parser("eval", help="evaluation reports")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)
    ev_ae = ev_sub.add_parser("autoencoder", help="PSNR + flicker, image vs temporal decoder")
    ev_ae.add_argument("--autoencoder", required=True, help="image AE checkpoint prefix")
    ev_ae.add_argument("--temporal-decoder", help="temporal decoder checkpoint prefix")
    ev_ae.add_argument("--clips", type=int, default=16)
    ev_ae.add_argument("--frames", type=int, default=16)
    ev_ae.add_argument("--quiet", action="store_true")
    ev_ae.set_defaults(func=cmd_eval_autoencoder)
    ev_s = ev_sub.add_parser("samples", help="day/night pairs (same layout and seed): luma night/day")
    ev_s.add_argument("--model", help="model folder (default: the shipped tiny model)")
    ev_s.add_argument("--clips", type=int, default=4)
    ev_s.add_argument("--seeds", type=int, nargs="+", default=None,
                      help="sampling seed per pair (default: 0..clips-1)")
    ev_s.add_argument("--montage", default=None, help="write a PNG of the middle frames with boxes")
    ev_s.add_argument("--guidance-rescale", type=float, default=0.7)
    ev_s.add_argument("--frames", type=int, default=8)
    ev_s.add_argument("--steps", type=int, default=20)
    ev_s.add_argument("--guidance-scene", type=float, default=3.0)
    ev_s.add_argument("--guidance-boxes", type=float, default=2.0)
    ev_s.add_argument("--quiet", action="store_true")
    ev_s.set_defaults(func=cmd_eval_samples)
    ev_d = ev_sub.add_parser("denoising", help="held-out eps-MSE of image/video/prediction/interpolation "
                                              "models (fixed noise)")
    _held_out_args(ev_d, clips=32)
    ev_d.set_defaults(func=cmd_eval_denoising)
    ev_c = ev_sub.add_parser("context", help="held-out check that prediction / interpolation sampling "
                                            "follows real known frames, per SDEdit start strength")
    _held_out_args(ev_c, clips=8)
    ev_c.add_argument("--strengths", default="1,0.8,0.5", help="comma-separated, 1 = pure noise")
    ev_c.add_argument("--steps", type=int, default=12)
    ev_c.add_argument("--interpolation-steps", type=int, default=6)
    ev_c.add_argument("--guidance-context", type=float, default=1.5)
    ev_c.set_defaults(func=cmd_eval_context)
    ev_r = ev_sub.add_parser("report", help="metrics report of real / reconstructed / generated sets "
                                           "(hydra config 'eval' + overrides)")
    ev_r.add_argument("overrides", nargs="*", help="hydra overrides, e.g. real.clips=32 fid_weights=...")
    ev_r.add_argument("--quiet", action="store_true", help="no progress bars")
    ev_r.set_defaults(func=cmd_eval_report)

    scenario = sub.add_parser("scenario", help="scenario YAML files")
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True)
    validate = scenario_sub.add_parser("validate", help="check scenario files, explain errors")
    validate.add_argument("paths", nargs="+", help="files or folders")
    validate.set_defaults(func=cmd_scenario_validate)

    data = sub.add_parser("data", help="datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    inspect = data_sub.add_parser("inspect", help="build a dataset from hydra config, print samples")
    inspect.add_argument("overrides", nargs="*", help="hydra overrides, e.g. data=udacity data.fps=7.5")
    inspect.add_argument("--samples", type=int, default=2)
    inspect.set_defaults(func=cmd_data_inspect)

    train = sub.add_parser("train", help="train a model (hydra config + overrides)")
    train.add_argument("model", choices=list(TRAINERS))
    train.add_argument("overrides", nargs="*", help="hydra overrides, e.g. steps=100 stage=temporal")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    bench = sub.add_parser("bench", help="speed and memory benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    bench_world = bench_sub.add_parser("world", help="procedural renderer frames/s")
    bench_world.add_argument("--sizes", type=_resolution, nargs="+",
                             default=[(128, 256), (512, 1024)], help="HEIGHTxWIDTH ...")
    bench_world.add_argument("--frames", type=int, default=90, help="frames per clip")
    bench_world.add_argument("--seeds", type=int, default=2, help="clips per time of day")
    bench_world.set_defaults(func=cmd_bench_world)
    bench_ro = bench_sub.add_parser("rollout", help="rollout peak memory and s/frame vs length")
    bench_ro.add_argument("--segments", type=int, nargs="+", default=[1, 5, 20])
    bench_ro.add_argument("--steps", type=int, default=20)
    bench_ro.add_argument("--interpolation-steps", type=int, default=10)
    bench_ro.add_argument("--scenario", default="scenarios/day_light_highway.yaml")
    bench_ro.add_argument("--model", default=None, help="model folder (default: the shipped tiny model)")
    bench_ro.add_argument("--threads", type=int, default=2)
    bench_ro.set_defaults(func=cmd_bench_rollout)
    bench_unet = bench_sub.add_parser("unet", help="our video UNet vs diffusers' SVD UNet")
    bench_unet.add_argument("--batch", type=int, default=2)
    bench_unet.add_argument("--frames", type=int, default=8)
    bench_unet.add_argument("--latent", type=_latent_size, default=(16, 32), help="HxW latent")
    bench_unet.add_argument("--repeats", type=int, default=3)
    bench_unet.add_argument("--threads", type=int, default=2)
    bench_unet.set_defaults(func=cmd_bench_unet)
    bench_decode = bench_sub.add_parser("decode", help="chunked temporal decoding: memory vs length")
    bench_decode.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
    bench_decode.add_argument("--chunk", type=int, default=16)
    bench_decode.add_argument("--threads", type=int, default=2)
    bench_decode.add_argument("--full-up-to", type=int, default=64,
                              help="also decode whole clips at once up to this length")
    bench_decode.set_defaults(func=cmd_bench_decode)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `drivesim` console script."""
    from drivesim.scenario import ScenarioError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ScenarioError as e:
        print(e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; complete clips are kept, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
