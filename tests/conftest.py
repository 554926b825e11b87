"""Shared test fixtures and the tiny model configs every test builds (one place)."""

from pathlib import Path

import pytest

from drivesim.models.autoencoder import AutoencoderConfig
from drivesim.models.unet import UNetConfig
from drivesim.models.upsampler import UpsamplerConfig

REPO = Path(__file__).resolve().parents[1]

# Untrained test models: small enough for CPU tests, same code paths as the tiny profile.
TINY_AE = AutoencoderConfig(block_out_channels=(16, 16, 32, 32), norm_num_groups=8)
TINY_UNET = UNetConfig(block_out_channels=(32, 64), cross_attention=(False, True), cross_attention_dim=32,
                       attention_head_dim=16, norm_num_groups=8, temporal_heads=2)
TINY_UPSAMPLER = UpsamplerConfig(channels=(8, 8), blocks=(1, 1), temporal=(True, False), embed_dim=16)


def save_upsampler(folder: Path, stage: str = "video") -> None:
    """An untrained tiny upsampler as part 'upsampler' of a model folder."""
    from drivesim.models.upsampler import UpsamplerUNet
    from drivesim.models.weights import save_checkpoint

    save_checkpoint(UpsamplerUNet(TINY_UPSAMPLER), folder / "upsampler",
                    {"upsampler": TINY_UPSAMPLER.to_dict(), "schedule": {}, "stage": stage, "step": 0})


@pytest.fixture
def repo() -> Path:
    return REPO
