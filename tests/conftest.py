"""Shared test fixtures and the tiny model configs every test builds (one place)."""

import os
from pathlib import Path

import pytest

from drivesim.models.autoencoder import AutoencoderConfig
from drivesim.models.unet import UNetConfig
from drivesim.models.upsampler import UpsamplerConfig

REPO = Path(__file__).resolve().parents[1]
NO_SKIPS = os.environ.get("DRIVESIM_NO_SKIPS") == "1"  # CI (.ci/run): a skipped test fails the run
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(f"{report.nodeid}: {report.longrepr[-1] if report.longrepr else ''}")


def pytest_sessionfinish(session, exitstatus):
    if _skipped:
        print(f"\nDRIVESIM_NO_SKIPS=1 and {len(_skipped)} test(s) skipped:", *_skipped, sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# Untrained test models: small enough for CPU tests, same code paths as the tiny profile.
TINY_AE = AutoencoderConfig(block_out_channels=(16, 16, 32, 32), norm_num_groups=8)
TINY_UNET = UNetConfig(
    block_out_channels=(32, 64),
    cross_attention=(False, True),
    cross_attention_dim=32,
    attention_head_dim=16,
    norm_num_groups=8,
    temporal_heads=2,
)
TINY_UPSAMPLER = UpsamplerConfig(channels=(8, 8), blocks=(1, 1), temporal=(True, False), embed_dim=16)


def save_upsampler(folder: Path, stage: str = "video") -> None:
    """An untrained tiny upsampler as part 'upsampler' of a model folder."""
    from drivesim.models.upsampler import UpsamplerUNet
    from drivesim.models.weights import save_checkpoint

    save_checkpoint(
        UpsamplerUNet(TINY_UPSAMPLER),
        folder / "upsampler",
        {"upsampler": TINY_UPSAMPLER.to_dict(), "schedule": {}, "stage": stage, "step": 0},
    )


@pytest.fixture
def repo() -> Path:
    return REPO


def tiny_ae_config(out_dir: Path, **overrides):
    """An AETrainConfig of TINY_AE on 64x128 frames (32x64 crops), one step of batch 1 unless overridden;
    stage="temporal" also gets 3-frame clips."""
    from drivesim.train.autoencoder import AETrainConfig

    clips = {"num_frames": 3} if overrides.get("stage") == "temporal" else {}
    base = dict(
        out_dir=str(out_dir), autoencoder=TINY_AE, steps=1, batch_size=1, crop=(32, 64), size=(64, 128)
    )
    return AETrainConfig(**(base | clips | overrides))


def one_step_autoencoder(out_dir: Path, batch_size: int = 1) -> Path:
    """A TINY_AE image autoencoder trained one step on 64x128 frames (untrained in effect)."""
    from drivesim.train.autoencoder import train_autoencoder

    return train_autoencoder(tiny_ae_config(out_dir, batch_size=batch_size), progress=False)


def perturb(model, scale: float = 0.05) -> None:
    """Random non-zero weights everywhere (zero-initialised layers would hide bugs)."""
    import torch

    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)


def save_cascade(folder: Path, upsampler: bool = False, perturbed: bool = False) -> Path:
    """A model folder of untrained tiny parts (key frames, prediction, interpolation, temporal
    decoder; the upsampler if asked): fast, same code paths as the shipped models. perturbed:
    random non-zero weights everywhere (zero-initialised output layers make every frame alike)."""
    import torch

    from drivesim.models.autoencoder import AutoencoderKL
    from drivesim.models.temporal_decoder import TemporalDecoder
    from drivesim.models.unet import VideoUNet
    from drivesim.models.weights import save_checkpoint

    torch.manual_seed(0)
    ae = AutoencoderKL(TINY_AE)
    video = VideoUNet(TINY_UNET)
    predict = VideoUNet.with_context(video, context_channels=8)
    td = TemporalDecoder.from_image_autoencoder(ae)
    if perturbed:
        for model in (ae, td, video, predict):
            perturb(model)
    save_checkpoint(ae, folder / "autoencoder", {"autoencoder": TINY_AE.to_dict()})
    save_checkpoint(td, folder / "temporal_decoder", {"autoencoder": TINY_AE.to_dict()})
    meta = {"latent_scale": 1.0, "step": 0, "train_config": {"schedule": {}}}
    save_checkpoint(video, folder / "unet", {"unet": video.cfg.to_dict(), **meta})
    for name in ("prediction", "interpolation"):
        save_checkpoint(predict, folder / name, {"unet": predict.cfg.to_dict(), **meta})
    if upsampler:
        save_upsampler(folder)
    return folder
