import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from drivesim.data.clips import center_crop_to_aspect, num_clips, resample_indices
from drivesim.data.video_folder import VideoFolderDataset, VideoReadError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FPS, N, H, W = 25, 40, 180, 320  # 16:9 source


def level(i: int) -> int:
    return 20 + 5 * i  # frame i is a flat grey of this value: decoded brightness names the frame


def write_video(path: Path, labels: list[dict] | None) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "10"}
        for i in range(N):
            img = np.full((H, W, 3), level(i), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    if labels is not None:
        path.with_suffix(".json").write_text(json.dumps(labels))


def scalabel(with_boxes: bool) -> list[dict]:
    frames = []
    for i in range(N):
        entry = {
            "name": f"v/{i:05d}.jpg",
            "videoName": "v",
            "frameIndex": i,
            "attributes": {"timeofday": "night", "crowdedness": "3"},
        }
        if with_boxes:
            # 16:9 -> 1:2 crop keeps rows 10..170 of 180; this box maps to (0.25, 0.25)-(0.5, 0.75)
            entry["labels"] = [
                {"id": "7", "category": "car", "box2d": {"x1": 80, "y1": 50, "x2": 160, "y2": 130}}
            ]
        frames.append(entry)
    return frames


@pytest.fixture
def folder(tmp_path):
    write_video(tmp_path / "boxed.mp4", scalabel(True))
    (tmp_path / "sub").mkdir()
    write_video(tmp_path / "sub" / "unlabelled.mp4", scalabel(False))
    return tmp_path


def frame_levels(frames: torch.Tensor) -> list[int]:
    return [round(((f.mean().item() + 1) * 127.5 - 20) / 5) for f in frames]


def test_clip_arithmetic():
    assert resample_indices(25, 30, 0.0, 6) == [0, 1, 2, 3, 3, 4]  # 2.5 rounds up
    assert resample_indices(25, 12.5, 0.4, 3) == [10, 12, 14]
    assert num_clips(1.6, 8, 30, 0.5) == 3 and num_clips(0.1, 8, 30, 0.5) == 0
    assert center_crop_to_aspect(180, 320) == (10, 170, 0, 320)
    assert center_crop_to_aspect(100, 400) == (0, 100, 100, 300)


def test_shapes_fps_resampling_and_boxes(folder):
    ds = VideoFolderDataset(folder / "boxed.mp4", num_frames=6, fps=30, size=(64, 128), stride_s=0.5)
    assert len(ds) == num_clips(N / FPS, 6, 30, 0.5)
    frames, cond = ds[1]  # starts at 0.5 s = source frame 12.5
    assert frames.shape == (6, 3, 64, 128) and frames.dtype == torch.float32
    assert frames.min() >= -1 and frames.max() <= 1
    assert frame_levels(frames) == resample_indices(25, 30, 0.5, 6)
    assert cond["time_of_day"].item() == 1 and cond["crowdedness"].item() == 1  # 3 cars: light
    assert bool(cond["boxes_known"]) and cond["box_mask"][:, 0].all()
    torch.testing.assert_close(cond["boxes"][0, 0], torch.tensor([0.25, 0.25, 0.5, 0.75]))
    assert cond["box_track"][0, 0].item() == 7
    slow = VideoFolderDataset(folder / "boxed.mp4", num_frames=4, fps=12.5, size=(64, 128))
    assert frame_levels(slow[0][0]) == [0, 2, 4, 6]


def test_unknown_boxes_and_recursive_folder(folder):
    ds = VideoFolderDataset(folder, num_frames=4, fps=25, size=(64, 128), stride_s=1.0)
    assert {info.path.name for info in ds.videos} == {"boxed.mp4", "unlabelled.mp4"}
    unlabelled = next(i for i, (v, _) in enumerate(ds.index) if ds.videos[v].path.name == "unlabelled.mp4")
    _, cond = ds[unlabelled]
    assert not bool(cond["boxes_known"]) and not cond["box_mask"].any()
    batch_frames, batch_cond = next(iter(DataLoader(ds, batch_size=2)))
    assert batch_frames.shape == (2, 4, 3, 64, 128) and batch_cond["boxes_known"].shape == (2,)


def test_image_mode_and_end_of_video(folder):
    img = VideoFolderDataset(folder / "boxed.mp4", size=(64, 128), image_mode=True, stride_s=0.2)
    frame, cond = img[len(img) - 1]
    assert frame.shape == (3, 64, 128) and cond["boxes"].shape == (32, 4)
    assert len(img) == num_clips(N / FPS, 1, 30, 0.2)


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no videos"):
        VideoFolderDataset(tmp_path)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    with pytest.raises(VideoReadError, match=r"broken\.mp4"):
        VideoFolderDataset(tmp_path)


@pytest.mark.skipif(
    not (SHARED / "udacity_project_video_640x360.mp4").exists(), reason="../shared/data not beside the repo"
)
def test_shared_real_clip_streams(monkeypatch):
    ds = VideoFolderDataset(SHARED / "udacity_project_video_640x360.mp4", num_frames=8, fps=30)
    assert ds.videos[0].num_frames == 1259 and len(ds) == 51
    decoded = []
    real_open = av.open

    class CountingContainer:  # counts the frames the dataset pulls out of the decoder
        def __init__(self, *a, **k):
            self.inner = real_open(*a, **k)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.inner.close()

        def decode(self, *a, **k):
            for frame in self.inner.decode(*a, **k):
                decoded.append(frame.pts)
                yield frame

    monkeypatch.setattr("drivesim.data.video_folder.av.open", CountingContainer)
    frames, cond = ds[25]  # the middle of the drive, 25 s in
    # Streaming: a seek to the keyframe before 25 s, then a few frames; not 625+ from the start.
    assert 0 < len(decoded) < 300
    assert frames.shape == (8, 3, 128, 256)
    assert cond["time_of_day"].item() == 0 and not bool(cond["boxes_known"])
    assert frames.std() > 0.1
