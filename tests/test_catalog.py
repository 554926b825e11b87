"""Batch generation into a Parquet catalog with tiny UNTRAINED models and a bicubic upsampler:
rows and conditions, readers (pandas, pyarrow filters), atomic commits, resume after a crash or
SIGKILL, failures, compaction, validation and the CLI."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.dataset as ds
import pytest
import yaml
from conftest import REPO, save_cascade

from drivesim.cli import main
from drivesim.data.catalog import (
    CATALOG_SCHEMA_VERSION,
    COLUMNS,
    INFO,
    PARTITION_COLUMNS,
    clip_ids,
    fragment_files,
    read_clips,
)
from drivesim.data.catalog_check import check_catalog
from drivesim.export import catalog as catalog_writer
from drivesim.pipelines import batch
from drivesim.pipelines.batch import BatchOptions, generate_catalog, segment_schedule
from drivesim.pipelines.rollout import RolloutConfig
from drivesim.scenario import ScenarioError, parse_scenario

FAST = BatchOptions(
    RolloutConfig(steps=1, interpolation_steps=1, new_frames=3, latent_size=(4, 8)), "bicubic"
)  # 32x64 base video, bicubic to the scenario's 128x256
SWEEP = {
    "version": 2,
    "id": "grid",
    "frames": 8,
    "fps": 30,
    "sweep": {"time_of_day": ["day", "night"], "crowdedness": ["light", "crowded"], "seeds": [1, 2]},
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_cascade(tmp_path_factory.mktemp("cascade"))


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def sweep_catalog(tmp_path_factory, model_dir):
    """The 2x2x2 sweep generated once (8 clips)."""
    root = tmp_path_factory.mktemp("sweep")
    scenario = write_yaml(root / "grid.yaml", SWEEP)
    results = generate_catalog([scenario], root / "catalog", FAST, model_dir, progress=False)
    return root / "catalog", scenario, results


def test_sweep_gives_8_rows_with_the_right_conditions(sweep_catalog):
    root, _, results = sweep_catalog
    assert [r.status for r in results] == ["generated"] * 8
    rows = read_clips(root).to_pylist()
    assert len(rows) == 8 and len({r["clip_id"] for r in rows}) == 8
    got = {(r["time_of_day"], r["crowdedness"], r["seed"]) for r in rows}
    assert got == {(t, c, s) for t in ("day", "night") for c in ("light", "crowded") for s in (1, 2)}
    for row in rows:
        scenario = json.loads(row["scenario_json"])
        assert (scenario["time_of_day"], scenario["crowdedness"], scenario["seed"]) == (
            row["time_of_day"],
            row["crowdedness"],
            row["seed"],
        )
        assert row["clip_id"] == f"{row['scenario_hash']}-{row['seed']}"
        # the scenario's 8 frames: one segment of 3 key frames makes 1 + 4 * (3 - 1) = 9, cut to 8
        assert row["fps"] == 30 and row["frames"] == SWEEP["frames"]
        assert (row["height"], row["width"]) == (128, 256) and row["upsampler"] == "bicubic"
        assert row["boxes"] and max(b["frame"] for b in row["boxes"]) == row["frames"] - 1
        hashes = json.loads(row["model_hashes"])
        assert set(hashes) == {"temporal_decoder", "prediction", "interpolation"}
        assert all(len(h) == 16 for h in hashes.values())
        labels = json.loads((root / row["labels_path"]).read_text())
        assert {e["attributes"]["timeofday"] for e in labels} == {
            "daytime" if row["time_of_day"] == "day" else "night"
        }
    assert check_catalog(root).ok


def test_catalog_reads_with_pandas_and_pyarrow_filters(sweep_catalog):
    import pandas as pd

    root = sweep_catalog[0]
    frame = pd.read_parquet(root / "clips")
    assert len(frame) == 8 and set(frame["time_of_day"].astype(str)) == {"day", "night"}
    night = ds.dataset(root / "clips", format="parquet", partitioning="hive")
    table = night.to_table(filter=(ds.field("time_of_day") == "night") & (ds.field("crowdedness") == "light"))
    assert table.num_rows == 2 and set(table.column("seed").to_pylist()) == {1, 2}
    info = json.loads((root / INFO).read_text())
    assert info["schema_version"] == CATALOG_SCHEMA_VERSION == 4 and info["fps"] == 30
    assert list(info["features"]) == [n for n, _, _ in PARTITION_COLUMNS + COLUMNS]
    for row in frame.itertuples():  # boxes and tracks per category, consistent with the boxes column
        assert sum(c["boxes"] for c in row.box_counts) == len(row.boxes) > 0
        assert all(c["tracks"] <= c["boxes"] for c in row.box_counts)


def test_rerun_skips_present_clips_and_variants_add_new_ones(sweep_catalog, model_dir):
    root, scenario, _ = sweep_catalog
    before = {p: p.stat().st_mtime_ns for p in fragment_files(root)}
    results = generate_catalog([scenario], root, FAST, model_dir, progress=False)
    assert [r.status for r in results] == ["skipped"] * 8
    assert {p: p.stat().st_mtime_ns for p in fragment_files(root)} == before


def test_schedule_reaches_every_segment_and_the_labels(tmp_path, model_dir):
    data = {
        "version": 2,
        "id": "dusk",
        "duration_s": 2.0,
        "seed": 3,
        "schedule": {
            "time_of_day": [{"at": 0.7, "value": "night"}],
            "crowdedness": [{"at": 1.1, "value": "crowded"}],
        },
    }
    cfg = RolloutConfig(new_frames=3, segments=4)  # segments start at 0, 0.4, 0.8, 1.2 s
    assert segment_schedule(parse_scenario(data), cfg) == (
        ["day", "day", "night", "night"],
        ["light", "light", "light", "crowded"],
    )
    options = BatchOptions(FAST.rollout, "none")
    generate_catalog(
        [write_yaml(tmp_path / "dusk.yaml", data)], tmp_path / "cat", options, model_dir, progress=False
    )
    (row,) = read_clips(tmp_path / "cat").to_pylist()
    assert row["time_of_day"] == "day" and row["time_of_day_schedule"] == [{"at": 0.7, "value": "night"}]
    assert row["crowdedness_schedule"] == [{"at": 1.1, "value": "crowded"}]
    labels = json.loads((tmp_path / "cat" / row["labels_path"]).read_text())
    # output frame f belongs to the segment of key f // 4; segments of 3 keys start at 0, 0.4, 0.8 ... s
    by_segment = {
        f // 12: (e["attributes"]["timeofday"], e["attributes"]["crowdedness"]) for f, e in enumerate(labels)
    }
    assert by_segment[0] == ("daytime", "light") and by_segment[2] == ("night", "light")
    assert by_segment[3] == ("night", "crowded")


def test_failed_clip_is_recorded_not_written_and_retried(tmp_path, model_dir, monkeypatch):
    scenario = write_yaml(tmp_path / "v.yaml", {"id": "v", "frames": 8, "seed": 7, "variants": 2})
    real = batch.run_rollout

    def nan_for_seed_8(named, *args, **kwargs):
        if named.seed == 8:
            raise FloatingPointError("segment 0 decoded to NaN/inf frames")
        return real(named, *args, **kwargs)

    monkeypatch.setattr(batch, "run_rollout", nan_for_seed_8)
    results = generate_catalog([scenario], tmp_path / "cat", FAST, model_dir, progress=False)
    assert [r.status for r in results] == ["generated", "failed"]
    assert "NaN" in results[1].error
    failed = catalog_writer.failures(tmp_path / "cat")
    assert [(f["seed"], f["attempts"]) for f in failed] == [(8, 1)]
    assert "FloatingPointError" in failed[0]["error"]
    assert [r["seed"] for r in read_clips(tmp_path / "cat").to_pylist()] == [7]
    assert check_catalog(tmp_path / "cat").ok  # a failure is a warning, not a bad row

    monkeypatch.setattr(batch, "run_rollout", real)
    results = generate_catalog([scenario], tmp_path / "cat", FAST, model_dir, progress=False)
    assert [r.status for r in results] == ["skipped", "generated"]
    assert catalog_writer.failures(tmp_path / "cat") == []
    assert sorted(clip_ids(tmp_path / "cat")) == sorted(r.clip.clip_id for r in results)


def test_crash_between_media_and_row_then_resume(tmp_path, model_dir, monkeypatch):
    """The row is written last: a crash just before it leaves media without a row (an orphan that
    validate reports), never a row without media; the next run regenerates and commits the clip."""
    scenario = write_yaml(tmp_path / "c.yaml", {"id": "c", "frames": 8, "variants": 2})
    real_write = catalog_writer.pq.write_table
    calls = []

    def crash_on_second_row(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:
            raise KeyboardInterrupt  # like a kill: nothing catches it
        real_write(table, where, **kwargs)

    monkeypatch.setattr(catalog_writer.pq, "write_table", crash_on_second_row)
    with pytest.raises(KeyboardInterrupt):
        generate_catalog([scenario], tmp_path / "cat", FAST, model_dir, progress=False)
    monkeypatch.setattr(catalog_writer.pq, "write_table", real_write)
    report = check_catalog(tmp_path / "cat")
    assert report.rows == 1 and len([p for p in report.problems if "orphan" in p]) == 3  # mp4, json, png
    assert not [p for p in report.problems if "missing" in p]
    results = generate_catalog([scenario], tmp_path / "cat", FAST, model_dir, progress=False)
    assert [r.status for r in results] == ["skipped", "generated"]
    report = check_catalog(tmp_path / "cat")
    assert report.ok and report.rows == 2 and not report.warnings, report


@pytest.mark.slow
def test_sigkill_mid_batch_then_resume_leaves_no_duplicates_or_orphans(tmp_path, model_dir):
    scenario = write_yaml(tmp_path / "k.yaml", {"version": 2, "id": "k", "frames": 8, "variants": 4})
    root = tmp_path / "cat"
    cmd = [
        sys.executable,
        "-m",
        "drivesim.cli",
        "generate",
        "--scenario",
        str(scenario),
        "--out",
        str(root),
        "--catalog",
        "--model",
        str(model_dir),
        "--upsampler",
        "bicubic",
        "--steps",
        "1",
        "--interpolation-steps",
        "1",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600  # a bound on the wait, not a timing assertion
    while not fragment_files(root) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # with the first clip committed, the second is in flight
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_rows = len(clip_ids(root))
    assert 1 <= killed_rows < 4
    assert not [p for p in check_catalog(root, rehash=True).problems if "missing" in p or "sha256" in p]

    assert subprocess.run(cmd, env=env, cwd=REPO, capture_output=True).returncode == 0
    ids = clip_ids(root)
    assert len(ids) == len(set(ids)) == 4
    report = check_catalog(root)
    assert report.ok and not report.warnings, report
    assert not (root / batch.WORK).exists()


def test_compact_merges_fragments_and_drops_duplicates(sweep_catalog, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(sweep_catalog[0], root)
    first = fragment_files(root)[0]
    shutil.copy(first, first.with_name("copy-of-a-fragment.parquet"))  # a duplicate row
    assert not check_catalog(root).ok
    stats = catalog_writer.compact(root)
    assert stats == {"fragments_before": 9, "files_after": 2, "rows": 8, "duplicates_removed": 1}
    assert len(fragment_files(root)) == 2 and sorted(clip_ids(root)) == sorted(clip_ids(sweep_catalog[0]))
    assert check_catalog(root).ok


def test_interrupted_compaction_rolls_forward(sweep_catalog, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(sweep_catalog[0], root)
    monkeypatch.setattr(catalog_writer, "finish_compaction", lambda root: None)  # killed after the journal
    catalog_writer.compact(root)
    assert (root / catalog_writer.JOURNAL).exists()
    assert len(clip_ids(root)) == 8  # readers see the old fragments until the journal is applied
    monkeypatch.undo()
    with catalog_writer.CatalogWriter(root).lock():  # the next writer finishes it
        pass
    assert not (root / catalog_writer.JOURNAL).exists()
    assert len(fragment_files(root)) == 2 and sorted(clip_ids(root)) == sorted(clip_ids(sweep_catalog[0]))
    assert check_catalog(root).ok


def test_validate_command_finds_bad_hashes_missing_media_and_orphans(sweep_catalog, tmp_path, capsys):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(sweep_catalog[0], root)
    rows = read_clips(root).to_pylist()
    with open(root / rows[0]["mp4_path"], "ab") as f:
        f.write(b"\0")
    (root / rows[1]["thumbnail_path"]).unlink()
    (root / "media" / "stray.mp4").write_bytes(b"x")
    assert main(["catalog", "validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"clip {rows[0]['clip_id']}: mp4" in out and "does not match its sha256" in out
    assert f"clip {rows[1]['clip_id']}: thumbnail" in out and "missing" in out
    assert "media/stray.mp4: orphan" in out and "3 problem(s)" in out
    assert main(["catalog", "validate", str(sweep_catalog[0])]) == 0


def test_ls_show_and_compact_commands(sweep_catalog, capsys):
    root = sweep_catalog[0]
    assert main(["catalog", "ls", str(root), "--where", "time_of_day=night", "--where", "seed=2"]) == 0
    out = capsys.readouterr().out
    assert out.count("grid ") == 2 and "2 clip(s)" in out and " day " not in out
    assert main(["catalog", "show", str(root)]) == 0
    assert "8 clip(s)" in capsys.readouterr().out
    clip = clip_ids(root)[0]
    assert main(["catalog", "show", str(root), clip]) == 0
    assert json.loads(capsys.readouterr().out)["clip_id"] == clip
    assert main(["catalog", "show", str(root), "nope"]) == 2
    assert "no clip 'nope'" in capsys.readouterr().err
    assert main(["catalog", "ls", str(root), "--where", "colour=red"]) == 2


def test_no_work_starts_until_every_file_validates(tmp_path, model_dir):
    good = write_yaml(tmp_path / "good.yaml", SWEEP)
    bad = write_yaml(tmp_path / "bad.yaml", {"id": "..", "frames": 8})
    with pytest.raises(ScenarioError, match=r"bad\.yaml"):
        generate_catalog([good, bad], tmp_path / "cat", FAST, model_dir, progress=False)
    assert not (tmp_path / "cat").exists()
    (tmp_path / "file").write_text("")
    catalog = ["generate", "--scenario", str(good), "--catalog", "--quiet", "--out"]
    assert main([*catalog, str(tmp_path / "file" / "cat"), "--model", str(model_dir)]) == 2  # unwritable
    assert main([*catalog, str(tmp_path / "c2"), "--overwrite"]) == 2


def test_model_upsampler_reaches_the_output_resolution(tmp_path):
    from drivesim.pipelines.upsample import UpsampleSettings

    models = save_cascade(tmp_path / "models", upsampler=True)
    scenario = write_yaml(tmp_path / "u.yaml", {"id": "u", "frames": 8, "output": {"resolution": [128, 256]}})
    options = BatchOptions(FAST.rollout, "model", UpsampleSettings(steps=1, tile=128))
    (result,) = generate_catalog([scenario], tmp_path / "cat", options, models, progress=False)
    assert result.status == "generated", result.error
    (row,) = read_clips(tmp_path / "cat").to_pylist()
    assert (row["height"], row["width"], row["base_height"], row["base_width"]) == (128, 256, 32, 64)
    assert row["upsampler"] == "model" and row["upsampler_steps"] == 1
    assert "upsampler" in json.loads(row["model_hashes"]) and "upsampler" in json.loads(row["model_versions"])


@pytest.mark.slow
def test_ray_backend_gives_the_same_rows_as_the_local_one(tmp_path, model_dir):
    """Two Ray actors (a local cluster) vs this process: the same clips, frames and rows."""
    scenario = write_yaml(
        tmp_path / "r.yaml", {"version": 2, "id": "r", "frames": 8, "variants": 3, "crowdedness": "moderate"}
    )
    local = generate_catalog([scenario], tmp_path / "local", FAST, model_dir, progress=False)
    remote = generate_catalog(
        [scenario], tmp_path / "ray", FAST, model_dir, progress=False, backend="ray", workers=2
    )
    assert [r.status for r in remote] == [r.status for r in local] == ["generated"] * 3
    timing = {"generation_seconds", "created_at"}
    rows = {
        name: sorted(
            (
                {k: v for k, v in row.items() if k not in timing}
                for row in read_clips(tmp_path / name).to_pylist()
            ),
            key=lambda r: r["clip_id"],
        )
        for name in ("local", "ray")
    }
    assert rows["ray"] == rows["local"]  # mp4 and label sha256 included
    assert check_catalog(tmp_path / "ray").ok


def test_summary_table_lists_every_clip_and_the_wall_clock_rate(sweep_catalog):
    from drivesim.cli.catalog import summary_table

    table = summary_table(sweep_catalog[2], wall_seconds=120.0)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["clip_id", "scenario", "time_of_day"] and len(lines) == 1 + 8 + 2
    assert lines[-2] == "8 generated, 0 skipped, 0 failed; 4.00 clips/min"
    frames = sum(r.frames for r in sweep_catalog[2])
    assert lines[-1].startswith(f"s/frame by stage ({frames} frames): key_frames ")
    assert all(f"{stage} " in lines[-1] for stage in ("decode", "write", "; all"))
