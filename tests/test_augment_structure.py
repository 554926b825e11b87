"""drivesim augment --keep-structure: variants that keep their source's scene (per-frame SDEdit from
the source's latents + its fine detail), and `drivesim eval augment`, which measures it. The
cascade is the untrained tiny one of conftest: the checks are about what reaches the frames."""

import av
import numpy as np
import pytest
import torch
from conftest import save_cascade

from drivesim.cli import main
from drivesim.data.catalog import media_path, read_clips
from drivesim.data.clips import resample_indices
from drivesim.eval.augment_structure import augment_report, edge_correlation, to_base
from drivesim.metrics import psnr
from drivesim.models.model_index import load_reconstructor
from drivesim.models.temporal_decoder import reconstruct_frames
from drivesim.pipelines import augment
from drivesim.pipelines.augment import AugmentOptions, augment_catalog
from drivesim.pipelines.augment_track import AugmentError
from drivesim.pipelines.rollout import RolloutConfig
from drivesim.pipelines.source_guide import SourceGuide, gaussian_blur
from drivesim.utils import to_uint8

FPS, N, H, W = 25, 40, 90, 160
BASE = (32, 64)


def options(**kw) -> AugmentOptions:
    rollout = RolloutConfig(steps=1, interpolation_steps=1, new_frames=3, latent_size=(4, 8))
    return AugmentOptions(rollout, seconds=0.5, upsampler="none", **kw)


def textured_frames() -> np.ndarray:
    """A street-like texture moving 2 px a frame (edges for the Sobel maps, motion for the flow)."""
    rng = np.random.default_rng(0)
    texture = (rng.random((H, W + 2 * N, 3)) * 255).astype(np.uint8)
    texture = np.repeat(np.repeat(texture[::6, ::6], 6, 0), 6, 1)[:H]  # 6-px blocks
    return np.stack([texture[:, 2 * i : 2 * i + W] for i in range(N)])


def write_video(path, frames: np.ndarray) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def read_video(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("structure")
    (root / "real").mkdir()
    frames = textured_frames()
    write_video(root / "real" / "drive.mp4", frames)
    (root / "real" / "drive.json").write_text(
        '[{"name": "drive", "videoName": "drive", "frameIndex": 0, "attributes": {"timeofday": "daytime"}}]'
    )
    return root, save_cascade(root / "model", perturbed=True)


def test_keep_structure_1_is_the_source_through_the_autoencoder(source):
    root, model_dir = source
    augment_catalog(
        root / "real",
        root / "keep1",
        [{"time_of_day": "night"}],
        options(keep_structure=1.0),
        model_dir,
        progress=False,
    )
    row = read_clips(root / "keep1").to_pylist()[0]
    variant = read_video(root / "keep1" / media_path(row["clip_id"], "mp4"))
    real = read_video(root / "real" / "drive.mp4")
    real = np.stack([to_base(real[j], BASE) for j in resample_indices(FPS, row["fps"], 0.0, len(variant))])
    ae, td = load_reconstructor(model_dir)
    with torch.no_grad():
        tensor = torch.from_numpy(real).permute(0, 3, 1, 2).float() / 127.5 - 1
        round_trip = to_uint8(reconstruct_frames(ae, td, tensor))
    write_video_at = root / "round_trip.mp4"
    from drivesim.export.video import write_mp4

    write_mp4(write_video_at, round_trip, row["fps"])  # through H.264 too, as the variant went
    round_trip = read_video(write_video_at)
    as_tensor = lambda x: torch.from_numpy(x).float() / 127.5 - 1
    gap = psnr(as_tensor(variant), as_tensor(real)) - psnr(as_tensor(round_trip), as_tensor(real))
    assert abs(gap) <= 0.5, gap


def test_keep_structure_0_is_the_rollout_without_a_guide(source, monkeypatch):
    root, model_dir = source
    guides = []
    real_run = augment.run_rollout
    monkeypatch.setattr(
        augment, "run_rollout", lambda *a, **k: guides.append(k["source"].guide) or real_run(*a, **k)
    )
    for name, kw in (
        ("a", {"keep_detail": 1.0}),
        ("b", {"keep_detail": 0.3}),
        ("c", {"keep_structure": 0.1}),
    ):
        opts = options(**({"keep_structure": 0.0} | kw))
        augment_catalog(
            root / "real", root / name, [{"time_of_day": "night"}], opts, model_dir, progress=False
        )
    assert guides[0] is None and guides[1] is None  # 0: the paper's rollout, keep_detail unused
    assert isinstance(guides[2], SourceGuide) and guides[2].keep == 0.1 and guides[2].detail == 1.0
    assert guides[2].latents.shape[1] == 2 * 3 * 4 + 1  # a latent per 30 fps frame of 2 segments x 3 keys


def test_bad_keep_structure_gets_a_clear_error(source, capsys):
    with pytest.raises(AugmentError, match=r"--keep-structure 1.5: use a value in 0..1"):
        options(keep_structure=1.5)
    with pytest.raises(AugmentError, match=r"--keep-detail -0.1"):
        options(keep_detail=-0.1)
    root, _ = source
    args = ["augment", "--input", str(root / "real"), "--vary", "time_of_day=night", "--out", str(root / "x")]
    assert main([*args, "--keep-structure", "2"]) == 2
    assert "--keep-structure 2.0: use a value in 0..1" in capsys.readouterr().err
    assert not (root / "x").exists()  # refused before any work


def test_detail_transfer_swaps_fine_detail_and_keeps_the_light():
    torch.manual_seed(0)
    src = torch.randn(1, 3, 4, 16, 32)
    lighter = src + 3.0  # the same scene, brighter: differs only at the lowest frequency
    guide = SourceGuide(src, keep=0.5, detail=1.0)
    torch.testing.assert_close(guide.blend(lighter, 0), lighter)
    other = torch.randn(1, 3, 4, 16, 32)
    out = guide.blend(other, 0)
    fine = lambda x: (x - gaussian_blur(x, guide.sigma)).flatten()
    corr = lambda x, y: torch.corrcoef(torch.stack([fine(x), fine(y)]))[0, 1].item()
    assert corr(out, src) > 0.8 and abs(corr(out, other)) < 0.3  # the source's detail, not its own
    assert torch.equal(SourceGuide(src, keep=0.5, detail=0.0).blend(other, 0), other)
    with pytest.raises(ValueError, match=r"keep=1.2"):
        SourceGuide(src, keep=1.2)


def test_edge_correlation_sees_the_same_layout():
    a = to_base(textured_frames()[0])
    rng = np.random.default_rng(1)
    darker = (a * 0.4 + rng.normal(0, 4, a.shape)).clip(0, 255).astype(np.uint8)  # same scene, night-ish
    noise = (rng.random(a.shape) * 255).astype(np.uint8)
    assert edge_correlation(a, a) == pytest.approx(1.0)
    assert edge_correlation(a, darker) > 0.8 and abs(edge_correlation(a, noise)) < 0.1


def test_eval_augment_reports_every_variant(source, capsys):
    root, model_dir = source
    augment_catalog(
        root / "real", root / "ev", [{"time_of_day": "night"}], options(), model_dir, progress=False
    )
    rows = augment_report(root / "ev", times=(0.0, 0.3))
    assert len(rows) == 1 and set(rows[0]["edge_correlation"]) == {"0", "0.3"}
    assert rows[0]["keep_structure"] == augment.KEEP_STRUCTURE and rows[0]["luma_ratio"] > 0
    assert main(["eval", "augment", str(root / "ev"), "--times", "0,0.3"]) == 0
    assert "edges: 0 s" in capsys.readouterr().out
