"""model_index.json: one way to load a model folder, with or without an index."""

import json

import pytest
import torch
from conftest import TINY_UNET

from drivesim.models.model_index import MODEL_INDEX, load_part, part_prefix, read_model_index
from drivesim.models.probes import ClipProbe
from drivesim.models.unet import VideoUNet
from drivesim.models.weights import CheckpointError, save_checkpoint
from drivesim.utils import DEFAULT_MODEL_DIR


def test_shipped_folder_has_an_index_naming_every_file():
    index = json.loads((DEFAULT_MODEL_DIR / MODEL_INDEX).read_text())
    files = {p.name for p in DEFAULT_MODEL_DIR.glob("*.safetensors")}
    assert {e["file"] for e in index["parts"].values()} == files
    assert index["parts"]["prediction"]["class"] == "VideoUNet"


def test_index_renames_parts_and_folders_without_index_fall_back(tmp_path):
    unet = VideoUNet(TINY_UNET)
    save_checkpoint(unet, tmp_path / "weights_v2", {"unet": TINY_UNET.to_dict()})
    with pytest.raises(CheckpointError, match="no 'unet' part"):
        part_prefix(tmp_path, "unet")  # no index, no unet.safetensors
    (tmp_path / MODEL_INDEX).write_text(
        json.dumps({"parts": {"unet": {"class": "VideoUNet", "file": "weights_v2.safetensors"}}})
    )
    loaded = load_part(tmp_path, "unet")
    assert isinstance(loaded, VideoUNet)
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), loaded.state_dict().values()))
    assert isinstance(load_part(tmp_path / "weights_v2", "prediction"), VideoUNet)  # a prefix: class by name


def test_index_with_an_unknown_class_is_refused(tmp_path):
    (tmp_path / MODEL_INDEX).write_text(json.dumps({"parts": {"unet": {"class": "os.system", "file": "x"}}}))
    with pytest.raises(CheckpointError, match="known classes"):
        read_model_index(tmp_path)
    with pytest.raises(CheckpointError, match=ClipProbe.__name__):  # the message lists the known classes
        read_model_index(tmp_path)
