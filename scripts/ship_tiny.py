"""Copy trained tiny checkpoints from runs/ into drivesim/assets/tiny as fp16 safetensors.

Usage: .venv/bin/python scripts/ship_tiny.py [--version tiny-YYYYMMDD] [--only unet prediction ...]
The probes of `drivesim eval report` go to drivesim/assets/eval.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import torch

from drivesim.models.autoencoder import load_autoencoder
from drivesim.models.probes import BoxProbe, ClipProbe, probe_config
from drivesim.models.temporal_decoder import load_temporal_decoder
from drivesim.models.unet import VideoUNet, unet_config
from drivesim.models.weights import load_checkpoint, read_config, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {
    "autoencoder": ROOT / "runs/autoencoder/image/final",
    "temporal_decoder": ROOT / "runs/autoencoder/temporal2/final",
    "unet": ROOT / "runs/ldm/video2/last",  # raw weights: lower held-out loss than the EMA
    "prediction": ROOT / "runs/ldm/prediction3/ema",
    "interpolation": ROOT / "runs/ldm/interpolation3/ema",
    "clip": ROOT / "runs/probes/clip",
    "box": ROOT / "runs/probes/box",
}
PROBES = ("clip", "box")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default=f"tiny-{datetime.date.today():%Y%m%d}")
    parser.add_argument("--out", type=Path, default=ROOT / "drivesim/assets/tiny")
    parser.add_argument("--only", nargs="*", choices=list(SOURCES), default=list(SOURCES))
    args = parser.parse_args()
    unet = lambda p: load_checkpoint(p, lambda c: VideoUNet(unet_config(c["unet"])))
    loaders = {"autoencoder": load_autoencoder, "temporal_decoder": load_temporal_decoder,
               "unet": unet, "prediction": unet, "interpolation": unet,
               "clip": lambda p: load_checkpoint(p, lambda c: ClipProbe(probe_config(c["probe"]))),
               "box": lambda p: load_checkpoint(p, lambda c: BoxProbe(probe_config(c["probe"])))}
    latent_scale = read_config(SOURCES["unet"])["latent_scale"]
    for name in args.only:
        src = SOURCES[name]
        model = loaders[name](src)
        config = read_config(src)
        if isinstance(config.get("autoencoder"), dict):  # the calibrated latent scale travels with the AE
            config["autoencoder"]["scaling_factor"] = latent_scale
        config.pop("format_version", None)
        config.pop("dtype", None)
        config["model_version"] = f"{args.version}/{name}"
        config["trained_from"] = str(src.relative_to(ROOT))
        out = args.out.parent / "eval" if name in PROBES else args.out
        path = save_checkpoint(model, out / name, config, dtype=torch.float16)
        print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
