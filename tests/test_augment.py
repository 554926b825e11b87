"""`drivesim augment` with tiny UNTRAINED models: rows carry provenance (source clip, what changed),
labels are carried over for the conditioned boxes, added traffic and unknown boxes are flagged,
the source's frames are the rollout's context, reruns resume, a catalog works as input, bad
--vary values give clear errors."""

import json

import av
import numpy as np
import pytest
import torch
from conftest import save_cascade

from drivesim.cli import main
from drivesim.data.catalog import read_clips
from drivesim.data.catalog_check import check_catalog
from drivesim.data.sources import open_sources
from drivesim.pipelines.augment import KEEP_STRUCTURE, AugmentOptions, augment_catalog, output_size
from drivesim.pipelines.augment_track import AugmentError, parse_changes, source_track, variant_scene
from drivesim.pipelines.cascade import Cascade
from drivesim.pipelines.rollout import RolloutConfig

FPS, N, H, W = 25, 40, 90, 160
FAST = AugmentOptions(
    RolloutConfig(steps=1, interpolation_steps=1, new_frames=3, latent_size=(4, 8)),
    seconds=0.5,
    resolution=(64, 128),
    upsampler="bicubic",
)  # 32x64 base -> 64x128


def write_source(folder, name: str, labelled: bool) -> None:
    with av.open(str(folder / f"{name}.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), 60 + 3 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    entries = [
        {
            "name": f"{name}/{i:05d}.jpg",
            "videoName": name,
            "frameIndex": i,
            "attributes": {"timeofday": "daytime", "crowdedness": "light"},
        }
        for i in range(N)
    ]
    if labelled:
        for i, e in enumerate(entries):
            box = {"x1": 40 + i, "y1": 30, "x2": 80 + i, "y2": 60}
            e["labels"] = [{"id": "7", "category": "car", "box2d": box}]
    (folder / f"{name}.json").write_text(json.dumps(entries))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_cascade(tmp_path_factory.mktemp("cascade"))


@pytest.fixture(scope="module")
def augmented(tmp_path_factory, model_dir):
    root = tmp_path_factory.mktemp("augment")
    (root / "real").mkdir()
    write_source(root / "real", "drive", labelled=True)
    write_source(root / "real", "unlabelled", labelled=False)
    changes = [{"time_of_day": "night"}, {"crowdedness": "crowded"}]
    results = augment_catalog(root / "real", root / "cat", changes, FAST, model_dir, progress=False)
    return root, changes, results


def test_augment_rows_carry_provenance_and_labels(augmented):
    root, _, results = augmented
    assert [r.status for r in results] == ["generated"] * 4, [r.error for r in results]
    rows = {(r["source_clip_id"], r["augment_changes"]): r for r in read_clips(root / "cat").to_pylist()}
    night = rows[("drive", json.dumps({"time_of_day": {"from": "day", "to": "night"}}))]
    assert night["source_path"] == str(root / "real" / "drive.mp4") and night["source_start_s"] == 0
    assert (night["time_of_day"], night["crowdedness"]) == ("night", "light")
    assert night["scenario_id"] == "augment-drive" and json.loads(night["scenario_json"])["seed"] == 0
    # the context frames are kept as much as every frame: SDEdit from 1 - keep_structure
    assert night["context_frames"] == 2 and night["context_strength"] == pytest.approx(1 - KEEP_STRUCTURE)
    assert night["boxes_known"] and night["labels_complete"]
    # 0.5 s at 30 fps: 15 frames, cut from the 21 that 2 segments of 3 key frames make
    assert (night["height"], night["width"], night["fps"]) == (64, 128, 30) and night["frames"] == 15
    assert "autoencoder" in json.loads(night["model_hashes"])
    # carried labels: source box (40+j, 30)-(80+j, 60) of source frame j, through the 1:2 crop (rows 5..85)
    # and x 0.4 to the 64x128 video; output frame f shows source frame round(f * 25 / 30)
    boxes = {b["frame"]: b for b in night["boxes"]}
    assert len(boxes) == 15 and {b["track_id"] for b in night["boxes"]} == {7}
    for f in (0, 6, 14):
        j = int(np.floor(f * 25 / 30 + 0.5 + 1e-9))
        assert [boxes[f][k] for k in ("x1", "y1", "x2", "y2")] == pytest.approx(
            [(40 + j) * 0.8, 20, (80 + j) * 0.8, 44]
        )
    labels = json.loads((root / "cat" / night["labels_path"]).read_text())
    assert {e["attributes"]["timeofday"] for e in labels} == {"night"}
    assert labels[0]["attributes"]["sourceClip"] == "drive"
    assert labels[0]["attributes"]["labelsComplete"] == "true"
    assert labels[0]["labels"][0]["id"] == "7"
    crowded = rows[("drive", json.dumps({"crowdedness": {"from": "light", "to": "crowded"}}))]
    assert crowded["time_of_day"] == "day" and crowded["context_strength"] == pytest.approx(
        1 - KEEP_STRUCTURE
    )
    assert not crowded["labels_complete"] and crowded["boxes_known"]  # added traffic has no boxes
    labels = json.loads((root / "cat" / crowded["labels_path"]).read_text())
    assert {e["attributes"]["labelsComplete"] for e in labels} == {"false"}
    unknown = rows[("unlabelled", json.dumps({"time_of_day": {"from": "day", "to": "night"}}))]
    assert not unknown["boxes_known"] and not unknown["labels_complete"] and unknown["boxes"] == []
    labels = json.loads((root / "cat" / unknown["labels_path"]).read_text())
    assert all("labels" not in e for e in labels)  # unknown, not "no cars"
    assert check_catalog(root / "cat").ok


def test_rerun_skips_and_a_catalog_is_an_input(augmented, model_dir):
    root, changes, _ = augmented
    again = augment_catalog(root / "real", root / "cat", changes, FAST, model_dir, progress=False)
    assert [r.status for r in again] == ["skipped"] * 4
    out = augment_catalog(
        root / "cat",
        root / "cat2",
        [{"time_of_day": "day"}],
        FAST,
        model_dir,
        progress=False,
        where="time_of_day == night",
    )
    assert [r.status for r in out] == ["generated"] * 2
    sources = {r["clip_id"]: r for r in read_clips(root / "cat").to_pylist()}
    for row in read_clips(root / "cat2").to_pylist():
        source = sources[row["source_clip_id"]]
        assert row["source_path"] == f"{root / 'cat'}#{source['clip_id']}"
        assert json.loads(row["augment_changes"]) == {"time_of_day": {"from": "night", "to": "day"}}
        assert row["boxes_known"] == source["boxes_known"]
        if source["boxes_known"]:  # the carried boxes carried again (same video size, no crop change)
            assert {b["track_id"] for b in row["boxes"]} == {7}


def test_source_frames_are_the_first_key_frames(augmented, model_dir):
    root = augmented[0]
    source = next(s for s in open_sources(root / "real") if s.clip_id == "drive")
    cfg = FAST.rollout
    cascade = Cascade.from_pretrained(model_dir)
    scene = variant_scene(source, {"time_of_day": "night"})
    track = source_track(source, 0.0, cfg, (32, 64), (H, W), scene, {})
    context = torch.randn(1, 2, 4, 4, 8)
    window = cascade.segment_keys(0, track, context, cfg)
    assert window.shape == (1, cfg.new_frames, 4, 4, 8)
    assert torch.equal(window[:, :2], context)  # kept exactly; the rest is generated from them
    cond = track.key_conditions([0, 1, 2])
    assert cond["time_of_day"].tolist() == [1] and cond["box_mask"][0, :, 0].all()


def test_bad_vary_and_sources_give_clear_errors(tmp_path, capsys):
    assert parse_changes("time_of_day=night, crowdedness=crowded") == {
        "time_of_day": "night",
        "crowdedness": "crowded",
    }
    for text, message in [
        ("weather=rain", "CONDITION one of time_of_day, crowdedness"),
        ("crowdedness=busy", "crowdedness must be one of empty, light"),
        ("time_of_day=night,time_of_day=day", "given twice"),
    ]:
        with pytest.raises(AugmentError, match=message):
            parse_changes(text)
    assert (
        main(["augment", "--input", str(tmp_path), "--vary", "weather=rain", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "weather=rain" in capsys.readouterr().err
    assert (
        main(
            ["augment", "--input", str(tmp_path), "--vary", "time_of_day=night", "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "no videos" in capsys.readouterr().err
    assert output_size(AugmentOptions(upsampler="none")) == (128, 256)
