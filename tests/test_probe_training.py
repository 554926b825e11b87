"""Probe training with clips after the autoencoder round trip (tiny steps, no quality claims)."""

import csv

import torch

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.models.model_index import load_reconstructor
from drivesim.models.temporal_decoder import reconstruct_frames
from drivesim.train.latent_cache import LatentClipDataset
from drivesim.train.probes import ProbeTrainConfig, train_probes
from drivesim.utils import DEFAULT_MODEL_DIR


def reconstructing_config(out_dir, **overrides) -> ProbeTrainConfig:
    """Probes on 3-frame 64x128 clips, batch 2, with clips reconstructed by the shipped autoencoder."""
    base = dict(out_dir=str(out_dir), size=(64, 128), num_frames=3, batch_size=2)
    return ProbeTrainConfig(**base, reconstruct_with=str(DEFAULT_MODEL_DIR), **overrides)


def test_probes_train_on_reconstructed_clips(tmp_path):
    cfg = reconstructing_config(
        tmp_path, steps=4, log_every=1, save_every=2, reconstructed_clips=2, reconstructed_share=0.5
    )
    train_probes(cfg, progress=False)
    with open(tmp_path / "loss.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
    cache = LatentClipDataset(tmp_path / "reconstructed_7.5fps.safetensors", key="frames")
    assert len(cache) == 2
    frames, cond = cache[1]
    clip, clip_cond = ProceduralClipDataset(num_frames=3, fps=7.5, size=(64, 128), seed=cfg.seed + 1)[1]
    expected = reconstruct_frames(*load_reconstructor(DEFAULT_MODEL_DIR), clip)
    assert frames.shape == clip.shape == (3, 3, 64, 128)
    torch.testing.assert_close(frames, expected, atol=2e-3, rtol=0)  # stored in fp16
    assert not torch.allclose(frames, clip, atol=0.05)  # the round trip changed the frames
    assert int(cond["crowdedness"]) == int(clip_cond["crowdedness"])


def test_a_reconstructed_cache_built_another_way_is_refused(tmp_path):
    import dataclasses

    import pytest

    cfg = reconstructing_config(tmp_path, steps=1, reconstructed_clips=1)  # 1-clip batches
    train_probes(cfg, progress=False)
    with pytest.raises(ValueError, match="was built with"):
        train_probes(dataclasses.replace(cfg, steps=2, reconstructed_clips=3), progress=False)
