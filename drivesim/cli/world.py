"""`drivesim world render`: procedural clips to mp4 + label JSON."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from drivesim.cli.common import add_quiet, field_default, resolution
from drivesim.data.conditions import CROWDEDNESS, TIME_OF_DAY
from drivesim.world import WorldSpec


def _world_jobs(args) -> list[tuple[str, WorldSpec]]:
    """(clip id, WorldSpec) for each clip the `world render` arguments ask for."""
    from drivesim.scenario import load_scenario, scenario_files

    jobs = []
    if args.scenario:
        for path in scenario_files(args.scenario):
            scenario = load_scenario(path)
            spec = scenario.to_world_spec()
            if args.resolution:
                spec = type(spec)(**{**vars(spec), "height": args.resolution[0], "width": args.resolution[1]})
            jobs.append((scenario.id, spec))
        return jobs
    h, w = args.resolution or (field_default(WorldSpec, "height"), field_default(WorldSpec, "width"))
    for i in range(args.num_clips):
        seed = args.seed + i
        tod = args.time_of_day or TIME_OF_DAY[seed % 2]
        crowd = args.crowdedness or CROWDEDNESS[(seed // 2) % len(CROWDEDNESS)]
        spec = WorldSpec(
            time_of_day=tod,
            crowdedness=crowd,
            num_frames=args.frames,
            fps=args.fps,
            height=h,
            width=w,
            seed=seed,
            walkers=args.walkers,
        )
        jobs.append((f"world_{tod}_{crowd}_seed{seed}" + ("_walkers" if args.walkers else ""), spec))
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
        print(
            f"wrote {len(todo)} clip(s), {total} frames in {seconds:.1f} s "
            f"({total / seconds:.1f} frames/s) to {args.out}"
        )
    return 0


def register(subparsers) -> None:
    """`world render`."""
    world = subparsers.add_parser("world", help="the procedural driving world")
    world_sub = world.add_subparsers(dest="world_command", required=True)
    render = world_sub.add_parser("render", help="render procedural clips to mp4 + label JSON")
    render.add_argument("--scenario", help="a scenario YAML file or a folder of them")
    render.add_argument("--out", required=True, type=Path, help="output folder")
    render.add_argument("--num-clips", type=int, default=4, help="random clips (no --scenario)")
    render.add_argument("--seed", type=int, default=0, help="first seed of random clips")
    render.add_argument("--time-of-day", choices=TIME_OF_DAY, help="fix time of day (random clips)")
    render.add_argument(
        "--walkers", action="store_true", help="people walking on the sidewalks (random clips)"
    )
    render.add_argument("--crowdedness", choices=CROWDEDNESS, help="fix crowdedness (random clips)")
    render.add_argument(
        "--frames", type=int, default=field_default(WorldSpec, "num_frames"), help="frames per random clip"
    )
    render.add_argument("--fps", type=float, default=field_default(WorldSpec, "fps"))
    render.add_argument("--resolution", type=resolution, help="HEIGHTxWIDTH, overrides scenarios")
    render.add_argument("--overwrite", action="store_true", help="re-render complete clips")
    add_quiet(render, "no progress bar")
    render.set_defaults(func=cmd_world_render)
