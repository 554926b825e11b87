"""Fine-tuning the shipped models on a new world or new footage: the image backbone on its own,
then the temporal layers reused on it, and a temporal decoder's temporal layers carried over to a
fine-tuned image decoder. Untrained tiny models, a few steps each."""

import torch
from conftest import TINY_UNET, one_step_autoencoder

from drivesim.models.temporal_layers import is_temporal
from drivesim.models.weights import read_config, read_tensors
from drivesim.train.ldm import LatentCacheConfig, LDMTrainConfig, train_ldm


def test_image_finetune_keeps_temporal_layers_and_spatial_from_swaps_the_backbone(tmp_path):
    """Image stage from a video checkpoint trains its spatial layers only and keeps its latent
    scale; a prediction run with spatial_from takes that backbone and keeps its temporal layers."""
    ae = one_step_autoencoder(tmp_path / "ae")
    latents = LatentCacheConfig(
        path=str(tmp_path / "lat.safetensors"), autoencoder=str(ae), clips=2, num_frames=3, size=(64, 128)
    )
    common = dict(latents=latents, unet=TINY_UNET, batch_size=1, lr=1e-2)
    image = train_ldm(LDMTrainConfig(out_dir=str(tmp_path / "img"), steps=1, **common), progress=False)
    video = train_ldm(
        LDMTrainConfig(stage="video", init_from=str(image), out_dir=str(tmp_path / "vid"), steps=1, **common),
        progress=False,
    )
    other = LatentCacheConfig(**{**latents.__dict__, "path": str(tmp_path / "other.safetensors"), "seed": 5})
    tuned = train_ldm(
        LDMTrainConfig(
            **{**common, "latents": other}, init_from=str(video), out_dir=str(tmp_path / "tune"), steps=2
        ),
        progress=False,
    )
    assert read_config(tuned)["latent_scale"] == read_config(video)["latent_scale"]  # the init's
    before = read_tensors(f"{video}.safetensors")
    after = read_tensors(str(tmp_path / "tune" / "last.safetensors"))
    assert all(torch.equal(after[k], v) for k, v in before.items() if is_temporal(k))
    assert any(not torch.equal(after[k], v) for k, v in before.items() if not is_temporal(k))

    pred = train_ldm(
        LDMTrainConfig(
            stage="prediction",
            init_from=str(video),
            spatial_from=str(tmp_path / "tune" / "last"),
            context_channels=8,
            out_dir=str(tmp_path / "p"),
            steps=1,
            **common,
        ),
        progress=False,
    )
    swapped = read_tensors(f"{pred}.safetensors")
    assert all(torch.equal(swapped[k], v) for k, v in after.items() if not is_temporal(k))
