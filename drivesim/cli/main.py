"""The `drivesim` command: parse arguments, resolve configs, call the library.

Override style per command family: `train`, `eval report` and `data inspect` take hydra
overrides (key=value, e.g. steps=100 device=cuda); every other command takes flags whose
defaults come from the library's config dataclasses and function signatures."""

from __future__ import annotations

import argparse
import sys

from drivesim.cli import (
    augment,
    bench,
    catalog,
    data,
    generate,
    label,
    preview,
    rollout,
    scenario,
    train,
    world,
)
from drivesim.cli import eval as evaluate  # the `eval` command group
from drivesim.cli.common import configure_logging

COMMAND_GROUPS = (
    world,
    scenario,
    generate,
    rollout,
    catalog,
    augment,
    preview,
    train,
    evaluate,
    bench,
    data,
    label,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command group (each module's register(subparsers))."""
    parser = argparse.ArgumentParser(
        prog="drivesim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `drivesim` console script."""
    from drivesim.data.catalog import CatalogError
    from drivesim.runtime import tune_allocator
    from drivesim.scenario import ScenarioError

    args = build_parser().parse_args(argv)
    configure_logging()
    tune_allocator()  # faster CPU inference at the same peak memory (drivesim/runtime.py)
    try:
        return args.func(args)
    except (ScenarioError, CatalogError) as e:
        print(e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; complete clips are kept, re-run to resume", file=sys.stderr)
        return 130
