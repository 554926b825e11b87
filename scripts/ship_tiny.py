"""Copy trained tiny checkpoints from runs/ into drivesim/assets/tiny as fp16 safetensors.

Usage: .venv/bin/python scripts/ship_tiny.py [--version tiny-YYYYMMDD] [--only unet prediction ...]
Round 4 (tiny-20261128-r4) shipped: --only temporal_decoder unet prediction interpolation (the
autoencoder and the probes are unchanged since tiny-20261124); the upsampler joined with
--only upsampler.
Round 6 (tiny-20261128-r6): --only temporal_decoder prediction clip box, with --source
temporal_decoder=runs/autoencoder/td_joint/final prediction=runs/ldm/prediction3/ema
clip=runs/probes_recon2/clip box=runs/probes_recon2/box.
Round 7 (tiny-20261128-r7): --only temporal_decoder upsampler, with --source
temporal_decoder=runs/autoencoder/td_w8/avg3 (the mean of steps 2500, 2600, 2700; now
average_last=3 in scripts/train_tiny.sh) upsampler=runs/upsampler/video_m5/ema (video stage
at motion_weight 5).
The probes of `drivesim eval report` go to drivesim/assets/eval.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import torch

from drivesim.models.model_index import load_part, parts_on_disk, write_model_index
from drivesim.models.weights import read_config, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {
    "autoencoder": ROOT / "runs/autoencoder/image/final",
    "temporal_decoder": ROOT / "runs/autoencoder/temporal3/final",
    "unet": ROOT / "runs/ldm/video/ema",
    "prediction": ROOT / "runs/ldm/prediction/ema",
    "interpolation": ROOT / "runs/ldm/interpolation/ema",
    "upsampler": ROOT / "runs/upsampler/video/ema",
    "clip": ROOT / "runs/probes/clip",
    "box": ROOT / "runs/probes/box",
}
PROBES = ("clip", "box")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default=f"tiny-{datetime.date.today():%Y%m%d}")
    parser.add_argument("--out", type=Path, default=ROOT / "drivesim/assets/tiny")
    parser.add_argument("--only", nargs="*", choices=list(SOURCES), default=list(SOURCES))
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PART=PREFIX",
        help="take PART from this checkpoint prefix (relative to the repo) instead",
    )
    args = parser.parse_args()
    sources = dict(SOURCES)
    for item in args.source:
        name, sep, prefix = item.partition("=")
        if not sep or name not in SOURCES:
            parser.error(f"--source {item!r}: write PART=PREFIX with PART one of {', '.join(SOURCES)}")
        sources[name] = ROOT / prefix
    for name in args.only:
        src = sources[name]
        model = load_part(src, name)
        config = read_config(src)
        if isinstance(config.get("autoencoder"), dict):  # the calibrated latent scale travels with the AE
            config["autoencoder"]["scaling_factor"] = read_config(sources["unet"])["latent_scale"]
        config.pop("format_version", None)
        config.pop("dtype", None)
        config["model_version"] = f"{args.version}/{name}"
        config["trained_from"] = str(src.relative_to(ROOT))
        out = args.out.parent / "eval" if name in PROBES else args.out
        path = save_checkpoint(model, out / name, config, dtype=torch.float16)
        print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")
    for folder, kind in ((args.out, "Cascade"), (args.out.parent / "eval", "ProbeSet")):
        parts = parts_on_disk(folder)
        if parts:
            print(write_model_index(folder, parts, kind))


if __name__ == "__main__":
    main()
