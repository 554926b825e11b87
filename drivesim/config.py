"""Compose the hydra config tree (drivesim/configs) with command-line overrides."""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf


def load_config(overrides: list[str] | None = None, config_name: str = "config") -> dict[str, Any]:
    """Hydra-compose `config_name` with overrides like ['data=udacity', 'data.fps=7.5'] -> dict."""
    with initialize_config_module("drivesim.configs", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides or []))
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
