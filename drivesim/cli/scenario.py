"""`drivesim scenario validate`: check scenario files, explain errors."""

from __future__ import annotations

import sys


def cmd_scenario_validate(args) -> int:
    from drivesim.scenario import ScenarioError, load_scenario, scenario_files
    from drivesim.scenario_expand import expand, unique_clips

    failed = 0
    all_clips = []
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
                expanded = expand(s, str(path))
                all_clips += expanded
                clips = len(expanded)
                print(
                    f"ok  {path}: {s.id} ({s.time_of_day}, {s.crowdedness}, {s.num_frames} frames "
                    f"@ {s.fps:g} fps, {s.output.resolution[0]}x{s.output.resolution[1]}, "
                    f"{len(s.agents)} agent(s)" + (f", {clips} clips" if clips > 1 else "") + ")"
                )
            except ScenarioError as e:
                print(e, file=sys.stderr)
                failed += 1
    try:
        unique_clips(all_clips)  # what `drivesim generate` would refuse across files
    except ScenarioError as e:
        print(e, file=sys.stderr)
        failed += 1
    return 1 if failed else 0


def register(subparsers) -> None:
    """`scenario validate`."""
    scenario = subparsers.add_parser("scenario", help="scenario YAML files")
    sub = scenario.add_subparsers(dest="scenario_command", required=True)
    validate = sub.add_parser("validate", help="check scenario files, explain errors")
    validate.add_argument("paths", nargs="+", help="files or folders")
    validate.set_defaults(func=cmd_scenario_validate)
