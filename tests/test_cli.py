import json

import cv2
import pytest

from drivesim.cli import main
from drivesim.data.labels import read_scalabel, to_scalabel
from drivesim.scenario import load_scenario
from drivesim.world import render_clip


def frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


@pytest.mark.slow
def test_world_render_night_crowded_scenario(repo, tmp_path):
    scenario = repo / "scenarios" / "night_crowded_city.yaml"
    assert main(["world", "render", "--scenario", str(scenario), "--out", str(tmp_path), "--quiet"]) == 0
    video, labels = tmp_path / "night_crowded_city.mp4", tmp_path / "night_crowded_city.json"
    entries = json.loads(labels.read_text())
    expected = render_clip(load_scenario(scenario).to_world_spec())
    assert frame_count(video) == len(entries) == len(expected.frames) == 120
    assert entries == json.loads(json.dumps(to_scalabel(expected.labels, "night_crowded_city")))
    assert entries[0]["attributes"]["timeofday"] == "night"
    assert any(lab["id"] == "1" for lab in entries[-1]["labels"])  # the scripted lead car
    # The decoded video is the rendered clip (up to H.264 loss).
    cap = cv2.VideoCapture(str(video))
    ok, first = cap.read()
    assert ok and abs(cv2.cvtColor(first, cv2.COLOR_BGR2RGB).astype(float) - expected.frames[0]).mean() < 4
    assert not list(tmp_path.glob(".*tmp*"))


def test_render_resumes_without_rewriting(repo, tmp_path, capsys):
    args = ["world", "render", "--out", str(tmp_path), "--num-clips", "2", "--frames", "5", "--quiet"]
    assert main(args) == 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert len(mtimes) == 4
    (tmp_path / sorted(mtimes)[1]).unlink()  # lose one clip's labels: that clip is redone
    assert main(args) == 0
    assert "skipping 1 complete clip" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert set(after) == set(mtimes)
    changed = {name for name in after if after[name] != mtimes.get(name)}
    assert len(changed) == 2


def test_render_with_walkers_labels_people(tmp_path):
    args = ["world", "render", "--out", str(tmp_path), "--num-clips", "1", "--frames", "30", "--quiet"]
    assert main([*args, "--crowdedness", "crowded", "--seed", "3", "--walkers"]) == 0
    (labels,) = tmp_path.glob("*_walkers.json")
    categories = {b.category for lab in read_scalabel(labels) for b in lab.boxes or []}
    assert "pedestrian" in categories and "car" in categories


def test_same_seed_same_mp4_bytes(tmp_path):
    for name in ("a", "b"):
        assert (
            main(
                [
                    "world",
                    "render",
                    "--out",
                    str(tmp_path / name),
                    "--num-clips",
                    "1",
                    "--frames",
                    "8",
                    "--seed",
                    "5",
                    "--quiet",
                ]
            )
            == 0
        )
    (va,), (vb,) = (list((tmp_path / n).glob("*.mp4")) for n in ("a", "b"))
    assert va.read_bytes() == vb.read_bytes()


def test_bad_scenario_exits_with_message_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nid: bad\ntime_of_day: noon\n")
    out = tmp_path / "out"
    assert main(["world", "render", "--scenario", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "time_of_day" in err and "'noon'" in err and "'day'" in err
    assert not out.exists() or not any(out.iterdir())


def test_scenario_validate(repo, tmp_path, capsys):
    assert main(["scenario", "validate", str(repo / "scenarios")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nid: x\nagents: [{id: 1}]\n")
    assert main(["scenario", "validate", str(bad)]) == 1
    assert "waypoints" in capsys.readouterr().err


def test_scenario_validate_finds_the_same_clip_in_two_files(repo, tmp_path, capsys):
    """Two files that differ only in their description make the same clip id: generate refuses
    them, so validate must too."""
    original = repo / "scenarios" / "day_light_highway.yaml"
    copy = tmp_path / "copy.yaml"
    text = original.read_text()
    assert "\ndescription: " in text
    copy.write_text(text.replace("\ndescription: ", "\ndescription: Described again. "))
    assert main(["scenario", "validate", str(original)]) == 0
    capsys.readouterr()
    assert main(["scenario", "validate", str(original), str(copy)]) == 1
    err = capsys.readouterr().err
    assert "describe the same clip" in err and "copy.yaml" in err and "day_light_highway.yaml" in err


def test_resolution_argument_is_checked():
    with pytest.raises(SystemExit):
        main(["world", "render", "--out", "/tmp/never", "--resolution", "100x250"])


def test_cli_defaults_come_from_the_config_dataclasses():
    """One source of defaults: a change in GenerateOptions / RolloutConfig reaches the flags."""
    from drivesim.cli.generate import sampling_options
    from drivesim.cli.main import build_parser
    from drivesim.pipelines.generate import GenerateOptions
    from drivesim.pipelines.rollout import RolloutConfig

    parser = build_parser()
    gen = parser.parse_args(["generate", "--scenario", "s", "--out", "o"])
    folder = sampling_options(gen, GenerateOptions)  # --catalog runs the rollout: RolloutConfig's
    assert (
        folder["steps"],
        folder["guidance_scene"],
        gen.guidance_rescale,
        gen.frame_correlation,
        gen.max_frames,
    ) == (
        GenerateOptions.steps,
        GenerateOptions.guidance_scene,
        GenerateOptions.guidance_rescale,
        GenerateOptions.frame_correlation,
        GenerateOptions.max_frames,
    )
    catalog = sampling_options(gen, RolloutConfig)
    assert (catalog["guidance_scene"], catalog["guidance_boxes"], gen.interpolation_steps) == (
        RolloutConfig.guidance_scene,
        RolloutConfig.guidance_boxes,
        RolloutConfig.interpolation_steps,
    )
    assert folder == catalog  # the folder mode and --catalog sample with the same defaults
    given = parser.parse_args(["generate", "--scenario", "s", "--out", "o", "--catalog", "--steps", "3"])
    assert sampling_options(given, RolloutConfig)["steps"] == 3
    ro = parser.parse_args(["rollout", "s.yaml", "--out", "o"])
    for name in (
        "new_frames",
        "context_frames",
        "steps",
        "interpolation_steps",
        "guidance_context",
        "prediction_strength",
        "interpolation_strength",
        "frame_correlation",
    ):
        assert getattr(ro, name) == getattr(RolloutConfig, name), name
    assert gen.device == ro.device == "cpu"


def test_rollout_length_uses_the_key_rate_and_factor():
    from drivesim.pipelines.rollout import FACTOR, RolloutConfig, segments_for

    # 10 s at key_fps * FACTOR fps: K keys give FACTOR (K - 1) + 1 frames
    frames = 10 * RolloutConfig.key_fps * FACTOR
    keys = -(-(frames + FACTOR - 1) // FACTOR)
    assert segments_for(10.0, 6, True) == -(-keys // 6)
    assert segments_for(10.0, 6, False) == -(-int(10 * RolloutConfig.key_fps) // 6)


def test_ldm_train_config_defaults_agree_with_the_image_ldm_yaml():
    from drivesim.config import load_config
    from drivesim.train.ldm import LDMTrainConfig

    yaml = load_config([], "train_image_ldm")
    for name in (
        "steps",
        "batch_size",
        "lr",
        "weight_decay",
        "grad_clip",
        "ema_decay",
        "log_every",
        "save_every",
        "device",
    ):
        assert yaml[name] == getattr(LDMTrainConfig, name), name
