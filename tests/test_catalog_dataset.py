"""CatalogDataset / CatalogStream over a catalog the test writes with CatalogWriter (grey-level videos
whose brightness names the frame, known boxes): shapes, boxes, filters, DataLoader workers, the
collate for variable box counts, mix(), and reading a schema-version-1 catalog."""

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from drivesim.data import CatalogDataset, CatalogStream, catalog_filter, collate_clips, mix
from drivesim.data.catalog import (
    CATALOG_SCHEMA_VERSION,
    CLIPS,
    COLUMNS,
    INFO,
    CatalogError,
    fragment_files,
    read_clips,
)
from drivesim.data.clips import resample_indices
from drivesim.data.labels import Box, FrameLabel, to_scalabel
from drivesim.export.catalog import CatalogWriter, box_rows

FPS, N, H, W = 30, 24, 64, 128
# (time_of_day, crowdedness, boxes per frame): clip k has k + 1 boxes per frame, 4 clips
CLIPS_SPEC = [("day", "light"), ("day", "crowded"), ("night", "moderate"), ("night", "empty")]

# Workers start from a fresh forkserver, not by forking pytest: a fork of a process in which an earlier
# test ran Ray (test_catalog.py's Ray backend leaves gRPC threads behind) can inherit a held lock and
# hang in a futex (seen once in `bash .ci/run` on a clean clone, 2026-12-07).
WORKER_START = "forkserver"


def level(i: int) -> int:
    return 20 + 8 * i  # frame i is a flat grey of this value


def write_video(path: Path, n: int = N) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "10"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), level(i), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def clip_boxes(k: int, frame: int) -> list[Box]:
    """Clip k, frame f: k + 1 boxes, track ids 10k + j, moving right one pixel per frame."""
    return [Box(8.0 * j + frame, 16.0, 8.0 * j + frame + 16, 48.0, "car", 10 * k + j) for j in range(k + 1)]


def row_for(clip_id: str, time_of_day: str, crowdedness: str, labels: list[FrameLabel]) -> dict:
    row = {name: None for name, _, _ in COLUMNS}
    row.update(
        clip_id=clip_id,
        time_of_day=time_of_day,
        crowdedness=crowdedness,
        fps=float(FPS),
        frames=N,
        height=H,
        width=W,
        seed=0,
        ego_speed_kmh=36.0,
        boxes=box_rows(labels),
        time_of_day_schedule=[],
        crowdedness_schedule=[],
        boxes_known=True,
        labels_complete=True,
    )
    for key in (
        "mp4_path",
        "mp4_sha256",
        "mp4_bytes",
        "labels_path",
        "labels_sha256",
        "thumbnail_path",
        "thumbnail_sha256",
        "created_at",
        "drivesim_version",
    ):
        row.pop(key)
    return row


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("catalog") / "cat"
    writer = CatalogWriter(root, fps=FPS)
    work = root.parent / "work"
    work.mkdir()
    with writer.lock():
        for k, (tod, crowd) in enumerate(CLIPS_SPEC):
            labels = [FrameLabel(f, clip_boxes(k, f)) for f in range(N)]
            write_video(work / f"c{k}.mp4")
            (work / f"c{k}.json").write_text(json.dumps(to_scalabel(labels, f"c{k}")))
            writer.commit(row_for(f"c{k}", tod, crowd, labels), work / f"c{k}.mp4", work / f"c{k}.json")
    return root


def frame_levels(frames: torch.Tensor) -> list[int]:
    return [round(((f.mean().item() + 1) * 127.5 - 20) / 8) for f in frames]


def test_map_style_shapes_frames_and_boxes(catalog):
    data = CatalogDataset(catalog, num_frames=4, fps=15, size=(32, 64), stride_s=0.25)
    assert len({data.clip_id(i) for i in range(len(data))}) == 4
    i = next(i for i in range(len(data)) if data.clip_id(i) == "c1" and data.index[i][1] == 0.25)
    frames, cond = data[i]
    assert frames.shape == (4, 3, 32, 64) and frames.dtype == torch.float32
    source = resample_indices(FPS, 15, 0.25, 4)
    assert frame_levels(frames) == source  # the frames at 15 fps from 0.25 s
    assert cond["boxes"].shape == (4, 32, 4) and cond["box_mask"].sum(1).tolist() == [2] * 4
    for t, f in enumerate(source):  # the same 1:2 aspect: boxes only scale to [0, 1]
        want = torch.tensor([[b.x1 / W, b.y1 / H, b.x2 / W, b.y2 / H] for b in clip_boxes(1, f)])
        torch.testing.assert_close(cond["boxes"][t, :2], want)
    assert cond["box_track"][0, :2].tolist() == [10, 11]
    assert cond["time_of_day"].item() == 0 and cond["crowdedness"].item() == 3 and cond["fps"].item() == 15
    assert abs(cond["ego_speed"].item() - 10.0) < 1e-5 and bool(cond["boxes_known"])
    image, image_cond = CatalogDataset(catalog, size=(32, 64), image_mode=True)[0]
    assert image.shape == (3, 32, 64) and image_cond["boxes"].shape == (32, 4)


def test_dataloader_with_two_workers_over_a_catalog(catalog):
    data = CatalogDataset(catalog, num_frames=3, size=(32, 64), max_boxes=None)
    loader = DataLoader(
        data, batch_size=2, num_workers=2, collate_fn=collate_clips, multiprocessing_context=WORKER_START
    )
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(2, 3, 3, 32, 64)] * 2
    ids = [data.clip_id(i) for i in range(len(data))]
    seen = [int(t) // 10 for b in batches for t in b[1]["box_track"][:, 0, 0]]
    assert seen == [int(c[1:]) for c in ids]  # every clip once, in order, with its own boxes
    for _, cond in batches:
        counts = cond["box_mask"][:, 0].sum(1)
        assert cond["boxes"].shape[2] == counts.max()  # padded to the batch's busiest frame only
        assert (cond["box_track"][~cond["box_mask"]] == -1).all()


def test_stream_with_two_workers_gives_every_row_once(catalog):
    stream = CatalogStream(catalog, num_frames=2, size=(32, 64), shuffle=True, seed=3)
    loader = DataLoader(stream, batch_size=None, num_workers=2, multiprocessing_context=WORKER_START)
    tracks = sorted(int(cond["box_track"][0, 0]) // 10 for _, cond in loader)
    assert tracks == [0, 1, 2, 3]
    stream.set_epoch(1)
    again = sorted(int(cond["box_track"][0, 0]) // 10 for _, cond in DataLoader(stream, batch_size=None))
    assert again == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("time_of_day == night", {"c2", "c3"}),
        (["time_of_day=day", "crowdedness>=2"], {"c1"}),
        ([("crowdedness", ">=", "moderate")], {"c1", "c2"}),
        ("crowdedness < light", {"c3"}),
        ({"time_of_day": "day"}, {"c0", "c1"}),
        (ds.field("clip_id") == "c2", {"c2"}),
    ],
)
def test_filters_select_rows(catalog, spec, expected):
    data = CatalogDataset(catalog, spec, num_frames=2, size=(32, 64))
    assert {data.clip_id(i) for i in range(len(data))} == expected
    stream = CatalogStream(catalog, spec, num_frames=2, size=(32, 64))
    assert {int(c["box_track"][0, 0]) // 10 for _, c in stream} == {int(c[1:]) for c in expected}


def test_bad_filters_name_the_problem():
    with pytest.raises(CatalogError, match="not a catalog column"):
        catalog_filter("colour == red")
    with pytest.raises(CatalogError, match="crowdedness 'busy'"):
        catalog_filter("crowdedness >= busy")
    with pytest.raises(CatalogError, match="COLUMN OP VALUE"):
        catalog_filter("time_of_day night")


def test_random_crop_and_squash_move_the_boxes(catalog):
    center = CatalogDataset(catalog, "clip_id == c0", num_frames=1, size=(32, 32))[0][1]
    # 64x128 -> centre 64x64 (columns 32..96) -> 32x32: box x 0..16 is cut to 32..32 = gone
    assert not center["box_mask"].any()
    squash = CatalogDataset(catalog, "clip_id == c0", num_frames=1, size=(32, 32), crop="none")[0][1]
    torch.testing.assert_close(squash["boxes"][0, 0], torch.tensor([0.0, 0.25, 0.125, 0.75]))
    crops = {
        tuple(
            CatalogDataset(catalog, "clip_id == c3", num_frames=1, size=(32, 32), crop="random", seed=s)[0][
                1
            ]["boxes"][0, 0].tolist()
        )
        for s in range(6)
    }
    assert len(crops) > 1  # the crop moves with the seed


def test_collate_pads_variable_box_counts():
    def item(n):
        boxes = [Box(0, 0, 4, 4, "car", j) for j in range(n)]
        from drivesim.data.conditions import clip_conditions

        cond = clip_conditions([boxes, boxes[:1]], (8, 8), "day", "light", 30, None, n)
        return torch.zeros(2, 3, 8, 8), cond

    frames, cond = collate_clips([item(1), item(3), item(0)])
    assert frames.shape == (3, 2, 3, 8, 8) and cond["boxes"].shape == (3, 2, 3, 4)
    assert cond["box_mask"].sum(-1).tolist() == [[1, 1], [3, 1], [0, 0]]
    assert cond["box_track"][0, 0].tolist() == [0, -1, -1]


def test_mix_draws_by_weight_and_is_seeded(catalog):
    real = CatalogDataset(catalog, "time_of_day == day", num_frames=1, size=(16, 32))
    synthetic = CatalogDataset(catalog, "time_of_day == night", num_frames=1, size=(16, 32))
    mixed = mix(real, synthetic, weights=(0.25, 0.75), seed=1, length=400)
    picks = [mixed.source(i)[0] for i in range(400)]
    assert 0.65 < sum(picks) / 400 < 0.85
    assert picks == [mix(real, synthetic, (0.25, 0.75), seed=1, length=400).source(i)[0] for i in range(400)]
    _, cond = mixed[picks.index(1)]
    assert cond["time_of_day"].item() == 1
    stream = mix(
        CatalogStream(catalog, "time_of_day == day", num_frames=1, size=(16, 32)), synthetic, weights=(1, 1)
    )
    assert 1 <= len(list(stream)) <= 4  # ends with the first exhausted source
    with pytest.raises(ValueError, match="weights"):
        mix(real, synthetic, weights=(1, -1))


def test_reads_a_schema_version_1_catalog(catalog, tmp_path):
    """Version-1 fragments lack the augment columns: they read as null, boxes count as known."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(catalog, old)
    info = json.loads((old / INFO).read_text())
    (old / INFO).write_text(json.dumps(info | {"schema_version": 1}))
    v1_columns = [n for n, _, _ in COLUMNS][: COLUMNS.index(next(c for c in COLUMNS if c[0] == "boxes")) + 1]
    boxes_type = next(t for n, t, _ in COLUMNS if n == "boxes")
    boxes_v1 = pa.list_(pa.struct([f for f in boxes_type.value_type if f.name != "truncated"]))
    for path in fragment_files(old):
        table = pq.read_table(path).select(v1_columns)
        table = table.set_column(
            table.schema.get_field_index("boxes"), "boxes", table["boxes"].cast(boxes_v1)
        )
        pq.write_table(table, path)
    rows = read_clips(old).to_pylist()
    assert len(rows) == 4 and all(r["source_clip_id"] is None and r["boxes_known"] is None for r in rows)
    assert all(b["truncated"] is None for r in rows for b in r["boxes"])  # a field added in schema 4
    _, cond = CatalogDataset(old, num_frames=2, size=(32, 64))[0]
    assert bool(cond["boxes_known"]) and cond["box_mask"][0].sum() == 1
    CatalogWriter(old)  # a writer upgrades the info to the current version (additive columns)
    assert json.loads((old / INFO).read_text())["schema_version"] == CATALOG_SCHEMA_VERSION
    (old / INFO).write_text(json.dumps(info | {"schema_version": 99}))
    with pytest.raises(CatalogError, match="schema_version 99"):
        CatalogDataset(old)
    assert (old / CLIPS).is_dir()


def test_bench_dataloader_reports_clips_per_second(catalog):
    from drivesim.bench.dataloader import bench_dataloader, format_rows

    rows = bench_dataloader(
        catalog, workers=(0,), batch_size=2, num_frames=2, fps=15, size=(16, 32), epochs=1
    )
    assert [(r["dataset"], r["workers"], r["clips"]) for r in rows] == [("map", 0, 8), ("stream", 0, 8)]
    assert all(r["clips_per_s"] > 0 for r in rows) and "clips/s" in format_rows(rows)


def test_box_rows_keep_the_occluded_and_truncated_flags():
    from drivesim.data.catalog_dataset import boxes_by_frame

    boxes = [
        Box(0, 5, 9, 30, "truck", 4, 0.5, occluded=False, truncated=True),
        Box(40, 5, 60, 30, occluded=True),
    ]
    back = boxes_by_frame(box_rows([FrameLabel(3, boxes)]))
    assert back == {3: boxes}
    old_rows = [r | {"occluded": None, "truncated": None} for r in box_rows([FrameLabel(3, boxes)])]
    # Rows before schema 4 have neither flag: any unseen part read as occluded, as they said.
    assert [(b.occluded, b.truncated) for b in boxes_by_frame(old_rows)[3]] == [(True, False), (False, False)]
