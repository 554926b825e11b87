"""Hydra config root (compose with drivesim.config.load_config)."""
