"""Argument helpers shared by the command modules: defaults read from config dataclasses and
function signatures (never retyped), resolution parsing, and the common flags."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import sys
from collections.abc import Callable
from typing import Any


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass field `name` of `cls` (default or default_factory())."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise ValueError(f"{cls.__name__}.{name} has no default")


def param_default(fn: Callable, name: str) -> Any:
    """The default of parameter `name` of function `fn`."""
    default = inspect.signature(fn).parameters[name].default
    if default is inspect.Parameter.empty:
        raise ValueError(f"{fn.__qualname__}({name}) has no default")
    return default


def height_width(text: str, example: str) -> tuple[int, int]:
    """'HxW' -> (H, W), or an argparse error that shows `example`."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write HEIGHTxWIDTH, e.g. {example}") from None
    return h, w


def resolution(text: str) -> tuple[int, int]:
    """'HxW' frame size, multiples of 8."""
    h, w = height_width(text, "128x256")
    if h % 8 or w % 8:
        raise argparse.ArgumentTypeError(f"resolution {text!r}: height and width must be multiples of 8")
    return h, w


def latent_size(text: str) -> tuple[int, int]:
    """'hxw' latent size."""
    return height_width(text, "16x32")


def add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model folder (default: the shipped tiny model)")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]; bf16 autocast on CUDA")


def add_detector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detector",
        default=None,
        help="YOLOX-nano ONNX file (default: $DRIVESIM_DETECTOR, else "
        "../shared/detectors/yolox_nano.onnx beside the repository)",
    )


def add_road_band(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--road-band",
        action="store_true",
        help="also detect on overlapping tiles of the road band (rows 35-85%%): finds small and "
        "night cars, about 4x slower",
    )


def add_json(parser: argparse.ArgumentParser, what: str = "report") -> None:
    parser.add_argument("--json", default=None, help=f"also write the {what} to this JSON file")


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bars") -> None:
    parser.add_argument("--quiet", action="store_true", help=help)


class _StderrHandler(logging.StreamHandler):
    """Writes to the current sys.stderr (which tests and tqdm may swap)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """drivesim's library logs (INFO and up by default) -> stderr as plain lines."""
    logger = logging.getLogger("drivesim")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
