"""GPU smoke check: the shipped tiny pipeline samples on CUDA and every LDM stage trains there.

Usage: .venv/bin/python scripts/gpu_smoke.py [--device cuda] [--work /tmp/drivesim_gpu_smoke]
Loads drivesim/assets/tiny (model_index.json), moves it to the device, generates a 4-frame clip
(bf16 autocast on CUDA), then runs 3 training steps of the image, video, prediction and
interpolation LDM stages on the device from a 4-clip latent cache. Exits 2 with a message on a
machine without CUDA (run with --device cpu to check the same code there).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from drivesim.config import load_config, to_dataclass
from drivesim.pipelines.cascade import Cascade
from drivesim.pipelines.scenario_conditions import scenario_conditions
from drivesim.scenario import load_scenario
from drivesim.train.ldm import LDMTrainConfig, train_ldm
from drivesim.utils import DEFAULT_MODEL_DIR

ROOT = Path(__file__).resolve().parents[1]
STAGES = {
    "image": "train_image_ldm",
    "video": "train_video_ldm",
    "prediction": "train_prediction",
    "interpolation": "train_interpolation",
}  # LDM stage -> hydra config, each from the one before


def generate(device: str, steps: int) -> None:
    """A 4-frame clip from the shipped model on `device`; checks shape, range and device."""
    pipe = Cascade.from_pretrained(
        DEFAULT_MODEL_DIR, key_model="unet", interpolation=False, device=device
    ).key_model
    scenario = load_scenario(ROOT / "scenarios" / "day_box_track.yaml")
    size = pipe.output_size((16, 32))
    cond, _ = scenario_conditions(scenario, 4, 7.5, size)
    start = time.perf_counter()
    out = pipe(cond, 4, latent_size=(16, 32), steps=steps, seed=scenario.seed)
    assert out.frames.shape == (1, 4, 3, *size), out.frames.shape
    assert out.frames.device.type == torch.device(device).type, out.frames.device
    assert torch.isfinite(out.frames).all() and out.frames.abs().max() <= 1
    print(
        f"generate: 4 frames {tuple(size)} on {out.frames.device} in {time.perf_counter() - start:.1f} s, "
        f"mean {out.frames.mean():.3f}"
    )


def train(device: str, work: Path) -> None:
    """3 steps of each LDM stage on `device`, each stage initialised from the previous one."""
    autoencoder = str(DEFAULT_MODEL_DIR / "autoencoder")
    init = None
    for stage, config_name in STAGES.items():
        overrides = [
            f"device={device}",
            "steps=3",
            "batch_size=2",
            "save_every=3",
            "log_every=1",
            f"out_dir={work / stage}",
            f"latents.path={work / 'latents.safetensors'}",
            "latents.clips=4",
            f"latents.autoencoder={autoencoder}",
        ]
        if init:
            overrides.append(f"init_from={init}")
        if stage == "interpolation":
            overrides += [
                f"fast_latents.path={work / 'latents_30fps.safetensors'}",
                "fast_latents.clips=4",
                f"fast_latents.autoencoder={autoencoder}",
            ]
        cfg = to_dataclass(LDMTrainConfig, load_config(overrides, config_name))
        start = time.perf_counter()
        init = train_ldm(cfg, progress=False)
        loss = (work / stage / "loss.csv").read_text().strip().splitlines()[-1]
        print(f"train {stage}: 3 steps on {device} in {time.perf_counter() - start:.1f} s, last row {loss}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=4, help="sampling steps of the 4-frame clip")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_smoke: no CUDA device on this machine; nothing to check here "
            "(run with --device cpu to exercise the same code on the CPU)",
            file=sys.stderr,
        )
        return 2
    if torch.device(args.device).type == "cuda":
        print(f"device: {torch.cuda.get_device_name()} (torch {torch.__version__})")
    work = args.work or Path(tempfile.mkdtemp(prefix="drivesim_gpu_smoke_"))
    generate(args.device, args.steps)
    train(args.device, work)
    print("gpu smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
