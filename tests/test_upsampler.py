"""The 4x upsampler: tiling, streaming, noise-level conditioning, inflation and training (all
models here are untrained, with random weights so that every path has an effect)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import REPO

from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.models.upsampler import UpsamplerConfig, UpsamplerUNet
from drivesim.pipelines.tiling import tile_starts, tiled
from drivesim.pipelines.upsample import (
    StreamingUpsampler,
    Upsampler,
    UpsampleSettings,
    bicubic_upsample,
    upsample_video,
)

SMALL = UpsamplerConfig(scale=2, channels=(8, 8), blocks=(1, 1), temporal=(True, False), embed_dim=16)


def random_model(cfg: UpsamplerConfig = SMALL, seed: int = 0) -> UpsamplerUNet:
    """Untrained, with every weight random (zero-initialised temporal outputs included)."""
    torch.manual_seed(seed)
    model = UpsamplerUNet(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.2)
    return model


def run(model, x, low, t=500, level=20, image_only=False):
    with torch.no_grad():
        return model(x, low, torch.tensor([t]), torch.tensor([level]), image_only=image_only)


def test_tiled_equals_untiled():
    model = random_model()
    x, low = torch.randn(1, 2, 3, 32, 256), torch.randn(1, 2, 3, 16, 128)
    full = run(model, x, low)

    def fn(a, b):
        return run(model, a, b)

    # Margins of the receptive radius: every pixel comes from a tile that saw all its inputs.
    exact = tiled(fn, x, low, 2, 128, 2 * SMALL.receptive_radius, 0, SMALL.size_multiple)
    torch.testing.assert_close(exact, full, atol=1e-4, rtol=1e-4)
    blended = tiled(fn, x, low, 2, 128, 64, 32, SMALL.size_multiple)  # cheap default-like overlap
    assert (blended - full).abs().mean() < 0.05 * full.abs().mean()
    assert len(tile_starts(256, 128, 64, 4)) > 2


def test_receptive_radius_bounds_the_reach():
    model = random_model()
    x, low = torch.randn(1, 1, 3, 64, 512), torch.randn(1, 1, 3, 32, 256)
    bumped = x.clone()
    bumped[..., 32, 256] += 10
    changed = (run(model, bumped, low) - run(model, x, low)).abs().amax(dim=(0, 1, 2)) > 0
    cols = changed.any(0).nonzero().flatten()
    assert cols.numel() and max(256 - int(cols.min()), int(cols.max()) - 256) <= SMALL.receptive_radius


def test_noise_level_changes_the_output():
    model = random_model()
    x, low = torch.randn(1, 1, 3, 32, 64), torch.randn(1, 1, 3, 16, 32)
    assert not torch.allclose(run(model, x, low, level=0), run(model, x, low, level=250), atol=1e-3)
    settings = UpsampleSettings(steps=2, noise_level=0)
    a = Upsampler(model, ScheduleConfig(), settings=settings)(low.clamp(-1, 1), seed=1)
    b = Upsampler(model, ScheduleConfig(), settings=dataclasses.replace(settings, noise_level=250))(
        low.clamp(-1, 1), seed=1
    )
    assert a.shape == (1, 1, 3, 32, 64) and not torch.allclose(a, b, atol=1e-3)


def test_zero_initialised_temporal_layers_give_the_image_model():
    image = random_model()
    with torch.no_grad():  # an image-stage model never trains its temporal outputs: zero them
        for name, p in image.named_parameters():
            if name.startswith("temporal.") and ("conv1" in name):
                p.zero_()
    video = UpsamplerUNet.from_image_model(image)
    x, low = torch.randn(1, 4, 3, 32, 64), torch.randn(1, 4, 3, 16, 32)
    torch.testing.assert_close(run(video, x, low), run(image, x, low, image_only=True), atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        video.temporal["0"].conv1.weight.normal_(std=0.2)
    assert not torch.allclose(run(video, x, low), run(image, x, low, image_only=True), atol=1e-3)


def test_streaming_equals_the_whole_clip():
    model = random_model()
    schedule = ScheduleConfig(frame_correlation=0.3)
    low = torch.rand(1, 11, 3, 16, 64) * 2 - 1
    settings = UpsampleSettings(steps=2, tile=64, overlap=32, blend=16, chunk=2)
    whole = Upsampler(model, schedule, settings=dataclasses.replace(settings, chunk=100))(low, seed=3)
    stream = StreamingUpsampler(Upsampler(model, schedule, settings=settings), seed=3)
    assert stream.radius == SMALL.temporal_radius * settings.steps
    parts = [stream.push(low[:, :4]), stream.push(low[:, 4:7]), stream.push(low[:, 7:]), stream.flush()]
    out = torch.cat([p for p in parts if p.numel()], 1)
    torch.testing.assert_close(out, whole, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        upsample_video(low, "model", Upsampler(model, schedule, settings=settings), seed=3),
        whole,
        atol=1e-4,
        rtol=1e-4,
    )


def test_bicubic_and_method_names():
    low = torch.rand(2, 3, 3, 8, 16) * 2 - 1
    assert bicubic_upsample(low).shape == (2, 3, 3, 32, 64)
    assert upsample_video(low, "none") is low
    with pytest.raises(ValueError, match="use one of"):
        upsample_video(low, "lanczos")
    with pytest.raises(ValueError, match="noise_level=2000"):
        UpsampleSettings(noise_level=2000)
    with pytest.raises(ValueError, match="multiples of 4"):
        run(random_model(), torch.randn(1, 1, 3, 30, 64), torch.randn(1, 1, 3, 15, 32))


def test_train_image_then_video_stage_and_load(tmp_path):
    from drivesim.models.model_index import load_part
    from drivesim.train.upsampler import UpsamplerTrainConfig, train_upsampler
    from drivesim.train.upsampler_data import HighResCacheConfig

    cache = HighResCacheConfig(dir=str(tmp_path / "cache"), clips=2, num_frames=3, size=(64, 128), scale=2)
    base = UpsamplerTrainConfig(
        upsampler=SMALL,
        cache=cache,
        crop=(32, 64),
        steps=2,
        batch_size=2,
        log_every=1,
        save_every=1,
        num_frames=3,
    )
    image = train_upsampler(dataclasses.replace(base, out_dir=str(tmp_path / "image")), progress=False)
    video_dir = str(tmp_path / "video")
    video_cfg = dataclasses.replace(
        base,
        stage="video",
        init_from=str(image),
        out_dir=video_dir,
        schedule=ScheduleConfig(frame_correlation=0.5),
    )
    video = train_upsampler(video_cfg, progress=False)
    train_upsampler(dataclasses.replace(video_cfg, steps=3), progress=False)  # resumes at step 2
    rows = (tmp_path / "video" / "loss.csv").read_text().split()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    image_model, video_model = load_part(image, "upsampler"), load_part(video, "upsampler")
    spatial = [k for k in image_model.state_dict() if not k.startswith("temporal.")]
    assert all(torch.equal(image_model.state_dict()[k], video_model.state_dict()[k]) for k in spatial)
    up = Upsampler.from_pretrained(video, UpsampleSettings(steps=1))
    assert not up.image_only and up.schedule.frame_correlation == 0.5
    assert up(torch.zeros(1, 2, 3, 16, 32)).shape == (1, 2, 3, 32, 64)
    with pytest.raises(ValueError, match="cache built with"):
        train_upsampler(
            dataclasses.replace(
                base, cache=dataclasses.replace(cache, clips=3), out_dir=str(tmp_path / "other")
            ),
            progress=False,
        )


@pytest.mark.slow
def test_bench_upsample_rows(tmp_path):
    from conftest import TINY_AE, save_upsampler

    from drivesim.bench.upsample import bench_upsample, format_rows
    from drivesim.models.autoencoder import AutoencoderKL
    from drivesim.models.weights import save_checkpoint

    save_checkpoint(AutoencoderKL(TINY_AE), tmp_path / "autoencoder", {"autoencoder": TINY_AE.to_dict()})
    save_upsampler(tmp_path)
    rows = bench_upsample(tiles=(256,), frames=2, lengths=(2, 3), steps=1, model_dir=str(tmp_path), threads=1)
    assert [(r["variant"], r["frames"]) for r in rows] == [
        ("bicubic", 2),
        ("image", 2),
        ("video", 2),
        ("video", 3),
        ("latent_decode", 4),
    ]
    assert rows[1]["temporal_radius"] == 0 and rows[2]["temporal_radius"] == 1  # one temporal level, 1 step
    assert all(r["s_per_frame"] > 0 and r["peak_mib"] > 0 for r in rows)
    assert "x bicubic" in format_rows(rows)


REAL_CLIP = REPO / "tests" / "data" / "udacity_240-289_640x360.mp4"


def test_cache_takes_real_clips(tmp_path):
    from drivesim.train.upsampler_data import HighResCacheConfig, ensure_highres_cache

    cfg = HighResCacheConfig(
        dir=str(tmp_path),
        clips=1,
        num_frames=2,
        size=(64, 128),
        autoencoder=None,
        real_root=str(REAL_CLIP),
        real_clips=2,
    )
    cache = ensure_highres_cache(cfg, progress=False)
    assert cache["high"].shape == (3, 2, 64, 128, 3) and cache["high"][1:].any()
    assert ensure_highres_cache(cfg, progress=False)["high"].shape[0] == 3  # reopened, not rebuilt


def test_profiles_match_their_yaml_and_the_paper_one_builds_on_meta():
    from omegaconf import OmegaConf

    from drivesim.models.upsampler import upsampler_config

    def profile(name: str) -> UpsamplerConfig:
        path = REPO / "drivesim" / "configs" / "upsampler" / f"{name}.yaml"
        return upsampler_config(OmegaConf.to_container(OmegaConf.load(path)))

    assert profile("tiny") == UpsamplerConfig() and profile("paper") == UpsamplerConfig.paper()
    with torch.device("meta"):
        paper = UpsamplerUNet(UpsamplerConfig.paper())
    params = lambda model: sum(p.numel() for p in model.parameters())
    assert params(paper) > 20 * params(UpsamplerUNet(UpsamplerConfig()))
    assert UpsamplerConfig.paper().size_multiple == 32


def test_motion_weight_adds_a_frame_difference_term():
    from drivesim.diffusion.schedule import training_scheduler
    from drivesim.train.upsampler import UpsamplerTrainConfig, upsampler_loss

    model = random_model()
    high, low = torch.randn(2, 3, 3, 32, 64), torch.randn(2, 3, 3, 16, 32)

    def loss(weight):
        cfg = UpsamplerTrainConfig(stage="video", upsampler=SMALL, motion_weight=weight)
        with torch.no_grad():
            return float(
                upsampler_loss(
                    model, training_scheduler(cfg.schedule), high, low, cfg, torch.Generator().manual_seed(0)
                )
            )

    base, one, two = loss(0.0), loss(1.0), loss(2.0)
    assert one > base
    assert two - base == pytest.approx(2 * (one - base), rel=1e-4)
