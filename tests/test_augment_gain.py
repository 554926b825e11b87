"""`drivesim eval gain`: the small CenterNet detector (targets, loss, decoding) and the experiment's
command on tiny synthetic labelled frame folders (untrained in effect: a few steps)."""

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from drivesim.cli import main
from drivesim.data.labels import Box, FrameLabel, to_scalabel
from drivesim.eval.augment_gain import (
    batch_counts,
    labels_usable,
    load_frames,
    photometric_jitter,
    sample_batch,
    train_detector,
)
from drivesim.eval.gain_detector import CenterNet, centernet_loss, decode, draw_targets

BOXES = torch.tensor([[20.0, 24.0, 52.0, 44.0], [80.0, 8.0, 96.0, 20.0]])  # x1,y1,x2,y2 on 64x128


def test_targets_decode_back_to_their_boxes():
    targets = draw_targets([BOXES], 64, 128)
    assert targets["mask"].sum() == 2 and targets["heat"].max() == 1
    heat_logits = torch.where(targets["heat"] == 1, 10.0, -10.0)  # a model that predicts the targets
    found = decode((heat_logits, targets["size"], targets["offset"]), min_score=0.5)[0]
    assert found.shape == (2, 5)
    got = sorted(found[:, :4].tolist())
    torch.testing.assert_close(torch.tensor(got), BOXES[BOXES[:, 0].argsort()], atol=1e-3, rtol=0)


def test_loss_is_lower_for_the_right_prediction():
    targets = draw_targets([BOXES], 64, 128)
    right = (torch.where(targets["heat"] == 1, 6.0, -6.0), targets["size"], targets["offset"])
    wrong = (torch.where(targets["heat"] == 1, -6.0, 6.0), targets["size"] + 1, targets["offset"])
    assert centernet_loss(right, targets) < 0.1 * centernet_loss(wrong, targets)


def test_model_output_shapes():
    heat, size, offset = CenterNet()(torch.rand(2, 3, 64, 128))
    assert heat.shape == (2, 1, 16, 32) and size.shape == offset.shape == (2, 2, 16, 32)


def write_folder(root, name: str, frames: int = 6, incomplete: bool = False):
    """A frame folder of grey frames with one white 'vehicle' each, and its Scalabel labels."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(name))
    labels = []
    for i in range(frames):
        image = np.full((64, 128, 3), 90, np.uint8)
        x, y = int(rng.integers(8, 90)), int(rng.integers(10, 30))
        image[y : y + 26, x : x + 30] = 230
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)
        attributes = {"fps": "5", "timeofday": "daytime"} | (
            {"labelsComplete": "false"} if incomplete else {}
        )
        labels.append(FrameLabel(i, [Box(x, y, x + 30, y + 26, "car")], attributes))
    (root / f"{name}.json").write_text(json.dumps(to_scalabel(labels, name)))
    return root


def test_incomplete_variant_labels_are_left_out(tmp_path):
    write_folder(tmp_path / "a", "clip", frames=4, incomplete=True)
    write_folder(tmp_path / "a", "other", frames=3)
    frames = load_frames(tmp_path / "a", (64, 128), progress=False)
    assert len(frames) == 3 and frames.box_count == 3
    assert not labels_usable(FrameLabel(0, None)) and labels_usable(FrameLabel(0, []))
    assert batch_counts(8, [0.5, 0.5]) == [4, 4] and batch_counts(5, [0.8, 0.2]) == [4, 1]


def test_the_detector_learns_a_box(tmp_path):
    frames = load_frames(write_folder(tmp_path, "train", frames=8), (64, 128), progress=False)
    model = train_detector([frames], [1.0], steps=150, batch=4, seed=0, progress=False).eval()
    image = torch.from_numpy(frames.images[0]).permute(2, 0, 1)[None].float() / 255
    best = decode(model(image))[0][0]
    truth = frames.boxes[0][0]
    inter_w = max(0.0, min(best[2], truth[2]) - max(best[0], truth[0]))
    inter_h = max(0.0, min(best[3], truth[3]) - max(best[1], truth[1]))
    union = (best[2] - best[0]) * (best[3] - best[1]) + (truth[2] - truth[0]) * (truth[3] - truth[1])
    assert inter_w * inter_h / (union - inter_w * inter_h) > 0.5


def test_eval_gain_command_writes_both_arms(tmp_path, capsys):
    for name in ("train", "variants", "heldout"):
        write_folder(tmp_path / name, name)
    out = tmp_path / "gain.json"
    code = main(
        ["eval", "gain", "--train", str(tmp_path / "train"), "--variants", str(tmp_path / "variants"),
         "--heldout", str(tmp_path / "heldout"), "--steps", "2", "--seeds", "0", "1", "--size", "64x128",
         "--batch", "2", "--json", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["arms"]) == {"real", "real+variants", "real+jitter"}
    assert (
        report["gain"] == report["arms"]["real+variants"]["ap50_mean"] - report["arms"]["real"]["ap50_mean"]
    )
    assert [r["seed"] for r in report["arms"]["real"]["runs"]] == [0, 1]
    assert report["sets"]["heldout"]["frames"] == 6
    assert "gain (mean AP50" in capsys.readouterr().out


def test_eval_gain_names_a_set_without_labels(tmp_path, capsys):
    write_folder(tmp_path / "train", "train")
    write_folder(tmp_path / "bare", "bare")
    entries = json.loads((tmp_path / "bare" / "bare.json").read_text())
    for entry in entries:  # boxes unknown in every frame
        del entry["labels"]
    (tmp_path / "bare" / "bare.json").write_text(json.dumps(entries))
    code = main(
        ["eval", "gain", "--train", str(tmp_path / "train"), "--variants", str(tmp_path / "bare"),
         "--heldout", str(tmp_path / "train"), "--quiet"]
    )  # fmt: skip
    assert code == 2
    assert "bare: no frame with complete box labels" in capsys.readouterr().err


@pytest.mark.parametrize("share", ["0", "1.5"])
def test_eval_gain_rejects_a_bad_share(tmp_path, share, capsys):
    write_folder(tmp_path / "train", "train")
    code = main(
        ["eval", "gain", "--train", str(tmp_path / "train"), "--variants", str(tmp_path / "train"),
         "--heldout", str(tmp_path / "train"), "--variant-share", share, "--quiet"]
    )  # fmt: skip
    assert code == 2
    assert "variant_share must be in (0, 1)" in capsys.readouterr().err


def test_eval_gain_real_arm_alone_needs_no_variants(tmp_path, capsys):
    for name in ("train", "heldout"):
        write_folder(tmp_path / name, name)
    args = ["eval", "gain", "--train", str(tmp_path / "train"), "--heldout", str(tmp_path / "heldout")]
    assert main([*args, "--arms", "real", "--steps", "1", "--seeds", "0", "--size", "64x128", "--quiet"]) == 0
    assert "gain (mean" not in capsys.readouterr().out
    assert main([*args, "--quiet"]) == 2
    assert "needs --variants" in capsys.readouterr().err


def test_jitter_relights_a_pool_and_keeps_its_boxes(tmp_path):
    frames = load_frames(write_folder(tmp_path, "train", frames=3), (64, 128), progress=False)
    relit = dataclasses.replace(frames, jitter=True)
    for seed in range(4):  # one frame per batch: the same frame and flip, re-lit
        plain, plain_boxes = sample_batch([frames], [1], np.random.default_rng(seed))
        lit, lit_boxes = sample_batch([relit], [1], np.random.default_rng(seed))
        torch.testing.assert_close(plain_boxes[0], lit_boxes[0])
        assert (plain - lit).abs().mean() > 0.01
    image = frames.images[0]
    assert photometric_jitter(image, np.random.default_rng(1)).shape == image.shape
