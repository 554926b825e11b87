"""Frechet distance math, streaming stats, and the FID Inception / I3D networks on random weights."""

import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from drivesim.eval.frechet import FeatureStats, frechet_distance, frechet_from_stats
from drivesim.eval.networks.i3d import I3D, load_i3d
from drivesim.eval.networks.inception import FIDInceptionV3, load_fid_inception


def _random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / (2 * d)


def test_identical_stats_give_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), _random_cov(rng, 16)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    few = torch.from_numpy(rng.normal(size=(3, 64)) * 10)  # fewer samples than dims: rank 2
    stats = FeatureStats()
    stats.update(few)
    assert abs(frechet_from_stats(stats, stats)) < 1e-6


def test_identity_covariance_shift_gives_squared_norm():
    d = np.array([1.0, -2.0, 0.5, 3.0])
    eye = np.eye(4)
    assert frechet_distance(np.zeros(4), eye, d, eye) == pytest.approx(float(d @ d), abs=1e-9)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 4.0, size=8), rng.uniform(0.1, 4.0, size=8)
    mu = rng.normal(size=8)
    expected = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(mu, np.diag(a), mu, np.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_feature_stats_streaming_matches_numpy():
    rng = np.random.default_rng(2)
    chunks = [rng.normal(size=(n, 6)) * 3 + 5 for n in (7, 1, 12)]
    stats = FeatureStats()
    for chunk in chunks:
        stats.update(torch.from_numpy(chunk).float())
    everything = np.concatenate(chunks).astype(np.float32).astype(np.float64)
    assert stats.count == 20
    np.testing.assert_allclose(stats.mean.numpy(), everything.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.cov.numpy(), np.cov(everything, rowvar=False), rtol=1e-10, atol=1e-12)
    restored = FeatureStats.from_dict(stats.to_dict())
    assert restored.count == 20
    assert torch.equal(restored.cov, stats.cov)
    assert frechet_from_stats(stats, restored) < 1e-6


@pytest.fixture(scope="module")
def inception():
    torch.manual_seed(0)
    return FIDInceptionV3()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.fixture(scope="module")
def features(inception, images):
    return inception(images)


def test_fid_inception_shape_and_names(inception, features):
    feats = features
    assert feats.shape == (2, 2048)
    assert torch.isfinite(feats).all()
    state = inception.state_dict()
    for key in (
        "Conv2d_1a_3x3.conv.weight",
        "Conv2d_1a_3x3.bn.running_mean",
        "Conv2d_4a_3x3.bn.running_var",
        "Mixed_5b.branch1x1.conv.weight",
        "Mixed_5d.branch_pool.conv.weight",
        "Mixed_6a.branch3x3dbl_3.bn.bias",
        "Mixed_6e.branch7x7dbl_5.conv.weight",
        "Mixed_7a.branch7x7x3_4.conv.weight",
        "Mixed_7b.branch3x3_2b.bn.weight",
        "Mixed_7c.branch3x3dbl_3b.conv.weight",
        "fc.bias",
    ):
        assert key in state, key
    assert state["fc.weight"].shape == (1008, 2048)
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert not any(k.startswith("AuxLogits") for k in state)


def test_fid_inception_round_trip(inception, images, features, tmp_path):
    path = tmp_path / "inception.pth"
    torch.save(inception.state_dict(), path)
    loaded = load_fid_inception(path)
    assert not loaded.training
    assert torch.equal(loaded(images), features)


def test_fid_inception_rejects_wrong_keys(inception, tmp_path):
    state = dict(inception.state_dict())
    state.pop("fc.bias")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(RuntimeError, match=r"missing keys \[fc\.bias\].*unexpected keys \[extra\.weight\]"):
        load_fid_inception(path)


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("pt_inception-2015-12-05-6726825d.pth")) as info:
        load_fid_inception(tmp_path / "nope.pth")
    assert "never downloads" in str(info.value)
    with pytest.raises(FileNotFoundError, match=re.escape("rgb_imagenet.pt")):
        load_i3d(tmp_path / "nope.pt")


def test_i3d_shape_names_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = I3D()
    state = model.state_dict()
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_mean",
        "Conv3d_2c_3x3.bn.weight",
        "Mixed_3b.b0.conv3d.weight",
        "Mixed_3b.b1a.bn.running_var",
        "Mixed_4f.b2b.conv3d.weight",
        "Mixed_5c.b3b.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert key in state, key
    assert state["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)
    assert state["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert not any(k.startswith("logits.bn") for k in state)

    video = torch.rand(1, 9, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    feats = model(video)
    assert feats.shape == (1, 400)
    assert torch.isfinite(feats).all()
    with pytest.raises(ValueError, match=">= 9 frames"):
        model(video[:, :8])

    # identical feature sets through the FVD pipeline (I3D -> FeatureStats -> Frechet) give 0
    feats = torch.cat([feats, model(video.flip(1))])
    a, b = FeatureStats(), FeatureStats()
    a.update(feats)
    b.update(feats[:1])
    b.update(feats[1:])
    assert frechet_from_stats(a, b) < 1e-6 * max(1.0, float(a.cov.trace()))

    path = tmp_path / "i3d.pt"
    torch.save(state, path)
    loaded = load_i3d(path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in state.items())
    # .safetensors works too, and old checkpoints without BatchNorm's num_batches_tracked load
    old_style = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    save_file(old_style, tmp_path / "i3d.safetensors")
    loaded = load_i3d(tmp_path / "i3d.safetensors")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in old_style.items())
