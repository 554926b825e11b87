"""GeneratedClips: clips generated inside DataLoader workers (tiny UNTRAINED model), the same for a
given seed in every run, split over workers, new per epoch, in the datasets' format."""

import pytest
import torch
from conftest import save_cascade
from torch.utils.data import DataLoader

from drivesim.pipelines.on_the_fly import GeneratedClips
from drivesim.train.latent_cache import COND_KEYS


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_cascade(tmp_path_factory.mktemp("cascade"))


def clips(model_dir, seed=5, epoch=0, workers=2):
    data = GeneratedClips(model_dir, clips_per_epoch=4, num_frames=2, steps=1, latent_size=(4, 8), seed=seed)
    data.set_epoch(epoch)
    return data, list(DataLoader(data, batch_size=None, num_workers=workers))


def test_deterministic_per_seed_and_worker(model_dir):
    data, first = clips(model_dir)
    _, second = clips(model_dir)
    assert len(first) == 4
    for (f1, c1), (f2, c2) in zip(first, second):
        assert f1.shape == (2, 3, 32, 64) and f1.min() >= -1 and f1.max() <= 1
        assert torch.equal(f1, f2) and all(torch.equal(c1[k], c2[k]) for k in c1)
    # worker w makes items w, w + 2: the DataLoader interleaves 0, 1, 2, 3; each equals a direct call
    for index, (frames, cond) in enumerate(first):
        direct, direct_cond = data.generate(index)
        torch.testing.assert_close(frames, direct, atol=1e-4, rtol=0)
        assert torch.equal(cond["boxes"], direct_cond["boxes"])
    assert len({data.item_seed(i) for i in range(4)}) == 4
    assert not torch.equal(first[0][0], first[1][0])  # the two workers make different clips
    _, one_worker = clips(model_dir, workers=0)
    for (f1, _), (f2, _) in zip(first, one_worker):  # the same clips with any number of workers
        torch.testing.assert_close(f1, f2, atol=1e-4, rtol=0)


def test_epoch_and_seed_give_new_clips_in_the_datasets_format(model_dir):
    _, epoch0 = clips(model_dir, workers=0)
    _, epoch1 = clips(model_dir, epoch=1, workers=0)
    _, other = clips(model_dir, seed=6, workers=0)
    assert not torch.equal(epoch0[0][0], epoch1[0][0]) and not torch.equal(epoch0[0][0], other[0][0])
    _, cond = epoch0[0]
    assert cond["boxes"].shape == (2, 32, 4) and cond["fps"].item() == 7.5 and bool(cond["boxes_known"])
    assert set(cond) == set(COND_KEYS)  # what the latent cache stores: the two sources mix
    # ... and the conditions the UNet reads plus `boxes_known`, named here: a key dropped from both fails
    read = {"time_of_day", "crowdedness", "boxes", "box_class", "box_mask", "boxes_known", "ego_speed", "fps"}
    assert set(COND_KEYS) >= read
    with pytest.raises(ValueError, match="time_of_day='dusk'"):
        GeneratedClips(model_dir, time_of_day="dusk")
