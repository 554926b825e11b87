"""The `drivesim` command line: one module per command group, each with register(subparsers)."""

from drivesim.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
