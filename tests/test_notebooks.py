"""Run every notebook in a Jupyter kernel (nbclient) at its small size, so docs keep working: every
cell runs, and every image shown is a PNG that decodes to a non-blank picture."""

import base64
import os

import cv2
import nbformat
import numpy as np
import pytest
from conftest import REPO
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # every test here takes 10-30 s

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESIM_NOTEBOOK_SIZE", "small")  # notebooks read it to shrink their work
    monkeypatch.setenv("DRIVESIM_NOTEBOOK_WORK", str(tmp_path))  # and write their files here
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    images = [
        base64.b64decode(out["data"]["image/png"])
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]
    assert images, "the notebook displays nothing"
    for data in images:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.size > 0 and image.std() > 0, "blank or undecodable image"
