"""Evaluation metrics on constructed inputs whose right values are known."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.eval.adherence import DEFAULT_PROBES, AdherenceMeter, load_probes
from drivesim.export.video import write_mp4
from drivesim.metrics import drift, flicker, rollout_diagnostics, seam_ratio, warp_error
from drivesim.models.discriminators import shuffle_frames
from drivesim.models.probes import BoxProbe, ClipProbe, ProbeConfig, crop_boxes
from drivesim.train.probes import box_iou


@pytest.fixture(scope="module")
def clip():
    frames, cond = ProceduralClipDataset(
        length=1, num_frames=8, fps=30.0, seed=987_654, time_of_day="day", crowdedness="moderate"
    )[0]
    return frames, cond


def test_static_video_has_zero_flicker_and_warp_error(clip):
    static = clip[0][:1].repeat(6, 1, 1, 1)
    assert flicker(static) == 0.0
    assert warp_error(static) < 0.5  # Farneback finds sub-pixel noise flow, < 0.5 grey levels


def test_shuffled_frames_have_high_warp_error(clip):
    frames = clip[0]
    ordered = warp_error(frames)
    shuffled = warp_error(frames[[0, 5, 2, 7, 1, 6, 3, 4]])
    assert shuffled > 1.5 * ordered, (ordered, shuffled)


def test_seam_ratio_sees_jumps_at_segment_starts():
    ramp = torch.linspace(-1, 1, 12).view(12, 1, 1, 1).expand(12, 3, 4, 4).clone()
    assert seam_ratio(ramp, [4, 8])["ratio"] == pytest.approx(1.0, rel=1e-5)
    jumpy = ramp.clone()
    jumpy[4:] += 0.2
    jumpy[8:] += 0.2
    step = 2 / 11
    assert seam_ratio(jumpy, [4, 8])["ratio"] == pytest.approx((step + 0.2) / step, rel=1e-5)


def test_drift_slope_of_a_brightness_ramp():
    t = 10
    values = torch.arange(t, dtype=torch.float32) * (4 / 255)  # +2 grey levels per frame ([-1,1] scale)
    video = (values - 0.5).view(t, 1, 1, 1).expand(t, 3, 2, 2)
    d = drift(video, fps=10.0)
    assert d["brightness_slope_per_s"] == pytest.approx(20.0, rel=1e-4)
    assert d["brightness_range"] == pytest.approx(18.0, rel=1e-4)


def test_rollout_diagnostics_from_an_mp4(tmp_path):
    frames = np.zeros((12, 32, 64, 3), np.uint8)
    frames[:] = 100
    frames[6:] = 160  # one segment border with a jump
    write_mp4(tmp_path / "v.mp4", frames, 30)
    d = rollout_diagnostics(str(tmp_path / "v.mp4"), 30.0, [6])
    assert d["frames"] == 12 and d["within"] < 2 and d["seam"] > 50
    assert [s["frames"] for s in d["segments"]] == [6, 6]
    assert d["segments"][1]["brightness"] - d["segments"][0]["brightness"] == pytest.approx(60, abs=3)


def test_box_crops_and_iou():
    frames = torch.zeros(1, 3, 20, 40)
    frames[:, :, 10:20, 20:40] = 1.0  # bottom-right quadrant
    crop = crop_boxes(frames, torch.tensor([[0.5, 0.5, 1.0, 1.0]]), 8)
    assert torch.allclose(crop, torch.ones_like(crop), atol=1e-5)
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    assert box_iou(
        a, torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.0, 0.75, 0.5], [0.6, 0.6, 1, 1]])
    ).tolist() == [[1.0, pytest.approx(1 / 3), 0.0]]


def test_per_clip_shuffle_is_never_the_identity():  # as the probe training shuffles each clip
    video = torch.arange(3).view(1, 3).expand(50, 3).clone()
    g = torch.Generator().manual_seed(0)
    assert all(not torch.equal(shuffle_frames(v, g, dim=0), torch.arange(3)) for v in video)


def test_untrained_probe_shapes():
    cfg = ProbeConfig()
    out = ClipProbe(cfg)(torch.zeros(2, 5, 3, 128, 256))
    assert out["features"].shape == (2, cfg.feature_dim) and out["crowdedness"].shape == (2, 4)
    assert BoxProbe(cfg)(torch.zeros(3, 3, 128, 256), torch.rand(3, 4)).shape == (3,)


@pytest.mark.skipif(not (DEFAULT_PROBES / "clip.safetensors").exists(), reason="shipped probes missing")
def test_shipped_probes_classify_night_and_day_clips():
    meter = AdherenceMeter(*load_probes())
    for tod in ("night", "day"):
        data = ProceduralClipDataset(length=2, num_frames=8, fps=7.5, seed=55_555, time_of_day=tod)
        items = [data[i] for i in range(2)]
        meter.update(torch.stack([f for f, _ in items]), default_collate([c for _, c in items]))
    assert meter.report()["time_of_day_accuracy"] == 1.0


def test_report_on_folders_writes_json_and_markdown(tmp_path):
    from drivesim.eval.report import EvalConfig, VideoSetConfig, run_eval
    from drivesim.export.world_clips import write_world_clip
    from drivesim.models.weights import save_checkpoint
    from drivesim.world import WorldSpec

    probes = tmp_path / "probes"
    cfg = ProbeConfig()
    torch.manual_seed(0)
    save_checkpoint(ClipProbe(cfg), probes / "clip", {"probe": cfg.to_dict()})
    save_checkpoint(BoxProbe(cfg), probes / "box", {"probe": cfg.to_dict()})
    real = VideoSetConfig(source="procedural", clips=2, num_frames=4, fps=7.5)
    same = EvalConfig(
        real=real, generated=real, reconstruct=False, probes=str(probes), out=str(tmp_path / "r")
    )
    report = run_eval(same, progress=False)
    assert report["sets"]["generated"]["probe_fd"] == pytest.approx(0.0, abs=1e-6)
    assert json.loads((tmp_path / "r" / "report.json").read_text())["sets"]["real"]["clips"] == 2
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| probe_fd |" in md and "FID skipped" in md
    # Real-data hook: a folder of videos with Scalabel labels (here rendered world clips).
    for i, tod in enumerate(("day", "night")):
        spec = WorldSpec(num_frames=16, fps=30.0, time_of_day=tod, seed=i)
        write_world_clip(spec, tmp_path / "videos", f"c{i}")
    folder = VideoSetConfig(source="folder", root=str(tmp_path / "videos"), clips=2, num_frames=4, fps=7.5)
    report = run_eval(
        EvalConfig(
            real=folder, generated=real, reconstruct=False, probes=str(probes), out=str(tmp_path / "f")
        ),
        progress=False,
    )
    assert report["sets"]["real"]["clips"] == 2 and report["sets"]["real"]["clips_with_time_of_day"] == 2
    assert report["sets"]["generated"]["probe_fd"] > 0


def test_warped_reference_flicker_ignores_errors_that_move_with_the_scene():
    from drivesim.metrics import warped_reference_flicker

    g = torch.Generator().manual_seed(0)
    texture = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 128, generator=g), 5, 1, 2)[0] * 1.6 - 0.8
    reference = torch.stack([texture.roll(t, dims=2) for t in range(6)])  # panning 1 px per frame
    error = 0.1 * torch.nn.functional.avg_pool2d(torch.randn(1, 3, 64, 128, generator=g), 5, 1, 2)[0]
    carried = reference + torch.stack([error.roll(t, dims=2) for t in range(6)])
    in_place = reference + 0.1 * torch.nn.functional.avg_pool2d(
        torch.randn(6, 3, 64, 128, generator=g), 5, 1, 2
    )
    moved, changing, exact = warped_reference_flicker([carried, in_place, reference], reference)
    assert exact == 0.0 and changing > 0.5 and moved < changing / 3
    with pytest.raises(ValueError, match="shaped like the reference"):
        warped_reference_flicker([reference[:3]], reference)
