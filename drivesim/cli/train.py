"""`drivesim train MODEL [overrides]`: hydra config `train_*` + overrides (e.g. steps=100 device=cuda);
the same command under `torchrun` trains on every rank (drivesim/train/distributed.py)."""

from __future__ import annotations

# model -> (module, config dataclass, train function, hydra config name)
TRAINERS = {
    "autoencoder": ("drivesim.train.autoencoder", "AETrainConfig", "train_autoencoder", "train_autoencoder"),
    "image-ldm": ("drivesim.train.ldm", "LDMTrainConfig", "train_ldm", "train_image_ldm"),
    "video-ldm": ("drivesim.train.ldm", "LDMTrainConfig", "train_ldm", "train_video_ldm"),
    "prediction": ("drivesim.train.ldm", "LDMTrainConfig", "train_ldm", "train_prediction"),
    "interpolation": ("drivesim.train.ldm", "LDMTrainConfig", "train_ldm", "train_interpolation"),
    "upsampler": ("drivesim.train.upsampler", "UpsamplerTrainConfig", "train_upsampler", "train_upsampler"),
    "probes": ("drivesim.train.probes", "ProbeTrainConfig", "train_probes", "train_probes"),
}


def cmd_train(args) -> int:
    import importlib
    import os

    from drivesim.config import load_config, to_dataclass

    module_name, config_class, train_fn, config_name = TRAINERS[args.model]
    module = importlib.import_module(module_name)
    cfg = to_dataclass(getattr(module, config_class), load_config(args.overrides, config_name))
    path = getattr(module, train_fn)(cfg, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        print(f"trained: {path}")
    return 0


def register(subparsers) -> None:
    """`train MODEL [overrides]`."""
    train = subparsers.add_parser("train", help="train a model (hydra config + overrides, e.g. device=cuda)")
    train.add_argument("model", choices=list(TRAINERS))
    train.add_argument(
        "overrides", nargs="*", help="hydra overrides, e.g. steps=100 stage=temporal device=cuda"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)
