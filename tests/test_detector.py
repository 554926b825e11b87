"""The real-photo detector (YOLOX-nano on onnxruntime), its scores, the tracker and `drivesim label`.

Tests that run the real weights skip when ../shared/detectors/yolox_nano.onnx is absent (CI has it
and fails on any skip); the decoding, scoring, tiling, tracking and error tests run without it. The
real footage is 2 s of the MIT Udacity clip in tests/data."""

import itertools
import json
import math

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, save_cascade

from drivesim.cli import main
from drivesim.data.labels import Box, read_scalabel
from drivesim.data.video_folder import find_sources
from drivesim.eval.detector import (
    INPUT_SIZE,
    Detection,
    Detector,
    DetectorWeightsError,
    decode,
    detect_road_band,
    iou,
    letterbox,
    merge_detections,
    road_band_tiles,
)
from drivesim.eval.detector_score import DetectorTally, average_precision, tally_clips
from drivesim.eval.pseudo_label import TrackIds, time_of_day_of, touches_frame_edge

WEIGHTS = REPO.parent / "shared" / "detectors" / "yolox_nano.onnx"
CLIP = REPO / "tests" / "data" / "udacity_240-289_640x360.mp4"  # frames 240-289 of the Udacity clip
needs_weights = pytest.mark.skipif(
    not WEIGHTS.is_file(), reason=f"needs {WEIGHTS} (not downloaded by the tests)"
)
CAR_250 = Box(516, 201, 637, 257)  # the car ahead in frame 250 of the Udacity clip (score ~0.83)


def raw_cell(stride: int, gx: int, gy: int) -> int:
    """Row of YOLOX's [3549, 85] output for grid cell (gx, gy) of a stride (8, 16, 32 in order)."""
    offset = {8: 0, 16: (INPUT_SIZE // 8) ** 2, 32: (INPUT_SIZE // 8) ** 2 + (INPUT_SIZE // 16) ** 2}[stride]
    return offset + gy * (INPUT_SIZE // stride) + gx


def test_decode_gives_the_hand_computed_box_and_nms_drops_a_duplicate():
    raw = np.zeros((3549, 85), np.float32)
    car = raw_cell(16, 10, 7)
    raw[car, :5] = [0.5, 0.25, math.log(4), math.log(2), 0.9]  # dx, dy, log w, log h, objectness
    raw[car, 5 + 2] = 0.8  # COCO class 2: car
    duplicate = raw_cell(8, 21, 14)  # centre (21.1+0.0)*8=168.8, 14.5*8=116: nearly the same box
    raw[duplicate, :5] = [0.1, 0.5, math.log(8), math.log(4), 0.7]
    raw[duplicate, 5 + 2] = 0.8
    walker = raw_cell(32, 2, 3)
    raw[walker, :5] = [0.5, 0.5, math.log(1), math.log(2), 0.9]
    raw[walker, 5 + 0] = 0.9
    ratio = 416 / 640  # a 640x360 frame letterboxed to 416
    found = decode(raw, ratio, conf=0.3)
    assert [d.category for d in found] == ["person", "car"]  # best first; the duplicate car is gone
    car_box = found[1]
    # centre ((10 + 0.5) * 16, (7 + 0.25) * 16) = (168, 116), size (4 * 16, 2 * 16) = (64, 32), / ratio
    expected = np.array([168 - 32, 116 - 16, 168 + 32, 116 + 16]) / ratio
    assert np.allclose([car_box.x1, car_box.y1, car_box.x2, car_box.y2], expected, atol=1e-3)
    assert car_box.score == pytest.approx(0.72)
    person = found[0]  # centre (2.5 * 32, 3.5 * 32), size (32, 64)
    assert np.allclose(
        [person.x1, person.y1, person.x2, person.y2],
        np.array([80 - 16, 112 - 32, 80 + 16, 112 + 32]) / ratio,
        atol=1e-3,
    )
    assert decode(raw, ratio, conf=0.9) == []


def test_letterbox_pads_bottom_right_in_bgr():
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[..., 0] = 200  # red
    blob, ratio = letterbox(frame)
    assert blob.shape == (1, 3, 416, 416) and blob.dtype == np.float32 and ratio == pytest.approx(0.65)
    assert blob[0, 2, 0, 0] == 200 and blob[0, 0, 0, 0] == 0  # BGR: red is the last channel
    assert (blob[0, :, 234:, :] == 114).all() and (blob[0, :, :234, :] != 114).all()


def test_missing_weights_name_the_path_and_where_they_go(tmp_path):
    missing = tmp_path / "nowhere" / "yolox_nano.onnx"
    with pytest.raises(DetectorWeightsError) as err:
        Detector(missing)
    message = str(err.value)
    assert str(missing) in message and "yolox_nano.onnx" in message and "--detector" in message
    assert "DRIVESIM_DETECTOR" in message and "never downloads" in message


def test_corrupt_weights_are_a_weights_error(tmp_path):
    corrupt = tmp_path / "yolox_nano.onnx"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DetectorWeightsError, match="not a readable ONNX model"):
        Detector(corrupt)


def test_commands_report_missing_weights_in_one_line(tmp_path, capsys):
    (tmp_path / "clip").mkdir()
    cv2.imwrite(str(tmp_path / "clip" / "000001.png"), np.zeros((32, 64, 3), np.uint8))
    missing = str(tmp_path / "none.onnx")
    for argv in (
        ["eval", "detector", str(tmp_path), "--detector", missing, "--quiet"],
        [
            "label",
            str(tmp_path / "clip"),
            "--out",
            str(tmp_path / "out"),
            "--source-fps",
            "25",
            "--detector",
            missing,
            "--quiet",
        ],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and missing in err
    assert not (tmp_path / "out" / "clip.json").exists()


def test_average_precision_on_hand_made_rankings():
    assert average_precision([(0.9, True), (0.8, True)], 2) == pytest.approx(1.0)
    assert average_precision([(0.9, True), (0.1, False)], 1) == pytest.approx(1.0)  # FP ranked last
    assert average_precision([(0.9, False), (0.8, True)], 1) == pytest.approx(0.5)  # FP ranked first
    assert average_precision([(0.9, True)], 2) == pytest.approx(0.5)  # half the labels never found
    assert average_precision([(0.9, True), (0.8, False), (0.7, True)], 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision([], 3) == 0.0
    assert average_precision([(0.9, False)], 0) is None


def test_box_hits_and_ignored_labels():
    tally = DetectorTally()
    car, tiny, walker = Box(100, 100, 200, 150), Box(300, 100, 310, 108), Box(400, 50, 420, 120, "pedestrian")
    tally.add(
        [
            Detection(101, 100, 200, 151, 0.9, "car"),  # hits the car
            Detection(300, 100, 310, 108, 0.8, "car"),  # on a box too small to count: neither TP nor FP
            Detection(500, 100, 560, 140, 0.5, "car"),  # nothing there: FP
            Detection(100, 100, 198, 150, 0.2, "car"),  # a second, weak box on the car: FP
            Detection(400, 50, 420, 120, 0.9, "person"),
        ],  # not a vehicle: ignored
        [car, tiny, walker],
    )
    tally.add([Detection(130, 100, 230, 150, 0.9, "car")], [car])  # IoU 0.54 at 0.9: a hit
    tally.add([Detection(150, 100, 250, 150, 0.9, "car")], [car])  # IoU 0.33: a miss and an FP
    tally.add([Detection(0, 0, 50, 50, 0.9, "truck")], None)  # boxes unknown: only the vehicle share
    summary = tally.summary()
    assert summary["frames"] == 4 and summary["labelled_frames"] == 3
    assert summary["vehicle_frame_share"] == 1.0
    assert summary["eligible_boxes"] == 3 and summary["box_hits"] == 2
    assert summary["box_hit_rate"] == pytest.approx(2 / 3)
    assert sorted(tally.scored) == [(0.2, False), (0.5, False), (0.9, False), (0.9, True), (0.9, True)]
    assert DetectorTally().summary()["box_hit_rate"] is None
    # per class: the walker is found by a person detection (a car detection there would not count)
    assert summary["per_class"]["car"] == {"boxes": 3, "hits": 2, "hit_rate": pytest.approx(2 / 3)}
    assert summary["per_class"]["pedestrian"] == {"boxes": 1, "hits": 1, "hit_rate": 1.0}
    bus, truck_found = Box(0, 0, 100, 60, "bus"), Detection(0, 0, 100, 60, 0.8, "truck")
    other = DetectorTally()
    other.add([truck_found, Detection(400, 50, 420, 120, 0.9, "car")], [bus, walker])
    assert other.summary()["per_class"] == {
        "bus": {"boxes": 1, "hits": 1, "hit_rate": 1.0},  # a vehicle detection finds a vehicle
        "pedestrian": {"boxes": 1, "hits": 0, "hit_rate": 0.0},
    }


class ScriptedDetector:
    """Stands in for Detector: detect(frame) -> the detections a function of the frame's shape gives."""

    nms_iou = 0.45

    def __init__(self, script):
        self.script = script

    def detect(self, frame):
        return self.script(frame)


def test_tally_of_in_memory_clips_uses_the_condition_boxes():
    from drivesim.data.conditions import clip_conditions

    frames = torch.zeros(2, 3, 64, 128)
    cond = clip_conditions([[Box(32, 16, 96, 48)], [Box(32, 16, 96, 48)]], (64, 128), "day", "light", 7.5)
    tally = tally_clips([(frames, cond)], ScriptedDetector(lambda f: [Detection(32, 16, 96, 48, 0.8, "car")]))
    assert tally.summary()["box_hit_rate"] == 1.0 and tally.summary()["ap50"] == pytest.approx(1.0)


def test_road_band_tiles_cover_the_band_with_overlap():
    tiles = road_band_tiles(360, 640)
    assert {(y0, y1) for y0, y1, _, _ in tiles} == {(126, 306)}
    assert tiles[0][2] == 0 and tiles[-1][3] == 640
    assert all((x1 - x0) / (y1 - y0) == pytest.approx(1.6) for y0, y1, x0, x1 in tiles)
    for (_, _, a0, a1), (_, _, b0, _) in itertools.pairwise(tiles):
        assert (a1 - b0) / (a1 - a0) >= 0.25
    assert road_band_tiles(100, 60) == [(35, 85, 0, 60)]  # narrower than one tile: one, clipped


def test_road_band_maps_tile_boxes_back_and_drops_cut_ones():
    def script(frame):
        if frame.shape[:2] == (360, 640):  # the full frame: one car, also seen (as a truck) in a tile
            return [Detection(200, 150, 260, 190, 0.5, "car")]
        return [
            Detection(10, 20, 50, 50, 0.6, "car"),  # inside the tile
            Detection(frame.shape[1] - 30, 20, frame.shape[1], 50, 0.7, "car"),
        ]  # cut by the right edge

    found = detect_road_band(ScriptedDetector(script), np.zeros((360, 640, 3), np.uint8))
    tiles = road_band_tiles(360, 640)
    expected = {(x0 + 10, y0 + 20, x0 + 50, y0 + 50) for y0, _, x0, _ in tiles}
    boxes = {(d.x1, d.y1, d.x2, d.y2) for d in found}
    assert expected <= boxes and (200, 150, 260, 190) in boxes
    assert (640 - 30, 126 + 20, 640, 126 + 50) in boxes  # the last tile's right side is the frame's
    assert len(found) == len(tiles) + 2
    car, truck = Detection(0, 0, 100, 50, 0.5, "car"), Detection(2, 0, 100, 52, 0.7, "truck")
    assert merge_detections([car, truck]) == [truck]  # one vehicle, whichever class a pass said
    assert len(merge_detections([car, Detection(0, 0, 100, 50, 0.7, "person")])) == 2


def test_tracker_keeps_one_id_through_a_moving_box():
    tracks = TrackIds(fps=25)
    ids = [tracks.update([Detection(100 + 5 * t, 80, 180 + 5 * t, 130, 0.9, "car")]) for t in range(20)]
    assert len({i for frame in ids for i in frame}) == 1
    # A second object starting later keeps its own id from its first frame on.
    later = [
        tracks.update(
            [
                Detection(100 + 5 * t, 80, 180 + 5 * t, 130, 0.9, "car"),
                Detection(20, 60, 40, 120, 0.5, "person"),
            ]
        )
        for t in range(20, 30)
    ]
    assert {frame[0] for frame in later} == {ids[0][0]} and len({frame[1] for frame in later}) == 1
    assert later[0][1] != ids[0][0]
    assert tracks.update([]) == []


def test_a_detection_at_the_frame_edge_is_truncated():
    assert not touches_frame_edge(Detection(10, 20, 100, 80, 0.9, "car"), height=120, width=160)
    assert touches_frame_edge(Detection(0, 20, 100, 80, 0.9, "car"), height=120, width=160)
    assert touches_frame_edge(Detection(60, 20, 158.5, 80, 0.9, "car"), height=120, width=160)
    assert not touches_frame_edge(Detection(60, 20, 157.5, 80, 0.9, "car"), height=120, width=160)
    assert touches_frame_edge(Detection(1000, 20, 1276, 80, 0.9, "car"), height=720, width=1280)
    assert touches_frame_edge(Detection(60, 20, 100, 120, 0.9, "car"), height=120, width=160)


def test_time_of_day_from_luma():
    assert time_of_day_of(np.full((8, 8, 3), 120, np.uint8))[0] == "daytime"
    assert time_of_day_of(np.full((8, 8, 3), 30, np.uint8))[0] == "night"


@needs_weights
def test_real_detector_finds_the_car_ahead_in_the_udacity_clip():
    frame = find_sources(CLIP)[0].read_frames([10])[0]  # frame 250 of the whole clip
    cars = [d for d in Detector(WEIGHTS).detect(frame) if d.category == "car"]
    best = max(cars, key=lambda d: iou(d, CAR_250))
    assert iou(best, CAR_250) > 0.7 and best.score > 0.6
    assert time_of_day_of(frame)[0] == "daytime"
    banded = max(detect_road_band(Detector(WEIGHTS), frame), key=lambda d: iou(d, CAR_250))
    assert iou(banded, CAR_250) > 0.7


@needs_weights
def test_label_a_frame_folder_writes_pseudo_scalabel_labels(tmp_path, capsys):
    frames = find_sources(CLIP)[0].read_frames(list(range(10, 16)))  # frames 250-255
    (tmp_path / "clip").mkdir()
    for i, frame in enumerate(frames):  # a 192x480 crop around the car ahead
        cv2.imwrite(
            str(tmp_path / "clip" / f"{i + 1:06d}.png"),
            cv2.cvtColor(frame[120:312, 160:640], cv2.COLOR_RGB2BGR),
        )
    assert (
        main(
            [
                "label",
                str(tmp_path / "clip"),
                "--out",
                str(tmp_path),
                "--every",
                "2",
                "--source-fps",
                "25",
                "--detector",
                str(WEIGHTS),
                "--quiet",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "3/6 frames labelled, 3 with a car" in printed and "(car " in printed  # boxes per class
    labels = read_scalabel(tmp_path / "clip.json")
    assert [f.frame_index for f in labels] == list(range(6))
    assert [f.boxes is not None for f in labels] == [True, False] * 3  # skipped frames: boxes unknown
    assert all(f.attributes["labels"] == "pseudo" and f.attributes["timeofday"] == "daytime" for f in labels)
    car = Box(CAR_250.x1 - 160, CAR_250.y1 - 120, CAR_250.x2 - 160, CAR_250.y2 - 120)
    ahead = [max(f.boxes, key=lambda b: iou(b, car)) for f in labels if f.boxes is not None]
    assert all(b.category == "car" and iou(b, car) > 0.7 for b in ahead)
    assert all(b.truncated for b in ahead)  # it reaches the crop's right edge (x2 478.5-479.2 of 480)
    assert len({b.track_id for b in ahead}) == 1  # one track through the processed frames
    entries = json.loads((tmp_path / "clip.json").read_text())
    assert entries[0]["name"] == "clip/000001.png" and "labels" not in entries[1]
    assert all(
        lab["attributes"]["pseudo"] is True and 0 < lab["attributes"]["score"] <= 1
        for e in entries
        for lab in e.get("labels", [])
    )
    meta = json.loads((tmp_path / "clip.meta.json").read_text())
    assert meta["detector"]["sha256"] and meta["every"] == 2 and meta["pseudo_labels"] is True
    (source,) = find_sources(tmp_path)  # the labels sit beside the frames: found, with their frame rate
    assert source.fps == pytest.approx(25) and sorted(source.labels) == list(range(6))
    assert source.labels[0].boxes and source.labels[1].boxes is None
    # `eval detector` on the folder agrees with its own pseudo-labels.
    assert (
        main(
            [
                "eval",
                "detector",
                str(tmp_path),
                "--every",
                "2",
                "--detector",
                str(WEIGHTS),
                "--json",
                str(tmp_path / "det.json"),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "det.json").read_text())
    assert report["groups"]["day"]["box_hit_rate"] == 1.0 and "hit rate" in capsys.readouterr().out
    assert report["groups"]["day"]["per_class"]["car"]["hit_rate"] == 1.0


def test_label_never_overwrites_other_labels(tmp_path, capsys):
    (tmp_path / "clip").mkdir()
    cv2.imwrite(str(tmp_path / "clip" / "000001.png"), np.zeros((32, 64, 3), np.uint8))
    human = [{"name": "clip/000001.png", "videoName": "clip", "frameIndex": 0, "labels": []}]
    (tmp_path / "clip.json").write_text(json.dumps(human))
    argv = ["label", str(tmp_path / "clip"), "--out", str(tmp_path), "--source-fps", "25", "--quiet"]
    assert main(argv) == 2
    assert "not a pseudo-label file" in capsys.readouterr().err
    assert json.loads((tmp_path / "clip.json").read_text()) == human


def test_eval_report_skips_detector_figures_without_weights(tmp_path, monkeypatch):
    from drivesim.eval.report import EvalConfig, VideoSetConfig, run_eval

    real = VideoSetConfig(source="procedural", clips=2, num_frames=4, fps=7.5)
    monkeypatch.setenv("DRIVESIM_DETECTOR", str(tmp_path / "absent.onnx"))
    report = run_eval(
        EvalConfig(real=real, generated=real, reconstruct=False, out=str(tmp_path / "a")), progress=False
    )
    assert not any(k.startswith("detector_") for k in report["sets"]["real"])
    assert any("detector figures skipped" in n and "absent.onnx" in n for n in report["notes"])
    if WEIGHTS.is_file():
        report = run_eval(
            EvalConfig(
                real=real, generated=real, reconstruct=False, detector=str(WEIGHTS), out=str(tmp_path / "b")
            ),
            progress=False,
        )
        for name in ("real", "generated"):
            assert {"detector_box_hit_rate", "detector_ap50", "detector_vehicle_frame_share"} <= set(
                report["sets"][name]
            )
        assert "| detector_ap50 |" in (tmp_path / "b" / "report.md").read_text()


@needs_weights
def test_round_trip_detector_finds_rendered_cars_and_none_after_an_untrained_autoencoder(tmp_path):
    from drivesim.eval.autoencoder_detector import round_trip_detector

    folder = save_cascade(tmp_path / "m")  # untrained tiny autoencoder and temporal decoder
    report = round_trip_detector(
        str(folder),
        str(folder),
        clips=1,
        num_frames=2,
        every=1,
        detector=Detector(WEIGHTS, conf=0.05),
        progress=False,
    )
    paths = report["paths"]
    assert list(paths) == ["rendered", "base", "image", "temporal"]
    assert len({p["eligible_boxes"] for p in paths.values()}) == 1  # the same labels on every path
    assert paths["rendered"]["eligible_boxes"] > 0 and paths["rendered"]["box_hits"] > 0
    assert paths["image"]["box_hits"] == paths["temporal"]["box_hits"] == 0  # it cannot draw a car
