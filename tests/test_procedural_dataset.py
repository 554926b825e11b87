import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from drivesim.config import load_config
from drivesim.data.build import build_dataset, data_config
from drivesim.data.procedural import InfiniteProceduralClips, ProceduralClipDataset


def test_clip_shapes_dtypes_ranges():
    ds = ProceduralClipDataset(length=10, num_frames=6, size=(64, 128), seed=1)
    frames, cond = ds[3]
    assert frames.shape == (6, 3, 64, 128) and frames.dtype == torch.float32
    assert frames.min() >= -1 and frames.max() <= 1 and frames.std() > 0.1
    assert cond["boxes"].shape == (6, 32, 4) and cond["boxes"].dtype == torch.float32
    assert cond["box_mask"].dtype == torch.bool and cond["box_track"].dtype == torch.long
    assert cond["time_of_day"].dtype == torch.long and cond["time_of_day"].item() in (0, 1)
    assert cond["crowdedness"].item() in (0, 1, 2, 3) and bool(cond["boxes_known"])
    real = cond["boxes"][cond["box_mask"]]
    assert ((real >= 0) & (real <= 1)).all()
    assert (real[:, 2] > real[:, 0]).all() and (real[:, 3] > real[:, 1]).all()
    assert (cond["box_track"][~cond["box_mask"]] == -1).all()
    assert cond["fps"].item() == 30.0 and cond["ego_speed"].item() > 0


def test_items_are_deterministic_and_distinct():
    ds = ProceduralClipDataset(length=5, num_frames=3, size=(64, 128), seed=0)
    a, ca = ds[2]
    b, cb = ds[2]
    assert torch.equal(a, b) and all(torch.equal(ca[k], cb[k]) for k in ca if k != "ego_speed")
    c, _ = ds[3]
    assert not torch.equal(a, c)
    with pytest.raises(IndexError):
        ds[5]


def test_fixed_conditions_are_respected():
    night = ProceduralClipDataset(
        length=3, num_frames=2, size=(64, 128), time_of_day="night", crowdedness="empty"
    )
    for i in range(3):
        _, cond = night[i]
        assert cond["time_of_day"].item() == 1 and cond["crowdedness"].item() == 0
        assert not cond["box_mask"].any()
    with pytest.raises(ValueError, match="time_of_day"):
        ProceduralClipDataset(time_of_day="dusk")


def test_image_mode_and_collate():
    ds = ProceduralClipDataset(length=4, size=(64, 128), image_mode=True)
    frame, cond = ds[0]
    assert frame.shape == (3, 64, 128) and cond["boxes"].shape == (32, 4)
    batch_frames, batch_cond = next(iter(DataLoader(ds, batch_size=2)))
    assert batch_frames.shape == (2, 3, 64, 128) and batch_cond["box_mask"].shape == (2, 32)
    clips = DataLoader(ProceduralClipDataset(length=4, num_frames=3, size=(64, 128)), batch_size=2)
    frames, cond = next(iter(clips))
    assert frames.shape == (2, 3, 3, 64, 128) and cond["time_of_day"].shape == (2,)


def test_infinite_stream_wraps_the_index_space():
    base = ProceduralClipDataset(length=3, num_frames=1, size=(32, 64))
    items = list(itertools.islice(iter(InfiniteProceduralClips(base)), 5))
    assert len(items) == 5 and torch.equal(items[3][0], items[0][0])


def test_hydra_config_builds_datasets():
    cfg = data_config(load_config(["data.num_frames=4", "data.size=[64,128]"])["data"])
    frames, _ = build_dataset(cfg)[0]
    assert frames.shape == (4, 3, 64, 128)
    udacity = data_config(load_config(["data=udacity"])["data"])
    assert udacity.root.endswith("udacity_project_video_640x360.mp4")
    with pytest.raises(ValueError, match="unknown key"):
        data_config({"kind": "procedural", "nmu_frames": 3})
    with pytest.raises(Exception, match="root"):
        load_config(["data=video_folder"])  # root is required (???)
