"""Fine-tuning the shipped models on a new world or new footage: the image backbone on its own,
then the temporal layers reused on it, and a temporal decoder's temporal layers carried over to a
fine-tuned image decoder. Untrained tiny models, a few steps each."""

import pytest
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


def test_widen_latent_decodes_as_before_and_trains_the_new_channels(tmp_path):
    """A widened autoencoder (4 -> 6 latent channels) maps every frame exactly as the original;
    one training step from it (init_from + widen_latent) then uses the new channels."""
    from conftest import TINY_AE, perturb

    from drivesim.models.autoencoder import AutoencoderKL
    from drivesim.models.autoencoder_widen import widen_latent
    from drivesim.models.model_index import load_part

    ae = AutoencoderKL(TINY_AE).eval()
    perturb(ae)
    wide = widen_latent(ae, 6, torch.Generator().manual_seed(0)).eval()
    x = torch.rand(2, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        before, after = ae.encode(x), wide.encode(x)
        assert torch.allclose(wide.decode(after.mode()), ae.decode(before.mode()), atol=1e-5)
        assert torch.allclose(after.mean[:, :4], before.mean, atol=1e-5)
        assert after.mean[:, 4:].abs().sum() > 0  # new features, read through zero weights
    with pytest.raises(ValueError, match="already has 6"):
        widen_latent(wide, 4)

    trained = widened_autoencoder(tmp_path, one_step_autoencoder(tmp_path / "ae"), steps=2)
    tuned = load_part(str(trained), "autoencoder", AutoencoderKL)
    assert tuned.cfg.latent_channels == 6
    assert tuned.decoder.conv_in.weight[:, 4:].abs().sum() > 0  # the decoder now reads them


def test_latent_cache_mixes_in_real_footage(tmp_path):
    """latents.real_root adds every real clip (stride real_stride_s) after the world's clips, with
    its own conditions (here the test clip has no labels: boxes unknown)."""
    from pathlib import Path

    from drivesim.train.latent_cache import LatentClipDataset, cache_metadata
    from drivesim.train.ldm import ensure_latent_cache

    ae = one_step_autoencoder(tmp_path / "ae")
    real = Path(__file__).parent / "data" / "udacity_240-289_640x360.mp4"
    cfg = LatentCacheConfig(
        path=str(tmp_path / "lat.safetensors"),
        autoencoder=str(ae),
        clips=2,
        num_frames=3,
        size=(64, 128),
        real_root=str(real),
        real_stride_s=1.0,
    )
    data = LatentClipDataset(ensure_latent_cache(cfg))
    real_clips = int(cache_metadata(cfg.path)["real_clips"])
    assert real_clips >= 1 and len(data) == 2 + real_clips
    assert data.tensors["boxes_known"][:2].all() and not data.tensors["boxes_known"][2:].any()


@pytest.mark.parametrize("context_channels", [0, 8])
def test_widen_unet_denoises_old_inputs_as_before(context_channels):
    """4 -> 6 latent channels and 1 -> 6 box classes: on a scene of cars, the old channels come
    out exactly as before whatever the new input channels hold; the new outputs start at zero."""
    import dataclasses

    from conftest import perturb

    from conditioners.context import Context, leading_mask
    from drivesim.models.unet import VideoUNet
    from drivesim.models.unet_widen import widen_unet
    from tests.test_video_ldm_core import H, T, W, conditions

    old = VideoUNet(dataclasses.replace(TINY_UNET, context_channels=context_channels)).eval()
    perturb(old)
    cfg = dataclasses.replace(old.cfg, in_channels=6, out_channels=6, box_classes=6)
    wide = widen_unet(old, cfg).eval()
    x = torch.randn(2, T, 4, H, W, generator=torch.Generator().manual_seed(0))
    extra = torch.randn(2, T, 2, H, W, generator=torch.Generator().manual_seed(1))
    cond, t = conditions(2), torch.tensor([10, 500])
    ctx = lambda lat: Context(lat, leading_mask(2, T, 1), torch.zeros(2, dtype=torch.long))
    with torch.no_grad():
        before = old(x, t, cond, context=ctx(x) if context_channels else None)
        wide_x = torch.cat([x, extra], dim=2)
        after = wide(wide_x, t, cond, context=ctx(wide_x) if context_channels else None)
    assert torch.allclose(after[:, :, :4], before, atol=1e-4)
    assert after[:, :, 4:].abs().max() == 0
    with pytest.raises(ValueError, match="only in_channels, out_channels, box_classes may differ"):
        widen_unet(old, dataclasses.replace(cfg, layers_per_block=2))
    with pytest.raises(ValueError, match="smaller than the checkpoint's"):
        widen_unet(wide, old.cfg)


def test_widen_init_grows_a_trained_ldm_onto_a_widened_autoencoder(tmp_path):
    """The whole path: a 4-channel AE and image LDM, the AE widened to 6 channels, then image and
    prediction stages from the 4-channel checkpoints with widen_init (6 classes too); the latent
    scale is the new cache's, and the prediction run takes the image run's."""
    import dataclasses

    ae = one_step_autoencoder(tmp_path / "ae")
    small = dict(clips=2, num_frames=3, size=(64, 128))
    lat4 = LatentCacheConfig(path=str(tmp_path / "l4.safetensors"), autoencoder=str(ae), **small)

    def run(name: str, **kw):
        cfg = dict(latents=lat4, unet=TINY_UNET, batch_size=1, lr=1e-2, steps=1) | kw
        return train_ldm(LDMTrainConfig(out_dir=str(tmp_path / name), **cfg), progress=False)

    video4 = run("v4", stage="video", init_from=str(run("i4")))
    wide_ae = str(widened_autoencoder(tmp_path, ae))
    lat6 = LatentCacheConfig(path=str(tmp_path / "l6.safetensors"), autoencoder=wide_ae, **small)
    unet6 = dataclasses.replace(TINY_UNET, in_channels=6, out_channels=6, box_classes=6)
    wide = dict(init_from=str(video4), widen_init=True, latents=lat6, unet=unet6)
    image6 = run("i6", **wide)
    pred6 = run("p6", stage="prediction", spatial_from=str(image6), context_channels=8, **wide)
    assert read_config(image6)["unet"]["in_channels"] == 6 and read_config(pred6)["unet"]["box_classes"] == 6
    assert read_config(image6)["latent_scale"] != read_config(video4)["latent_scale"]
    assert read_config(pred6)["latent_scale"] == read_config(image6)["latent_scale"]
    other = LatentCacheConfig(path=str(tmp_path / "o6.safetensors"), autoencoder=wide_ae, seed=7, **small)
    video6 = run("v6", stage="video", init_from=str(image6), widen_init=True, latents=other, unet=unet6)
    assert read_config(video6)["latent_scale"] == read_config(image6)["latent_scale"]  # nothing grew: kept
    with pytest.raises(ValueError, match="use the same unet config"):  # without widen_init: refused
        run("x", **(wide | {"widen_init": False}))


def widened_autoencoder(tmp_path, init, steps: int = 1):
    """`init` (a 4-channel AE checkpoint) widened to 6 latent channels and trained `steps` steps."""
    from drivesim.train.autoencoder import AETrainConfig, train_autoencoder

    cfg = AETrainConfig(
        out_dir=str(tmp_path / "ae6"),
        init_from=str(init),
        widen_latent=6,
        steps=steps,
        batch_size=1,
        lr=1e-2,
        crop=(32, 64),
        size=(64, 128),
    )
    return train_autoencoder(cfg, progress=False)
