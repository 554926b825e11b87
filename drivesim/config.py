"""Compose the hydra config tree (drivesim/configs) with command-line overrides."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, cast

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf


def load_config(overrides: list[str] | None = None, config_name: str = "config") -> dict[str, Any]:
    """Hydra-compose `config_name` with overrides like ['data=udacity', 'data.fps=7.5'] -> dict."""
    with initialize_config_module("drivesim.configs", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides or []))
    return cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))


def to_dataclass(cls, values: dict[str, Any], where: str = ""):
    """Build dataclass `cls` from a resolved config mapping: nested dataclasses recursively,
    lists to tuples; unknown keys raise ValueError naming the key and the allowed ones."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where or cls.__name__}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    kwargs = {}
    for key, value in values.items():
        hint = _dataclass_in(hints[key])
        if hint is not None and isinstance(value, dict):
            value = to_dataclass(hint, value, f"{where}.{key}" if where else key)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _dataclass_in(hint):
    """The dataclass type of a field hint (`X` or `X | None`), else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    return next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), None)
