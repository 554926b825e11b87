"""Image-sequence inputs: a BDD100K-MOT-layout folder written by the test loads with its boxes and
track ids, generic frame folders read their frame rate from the labels or take a given one, and a
folder of videos is never mistaken for a frame folder (catalog thumbnails)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from drivesim.data.clips import resample_indices
from drivesim.data.frame_folders import BDD_MOT_FPS, FrameFolderError, labels_fps, probe_frame_folder
from drivesim.data.video_folder import VideoFolderDataset, find_sources

H, W, N = 90, 160, 12  # 16:9 frames, 12 per clip


def level(i: int) -> int:
    return 20 + 10 * i


def write_frames(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((H, W, 3), level(i), np.uint8))


def bdd_entry(video: str, i: int) -> dict:
    """BDD100K box_track_20 frame: 0-based frameIndex, 1-based file name, string track ids."""
    return {
        "name": f"{video}-{i + 1:07d}.jpg",
        "videoName": video,
        "frameIndex": i,
        "attributes": {"timeofday": "night", "weather": "clear"},
        "labels": [
            {
                "id": "00000017",
                "category": "car",
                "attributes": {"occluded": False},
                "box2d": {"x1": 40.0 + i, "y1": 25.0, "x2": 80.0 + i, "y2": 65.0},
            },
            {
                "id": "42",
                "category": "pedestrian",
                "attributes": {"occluded": True},
                "box2d": {"x1": 100.0, "y1": 20.0, "x2": 110.0, "y2": 60.0},
            },
        ],
    }


@pytest.fixture
def bdd(tmp_path) -> Path:
    """<bdd>/images/track/val/<video>/<video>-0000001.jpg + labels/box_track_20/val/<video>.json."""
    root = tmp_path / "bdd100k"
    for video in ("b1c9c847-3bda4659", "b1d0091f-75824d0d"):
        names = [f"{video}-{i + 1:07d}.jpg" for i in range(N)]
        write_frames(root / "images" / "track" / "val" / video, names)
        labels = root / "labels" / "box_track_20" / "val" / f"{video}.json"
        labels.parent.mkdir(parents=True, exist_ok=True)
        entries = [bdd_entry(video, i) for i in range(N)]
        labels.write_text(json.dumps(entries[::-1]))  # any order: matched by file name
    return root


def levels(frames: torch.Tensor) -> list[int]:
    return [round(((f.mean().item() + 1) * 127.5 - 20) / 10) for f in frames]


def test_bdd100k_mot_layout_loads_with_boxes_and_track_ids(bdd):
    data = VideoFolderDataset(bdd, num_frames=4, fps=2.5, size=(64, 128), stride_s=0.4)
    assert [v.path.name for v in data.videos] == ["b1c9c847-3bda4659", "b1d0091f-75824d0d"]
    assert all(v.fps == BDD_MOT_FPS and v.num_frames == N for v in data.videos)
    frames, cond = data[1]  # starts at 0.4 s = frame 2 at 5 fps; every 2nd frame
    assert frames.shape == (4, 3, 64, 128)
    source = resample_indices(BDD_MOT_FPS, 2.5, 0.4, 4)
    assert levels(frames) == source == [2, 4, 6, 8]
    assert cond["time_of_day"].item() == 1 and bool(cond["boxes_known"])
    assert cond["box_mask"].sum(1).tolist() == [2] * 4
    # 160x90 -> 1:2 crop keeps rows 5..85; box (40+f, 25)-(80+f, 65) of the largest slot first
    f = source[0]
    want = torch.tensor([(40 + f) / 160, 20 / 80, (80 + f) / 160, 60 / 80])
    torch.testing.assert_close(cond["boxes"][0, 0], want)
    assert sorted(cond["box_track"][0, :2].tolist()) == [17, 42]


def test_frame_folder_rate_from_label_timestamps_or_given(tmp_path):
    write_frames(tmp_path / "drive", [f"{i:06d}.png" for i in range(N)])
    entries = [
        {"name": f"{i:06d}.png", "frameIndex": i, "timestamp": 1000 + 100 * i, "labels": []} for i in range(N)
    ]
    (tmp_path / "drive.json").write_text(json.dumps(entries))
    seq = probe_frame_folder(tmp_path / "drive")
    assert seq.fps == pytest.approx(10.0) and seq.labels[3].boxes == []
    assert probe_frame_folder(tmp_path / "drive", fps=4).fps == 4
    data = VideoFolderDataset(tmp_path, num_frames=3, fps=5, size=(32, 64))
    frames, cond = data[0]
    assert levels(frames) == [0, 2, 4] and bool(cond["boxes_known"]) and not cond["box_mask"].any()
    assert labels_fps([{"frameIndex": 0, "attributes": {"fps": "12"}}]) == 12


def test_frame_folder_without_rate_says_how_to_give_it(tmp_path):
    write_frames(tmp_path / "clip", [f"{i}.jpg" for i in range(3)])
    with pytest.raises(FrameFolderError, match="source_fps"):
        VideoFolderDataset(tmp_path)
    data = VideoFolderDataset(tmp_path, num_frames=2, fps=5, size=(32, 64), source_fps=10)
    assert len(data) == 1 and not bool(data[0][1]["boxes_known"])  # no labels: boxes unknown


def test_video_folders_keep_their_pngs_and_empty_folders_explain(tmp_path):
    from test_catalog_dataset import write_video

    write_video(tmp_path / "clip.mp4", n=8)
    cv2.imwrite(str(tmp_path / "clip.png"), np.zeros((8, 8, 3), np.uint8))  # a catalog's thumbnail
    assert [s.path.name for s in find_sources(tmp_path)] == ["clip.mp4"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no folders of frame images"):
        find_sources(tmp_path / "empty")
