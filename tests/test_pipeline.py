"""VideoLDMPipeline and `drivesim generate` with tiny UNTRAINED models saved to a temp folder."""

import json
from pathlib import Path

import cv2
import pytest
import torch
from conftest import TINY_AE, TINY_UNET, save_upsampler

from drivesim.cli import main
from drivesim.models.autoencoder import AutoencoderKL
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.models.unet import VideoUNet
from drivesim.models.weights import save_checkpoint
from drivesim.pipelines.scenario_conditions import scenario_conditions
from drivesim.pipelines.video_ldm import VideoLDMPipeline
from drivesim.scenario import load_scenario


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    ae = AutoencoderKL(TINY_AE)
    save_checkpoint(ae, d / "autoencoder", {"autoencoder": TINY_AE.to_dict()})
    save_checkpoint(
        TemporalDecoder.from_image_autoencoder(ae), d / "temporal_decoder", {"autoencoder": TINY_AE.to_dict()}
    )
    unet = VideoUNet(TINY_UNET)
    save_checkpoint(
        unet,
        d / "unet",
        {"unet": TINY_UNET.to_dict(), "latent_scale": 1.0, "step": 0, "train_config": {"schedule": {}}},
        dtype=torch.float16,
    )
    save_upsampler(d)
    return d


def test_scenario_conditions_follow_the_scripted_agent(repo):
    scenario = load_scenario(repo / "scenarios" / "night_crowded_city.yaml")
    cond, labels = scenario_conditions(scenario, 8, 7.5, (128, 256))
    assert cond["boxes"].shape == (1, 8, 32, 4) and cond["time_of_day"].item() == 1
    track = cond["box_track"][0]
    assert (track == 1).any(dim=1).all()  # the lead car (id 1) is boxed in every frame
    assert len(labels) == 8


def test_pipeline_is_seeded_and_shapes(model_dir, repo):
    pipe = VideoLDMPipeline.from_pretrained(model_dir)
    cond, _ = scenario_conditions(load_scenario(repo / "scenarios" / "day_cut_in.yaml"), 3, 7.5, (64, 128))
    a = pipe(cond, 3, latent_size=(8, 16), steps=2, seed=5)
    b = pipe(cond, 3, latent_size=(8, 16), steps=2, seed=5)
    assert a.frames.shape == (1, 3, 3, 64, 128) and a.latents.shape == (1, 3, 4, 8, 16)
    assert torch.equal(a.frames, b.frames)
    assert a.frames.min() >= -1 and a.frames.max() <= 1


def generate_args(scenario: Path, out: Path, model_dir: Path, *flags: str, steps=1, frames=2) -> list[str]:
    """`drivesim generate` (folder mode) of one scenario with a few steps and key frames, quietly."""
    paths = ["--scenario", str(scenario), "--out", str(out), "--model", str(model_dir)]
    return ["generate", *paths, "--steps", str(steps), "--max-frames", str(frames), *flags, "--quiet"]


def test_generate_command_writes_and_resumes(model_dir, repo, tmp_path, capsys):
    args = generate_args(repo / "scenarios" / "day_box_track.yaml", tmp_path, model_dir, steps=2, frames=3)
    assert main(args) == 0
    meta = json.loads((tmp_path / "day_box_track.meta.json").read_text())
    assert meta["seed"] == 8 and meta["frames"] == 3 and "unet" in meta["model_versions"]
    labels = json.loads((tmp_path / "day_box_track.json").read_text())
    assert len(labels) == 3 and any(lab["id"] == "1" for lab in labels[0]["labels"])
    cap = cv2.VideoCapture(str(tmp_path / "day_box_track.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    mtime = (tmp_path / "day_box_track.mp4").stat().st_mtime_ns
    assert main(args) == 0
    assert "skipping 1 complete" in capsys.readouterr().err  # logged, not printed
    assert (tmp_path / "day_box_track.mp4").stat().st_mtime_ns == mtime


def test_eval_reports_run_on_untrained_models(model_dir, tmp_path):
    from drivesim.eval.autoencoder import evaluate_autoencoder
    from drivesim.eval.samples import time_of_day_report

    png = tmp_path / "pairs.png"
    report = time_of_day_report(
        VideoLDMPipeline.from_pretrained(model_dir),
        num_frames=2,
        steps=1,
        progress=False,
        seeds=[11, 12],
        montage=str(png),
    )
    assert [p["seed"] for p in report["pairs"]] == [11, 12] and 0 <= report["mean_luma_day"] <= 255
    # the world renders night darker than day on the same layouts: the reference of the check
    assert all(0.1 < p["world_night_over_day"] < 0.6 for p in report["pairs"])
    image = cv2.imread(str(png))
    assert image.shape == (2 * 2 * 128, 2 * 2 * 256, 3)  # 2 rows (day, night) x 2 seeds at 2x
    ae = evaluate_autoencoder(
        str(model_dir / "autoencoder"),
        str(model_dir / "temporal_decoder"),
        clips=1,
        num_frames=3,
        progress=False,
    )
    # the temporal decoder starts as the image decoder (zero-initialised temporal layers): same frames
    assert ae["psnr_temporal"] == pytest.approx(ae["psnr_image"], abs=1e-4)
    assert ae["flicker_temporal"] == pytest.approx(ae["flicker_image"], abs=1e-5)
    assert 5 < ae["psnr_image"] < 15  # an untrained decoder: far from the frames, but not degenerate


def video_size(path) -> list[int]:
    cap = cv2.VideoCapture(str(path))
    return [int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))]


def box_labels(path) -> list[dict]:
    return [lab["box2d"] for frame in json.loads(path.read_text()) for lab in frame.get("labels", [])]


@pytest.mark.parametrize("method", ["model", "bicubic"])
def test_generate_writes_the_scenario_resolution_with_the_upsampler(model_dir, repo, tmp_path, method):
    out = tmp_path / "out"
    flags = ("--upsample-steps", "1", "--upsampler", method, "--keep-base")
    assert main(generate_args(repo / "scenarios" / "day_cut_in.yaml", out, model_dir, *flags)) == 0
    meta = json.loads((out / "day_cut_in.meta.json").read_text())
    assert meta["resolution"] == video_size(out / "day_cut_in.mp4") == [512, 1024]
    assert meta["base_resolution"] == video_size(out / "day_cut_in.base.mp4") == [128, 256]
    assert meta["upsampler"]["method"] == method
    assert ("upsampler" in meta["model_versions"]) == (method == "model")
    assert (
        main(
            [
                "eval",
                "pair",
                str(out / "day_cut_in.base.mp4"),
                str(out / "day_cut_in.mp4"),
                "--out",
                str(out / "pair.png"),
            ]
        )
        == 0
    )
    assert cv2.imread(str(out / "pair.png")).shape == (2 * 256, 2 * 512, 3)
    big, small = box_labels(out / "day_cut_in.json"), box_labels(out / "day_cut_in.base.json")
    assert len(big) == len(small) > 0
    for b, s in zip(big, small):  # the same boxes, in pixels of each video
        assert b["x2"] == pytest.approx(4 * s["x2"], abs=4) and b["y1"] == pytest.approx(4 * s["y1"], abs=4)


def test_labels_describe_the_video_written_at_any_requested_resolution(model_dir, repo, tmp_path):
    out = tmp_path / "out"
    assert (
        main(generate_args(repo / "scenarios" / "day_cut_in.yaml", out, model_dir, "--upsampler", "none"))
        == 0
    )
    meta = json.loads((out / "day_cut_in.meta.json").read_text())
    size = video_size(out / "day_cut_in.mp4")
    assert meta["resolution"] == size == [128, 256] and meta["requested_resolution"] == [512, 1024]
    boxes = box_labels(out / "day_cut_in.json")
    assert boxes and max(b["x2"] for b in boxes) <= size[1] and max(b["y2"] for b in boxes) <= size[0]
    assert max(b["x2"] for b in boxes) > size[1] / 4  # pixels of 128x256, not normalised


def test_eval_montage_draws_every_clip_of_a_folder(model_dir, repo, tmp_path):
    out = tmp_path / "clips"
    for name in ("day_cut_in", "night_crowded_city"):
        assert main(generate_args(repo / "scenarios" / f"{name}.yaml", out, model_dir, frames=3)) == 0
    assert main(["eval", "montage", str(out), "--out", str(tmp_path / "m.png")]) == 0
    image = cv2.imread(str(tmp_path / "m.png"))
    assert image.shape == (2 * 2 * 128, 3 * 2 * 256, 3)  # a row per clip, 3 frames at 2x
