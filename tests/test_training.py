"""A few steps of each training entry point on tiny untrained models (no quality claims)."""

import csv

import torch
from conftest import TINY_UNET, one_step_autoencoder, tiny_ae_config

from drivesim.config import load_config, to_dataclass
from drivesim.models.autoencoder import AutoencoderConfig
from drivesim.models.temporal_layers import is_temporal
from drivesim.models.unet import UNetConfig
from drivesim.models.weights import read_config, read_tensors
from drivesim.train.autoencoder import AETrainConfig, train_autoencoder
from drivesim.train.ldm import LatentCacheConfig, LDMTrainConfig, train_ldm


def tiny_ldm_config(out_dir, latents: LatentCacheConfig, **overrides) -> LDMTrainConfig:
    """A TINY_UNET LDM stage on `latents`, one step of batch 1 unless overridden."""
    return LDMTrainConfig(
        **(dict(latents=latents, unet=TINY_UNET, steps=1, batch_size=1) | overrides), out_dir=str(out_dir)
    )


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_autoencoder_then_ldm_stages(tmp_path):
    ae_cfg = tiny_ae_config(tmp_path / "ae", steps=3, batch_size=2, disc_start=1, log_every=1, save_every=2)
    ae = train_autoencoder(ae_cfg, progress=False)
    assert [int(r["step"]) for r in rows(tmp_path / "ae" / "loss.csv")] == [1, 2, 3]
    temporal = train_autoencoder(
        tiny_ae_config(
            tmp_path / "td", stage="temporal", init_from=str(ae), steps=2, disc_start=0, log_every=1
        ),
        progress=False,
    )
    before, after = read_tensors(f"{ae}.safetensors"), read_tensors(f"{temporal}.safetensors")
    for k, v in after.items():  # spatial decoder weights of the temporal decoder are untouched
        if not is_temporal(k):
            assert torch.equal(v, before[k]), k

    latents = LatentCacheConfig(
        path=str(tmp_path / "lat.safetensors"), autoencoder=str(ae), clips=3, num_frames=3, size=(64, 128)
    )
    image = tiny_ldm_config(tmp_path / "img", latents, steps=2, batch_size=2, log_every=1, save_every=1)
    image_ckpt = train_ldm(image, progress=False)
    assert read_config(image_ckpt)["latent_scale"] > 0
    video = tiny_ldm_config(
        tmp_path / "vid",
        latents,
        stage="video",
        init_from=str(image_ckpt),
        steps=2,
        log_every=1,
        save_every=1,
    )
    video_ckpt = train_ldm(video, progress=False)
    spatial_before = read_tensors(f"{image_ckpt}.safetensors")
    last = read_tensors(str(tmp_path / "vid" / "last.safetensors"))
    for k, v in last.items():
        if not is_temporal(k):
            assert torch.equal(v, spatial_before[k]), k  # checksums: spatial frozen
    # Resume: asking for more steps continues from the saved step, no duplicate log rows.
    train_ldm(LDMTrainConfig(**{**video.__dict__, "steps": 3}), progress=False)
    assert [int(r["step"]) for r in rows(tmp_path / "vid" / "loss.csv")] == [1, 2, 3]
    assert read_config(video_ckpt)["step"] == 3


def test_temporal_stage_with_train_spatial_tunes_the_decoder_too(tmp_path):
    ae = one_step_autoencoder(tmp_path / "ae", batch_size=2)
    td = train_autoencoder(
        tiny_ae_config(
            tmp_path / "td", stage="temporal", init_from=str(ae), steps=2, disc_start=100, train_spatial=True
        ),
        progress=False,
    )
    before, after = read_tensors(f"{ae}.safetensors"), read_tensors(f"{td}.safetensors")
    changed = [k for k, v in after.items() if not is_temporal(k) and not torch.equal(v, before[k])]
    assert any(k.startswith("decoder.") for k in changed)
    # temporal_from carries those temporal layers over to another image decoder (lr 0: as loaded)
    carried = train_autoencoder(
        tiny_ae_config(
            tmp_path / "td2",
            stage="temporal",
            init_from=str(ae),
            temporal_from=str(td),
            disc_start=100,
            lr=0.0,
        ),
        progress=False,
    )
    tensors = read_tensors(f"{carried}.safetensors")
    assert all(torch.equal(tensors[k], v) for k, v in after.items() if is_temporal(k))
    assert all(torch.equal(tensors[k], before[k]) for k in tensors if k.startswith("decoder."))


def test_image_stage_from_an_autoencoder_can_keep_its_encoder(tmp_path):
    ae = one_step_autoencoder(tmp_path / "ae", batch_size=2)
    tuned = train_autoencoder(
        tiny_ae_config(
            tmp_path / "dec", init_from=str(ae), train_encoder=False, steps=2, batch_size=2, disc_start=1
        ),
        progress=False,
    )
    before, after = read_tensors(f"{ae}.safetensors"), read_tensors(f"{tuned}.safetensors")
    assert before.keys() == after.keys()
    frozen = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))


def test_average_last_makes_final_the_mean_of_the_last_saves(tmp_path):
    import pytest

    cfg = tiny_ae_config(tmp_path / "ae", steps=4, batch_size=2, disc_start=100, save_every=1, average_last=2)
    final = read_tensors(f"{train_autoencoder(cfg, progress=False)}.safetensors")
    s3, s4 = (read_tensors(str(tmp_path / "ae" / f"step{s}.safetensors")) for s in (3, 4))
    assert not (tmp_path / "ae" / "step2.safetensors").exists()
    assert not list((tmp_path / "ae").glob("step*_disc*"))  # the averaging reads the autoencoder only
    assert (tmp_path / "ae" / "last_disc.safetensors").exists()  # resuming needs it
    assert read_config(tmp_path / "ae" / "final")["averaged_steps"] == [3, 4]
    key = "decoder.conv_out.weight"
    assert not torch.equal(s3[key], s4[key])
    torch.testing.assert_close(final[key], (s3[key] + s4[key]) / 2, atol=1e-5, rtol=1e-4)
    # steps that are no multiple of save_every still keep the averaged saves
    odd = AETrainConfig(**{**cfg.__dict__, "out_dir": str(tmp_path / "odd"), "steps": 3, "save_every": 2})
    assert read_config(f"{train_autoencoder(odd, progress=False)}")["averaged_steps"] == [1, 3]
    with pytest.raises(ValueError, match="average_last=5"):
        train_autoencoder(AETrainConfig(**{**cfg.__dict__, "average_last": 5}), progress=False)


def test_train_configs_compose():
    from drivesim.eval.report import EvalConfig
    from drivesim.train.probes import ProbeTrainConfig

    for name, cls in (
        ("train_autoencoder", AETrainConfig),
        ("train_image_ldm", LDMTrainConfig),
        ("train_video_ldm", LDMTrainConfig),
        ("train_prediction", LDMTrainConfig),
        ("train_interpolation", LDMTrainConfig),
        ("train_probes", ProbeTrainConfig),
    ):
        cfg = to_dataclass(cls, load_config(["steps=5"], name))
        assert cfg.steps == 5
    interp = to_dataclass(LDMTrainConfig, load_config([], "train_interpolation"))
    assert interp.fast_latents.fps == 4 * interp.latents.fps and interp.stage == "interpolation"
    report = to_dataclass(EvalConfig, load_config(["real.clips=3", "generated.source=folder"], "eval"))
    assert report.real.clips == 3 and report.generated.source == "folder"
    video = to_dataclass(LDMTrainConfig, load_config([], "train_video_ldm"))
    assert video.stage == "video" and video.init_from and video.unet == UNetConfig.tiny()
    assert video.dropout.box_class == 0.1  # used only with unet.box_classes > 1
    paper = to_dataclass(LDMTrainConfig, load_config(["unet=paper"], "train_image_ldm"))
    assert paper.unet == UNetConfig.paper()
    assert (
        to_dataclass(AETrainConfig, load_config(["autoencoder=paper"], "train_autoencoder")).autoencoder
        == AutoencoderConfig.paper()
    )


def test_mixed_image_batches_train_spatial_only_on_image_steps(tmp_path):
    ae = one_step_autoencoder(tmp_path / "ae")
    latents = LatentCacheConfig(
        path=str(tmp_path / "lat.safetensors"), autoencoder=str(ae), clips=2, num_frames=2, size=(64, 128)
    )
    image = train_ldm(
        LDMTrainConfig(latents=latents, out_dir=str(tmp_path / "img"), unet=TINY_UNET, steps=1, batch_size=1),
        progress=False,
    )
    before = read_tensors(f"{image}.safetensors")
    common = dict(
        stage="video", latents=latents, init_from=str(image), unet=TINY_UNET, batch_size=1, ema_decay=0.0
    )
    video_only = train_ldm(
        LDMTrainConfig(**common, out_dir=str(tmp_path / "v1"), steps=1, image_batch_every=2), progress=False
    )
    after_video_step = read_tensors(str(tmp_path / "v1" / "last.safetensors"))
    assert all(torch.equal(v, before[k]) for k, v in after_video_step.items() if not is_temporal(k))
    train_ldm(
        LDMTrainConfig(**common, out_dir=str(tmp_path / "v1"), steps=2, image_batch_every=2), progress=False
    )
    after_image_step = read_tensors(str(tmp_path / "v1" / "last.safetensors"))
    assert any(not torch.equal(v, before[k]) for k, v in after_image_step.items() if not is_temporal(k))
    assert video_only.name == "ema"


def test_prediction_and_interpolation_stages_train_only_temporal_layers(tmp_path):
    ae = one_step_autoencoder(tmp_path / "ae")
    latents = LatentCacheConfig(
        path=str(tmp_path / "lat.safetensors"), autoencoder=str(ae), clips=2, num_frames=5, size=(64, 128)
    )
    fast = LatentCacheConfig(
        path=str(tmp_path / "fast.safetensors"),
        autoencoder=str(ae),
        clips=2,
        num_frames=5,
        fps=30.0,
        size=(64, 128),
        seed=7,
    )
    image = train_ldm(tiny_ldm_config(tmp_path / "img", latents), progress=False)
    video = train_ldm(
        tiny_ldm_config(tmp_path / "vid", latents, stage="video", init_from=str(image)), progress=False
    )
    spatial = {k: v for k, v in read_tensors(f"{video}.safetensors").items() if not is_temporal(k)}
    common = dict(latents=latents, unet=TINY_UNET, batch_size=2, context_channels=8, log_every=1)
    pred = train_ldm(
        LDMTrainConfig(
            stage="prediction", init_from=str(video), out_dir=str(tmp_path / "p"), steps=2, **common
        ),
        progress=False,
    )
    interp = train_ldm(
        LDMTrainConfig(
            stage="interpolation",
            init_from=str(pred),
            fast_latents=fast,
            out_dir=str(tmp_path / "i"),
            steps=2,
            **common,
        ),
        progress=False,
    )
    for ckpt in (tmp_path / "p" / "last", tmp_path / "i" / "last"):
        tensors = read_tensors(f"{ckpt}.safetensors")
        assert any(k.startswith("temporal_context.") for k in tensors)
        assert all(torch.equal(tensors[k], v) for k, v in spatial.items()), ckpt  # spatial frozen
    assert read_config(interp)["unet"]["context_channels"] == 8
    assert [int(r["step"]) for r in rows(tmp_path / "i" / "loss.csv")] == [1, 2]


def test_unknown_frame_mse_scores_only_generated_frames():
    from drivesim.train.ldm import unknown_frame_mse

    target = torch.zeros(2, 4, 3, 2, 2)
    pred = torch.ones_like(target)
    pred[:, :2] = 5.0  # large errors on the known frames must not count
    mask = torch.tensor([[1.0, 1, 0, 0], [1.0, 1, 0, 0]])
    assert unknown_frame_mse(pred, target, mask).item() == 1.0
    none_known = torch.zeros(2, 4)
    torch.testing.assert_close(
        unknown_frame_mse(pred, target, none_known), torch.nn.functional.mse_loss(pred, target)
    )
