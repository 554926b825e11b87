"""drivesim's label files load in the official Scalabel loader (`scalabel.label.io.load` of scalabel
0.3.1) with their categories. The loader runs in a venv of its own, `.venv-scalabel`, which `make
test` sets up: scalabel 0.3.1 needs pydantic 1, drivesim pydantic 2."""

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from drivesim.cli import main
from drivesim.data.labels import read_scalabel

REPO = Path(__file__).resolve().parents[1]
SCALABEL_PYTHON = Path(os.environ.get("DRIVESIM_SCALABEL_PYTHON", REPO / ".venv-scalabel" / "bin" / "python"))
LOAD = """
import json, sys
from collections import Counter
from scalabel.label.io import load
out = {}
for path in sys.argv[1:]:
    frames = load(path).frames
    out[path] = {
        "frames": len(frames),
        "categories": Counter(label.category for f in frames for label in f.labels or []),
        "boxes": [[label.box2d.x1, label.box2d.y1, label.box2d.x2, label.box2d.y2] for f in frames
                  for label in f.labels or []],
        "timeofday": frames[0].attributes["timeofday"],
    }
print(json.dumps(out))
"""


def test_labels_load_in_the_official_scalabel_loader_with_their_categories(repo, tmp_path):
    if not SCALABEL_PYTHON.exists():
        pytest.skip(f"no {SCALABEL_PYTHON}: `make scalabel` installs the official loader")
    scenario = repo / "scenarios" / "day_pedestrian_crossing.yaml"
    out = tmp_path / "labels"
    assert (
        main(
            [
                "world",
                "render",
                "--scenario",
                str(scenario),
                "--out",
                str(out),
                "--resolution",
                "64x128",
                "--quiet",
            ]
        )
        == 0
    )
    walk = ["--num-clips", "1", "--frames", "30", "--crowdedness", "crowded", "--seed", "3", "--walkers"]
    assert main(["world", "render", "--out", str(out), *walk, "--time-of-day", "night", "--quiet"]) == 0
    paths = sorted(str(p) for p in out.glob("*.json"))
    assert len(paths) == 2
    found = subprocess.run(
        [str(SCALABEL_PYTHON), "-c", LOAD, *paths], capture_output=True, text=True, timeout=300
    )
    assert found.returncode == 0, found.stderr[-2000:]
    loaded = json.loads(found.stdout)
    for path in paths:
        ours = read_scalabel(path)
        boxes = [b for lab in ours for b in lab.boxes or []]
        theirs = loaded[path]
        assert theirs["frames"] == len(ours)
        assert theirs["categories"] == dict(Counter(b.category for b in boxes))
        assert theirs["boxes"] == [[b.x1, b.y1, b.x2, b.y2] for b in boxes]
    crossing = loaded[next(p for p in paths if "crossing" in p)]
    assert {"car", "truck", "bus", "pedestrian"} <= set(crossing["categories"])
    walkers = loaded[next(p for p in paths if "walkers" in p)]
    assert "pedestrian" in walkers["categories"] and walkers["timeofday"] == "night"
