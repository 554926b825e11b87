"""Masked-context prediction, rollout and interpolation with tiny UNTRAINED models."""

import itertools
import json

import pytest
import torch
from conftest import TINY_AE, TINY_UNET, perturb, save_upsampler
from torch.utils.data import default_collate

from conditioners.context import Context, context_input, keyframe_mask, leading_mask
from drivesim.data.procedural import ProceduralClipDataset
from drivesim.diffusion.guidance import GuidanceScales, guided_prediction
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.models.autoencoder import AutoencoderKL
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.models.unet import VideoUNet
from drivesim.pipelines.cascade import Cascade
from drivesim.pipelines.conditions_track import RolloutConditions
from drivesim.pipelines.rollout import (
    RolloutConfig,
    RolloutState,
    load_rollout_state,
    save_rollout_state,
)
from drivesim.pipelines.streaming_decode import StreamingDecoder, WindowedDecoder
from drivesim.pipelines.video_ldm import VideoLDMPipeline
from drivesim.world import World, WorldSpec

LATENT = (4, 8)  # 32x64 frames

# `drivesim rollout` flags of a quick run: 3 key frames a segment, 1 denoising step a stage
FEW_STEPS = [
    "--new-frames",
    "3",
    "--steps",
    "1",
    "--interpolation-steps",
    "1",
    "--upsample-steps",
    "1",
    "--keep-base",
    "--quiet",
]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    video = VideoUNet(TINY_UNET)
    perturb(video)
    ae = AutoencoderKL(TINY_AE)
    decoder = TemporalDecoder.from_image_autoencoder(ae)
    perturb(decoder, 0.01)
    predict = VideoUNet.with_context(video, context_channels=8)
    return video, predict, decoder.eval()


def conditions(b: int = 1, t: int = 6) -> dict:
    data = ProceduralClipDataset(length=b, num_frames=t, fps=7.5, size=(32, 64), seed=3)
    return default_collate([data[i][1] for i in range(b)])


def track(key_frames: int) -> RolloutConditions:
    spec = WorldSpec(
        num_frames=key_frames * 4 + 1, fps=30.0, height=32, width=64, seed=2, crowdedness="moderate"
    )
    return RolloutConditions(
        list(World(spec).labels()), (32, 64), "night", ["light", "crowded"], 7.5, keys_per_segment=3
    )


def test_context_channel_layout():
    latents = torch.randn(2, 5, 4, 3, 3)
    mask = leading_mask(2, 5, torch.tensor([0, 2]))
    x = context_input(latents, mask)
    assert x.shape == (2, 5, 5, 3, 3)
    assert torch.equal(x[1, :2, :4], latents[1, :2])
    assert (x[1, 2:, :4] == 0).all() and (x[0, :, :4] == 0).all()
    assert torch.equal(x[:, :, 4, 0, 0], mask)
    assert keyframe_mask(1, 9).tolist() == [[1, 0, 0, 0, 1, 0, 0, 0, 1]]


def test_context_model_starts_as_the_video_model(models):
    video, predict, _ = models
    x, t = torch.randn(1, 6, 4, *LATENT), torch.tensor([500])
    ctx = Context(torch.randn_like(x), leading_mask(1, 6, 2), torch.tensor([0]))
    with torch.no_grad():
        torch.testing.assert_close(predict(x, t, conditions(), context=ctx), video(x, t, conditions()))


def test_zero_context_guidance_is_the_unconditional_branch(models):
    predict = VideoUNet.with_context(models[0], 8)
    perturb(predict)  # context path active (a copy: the fixture's model stays as built)
    x, t, cond = torch.randn(1, 6, 4, *LATENT), torch.tensor([300]), conditions()
    empty = Context.empty(x)
    full = Context(torch.randn_like(x), leading_mask(1, 6, 2), torch.tensor([0]))
    call = lambda x, t, c, context=None: predict(x, t, c, context=context)
    with torch.no_grad():
        plain = guided_prediction(call, x, t, cond, GuidanceScales(2.0, 1.5, context=1.0), empty)
        guided = guided_prediction(call, x, t, cond, GuidanceScales(2.0, 1.5, context=4.0), empty)
        with_ctx = guided_prediction(call, x, t, cond, GuidanceScales(2.0, 1.5, context=4.0), full)
    # batched branches: BLAS paths differ by CPU
    torch.testing.assert_close(guided, plain, atol=1e-4, rtol=1e-4)
    assert (with_ctx - plain).abs().max() > 1e-4  # the context does reach the prediction


def pipeline(unet, decoder) -> VideoLDMPipeline:
    return VideoLDMPipeline(unet, decoder, ScheduleConfig(), latent_scale=1.0)


def test_rollout_segments_continuity_and_resume(models, tmp_path):
    _, predict, decoder = models
    pred = pipeline(predict, decoder)
    cfg = RolloutConfig(
        segments=3, new_frames=3, context_frames=2, steps=2, interpolation_steps=2, latent_size=LATENT, seed=4
    )
    cascade = Cascade(pred, pred)
    segments = list(cascade.segments(track(9), cfg))
    windows = [s.key_latents for s in segments[:-1]]
    assert sum(s.meta.new_key_frames for s in segments) == 3 * 3  # N segments -> N * new_frames key frames
    for prev, cur in itertools.pairwise(windows):  # context frames continue exactly
        assert torch.equal(cur[:, :2], prev[:, -2:])
    frames = torch.cat([s.frames for s in segments if s.frames.numel()], 1)
    assert frames.shape[1] == 1 + 4 * (9 - 1)  # key 0 + 4 output frames per later key
    assert [s.meta.first_frame for s in segments] == sorted(s.meta.first_frame for s in segments)
    assert [lab.frame_index for s in segments for lab in s.labels] == list(range(frames.shape[1]))

    # Interrupted after two segments: the state saved then resumes to the same frames.
    state = RolloutState()
    gen = cascade.segments(track(9), cfg, state)
    first_two = [next(gen).frames, next(gen).frames]
    save_rollout_state(tmp_path / "state", state, cfg, {"scenario": "test"})
    resumed_state, meta = load_rollout_state(tmp_path / "state")
    assert meta["next_segment"] == 2 and meta["scenario"] == "test"
    rest = [s.frames for s in cascade.segments(track(9), cfg, resumed_state)]
    resumed = torch.cat([f for f in first_two + rest if f.numel()], 1)
    assert torch.equal(resumed, frames)


def test_interpolation_keeps_key_frames(models):
    _, predict, decoder = models
    pred = pipeline(predict, decoder)
    cfg = RolloutConfig(steps=2, interpolation_steps=2, latent_size=LATENT)
    keys = torch.randn(1, 3, 4, *LATENT)
    fine = Cascade(pred, pred).interpolate(keys, 0, track(3), cfg, seed=0)
    assert fine.shape == (1, 8, 4, *LATENT)
    assert torch.equal(fine[:, 3], keys[:, 1]) and torch.equal(fine[:, 7], keys[:, 2])


@pytest.mark.parametrize("kind,chunk", [("windows", 3), ("windows", 8), ("layers", 3), ("layers", 8)])
def test_streaming_decode_equals_full_decode(models, kind, chunk):
    decoder = models[2]
    z = torch.randn(1, 23, 4, *LATENT)
    stream = WindowedDecoder(decoder, chunk=chunk) if kind == "windows" else StreamingDecoder(decoder, chunk)
    frames_in = []  # latent frames the first layer (post_quant_conv) sees per call
    hook = decoder.post_quant_conv.register_forward_pre_hook(
        lambda m, args: frames_in.append(args[0].shape[0])
    )
    parts = [stream.push(z[:, a:b]) for a, b in ((0, 5), (5, 6), (6, 17), (17, 23))] + [stream.flush()]
    hook.remove()
    streamed = torch.cat([p for p in parts if p.numel()], 1)
    with torch.no_grad():
        full = decoder(z).clamp(-1, 1)
    torch.testing.assert_close(streamed, full, atol=1e-4, rtol=1e-4)
    if kind == "windows":  # activation memory bounded by the chunk, the radius recomputed per window
        assert max(frames_in) <= chunk + 2 * stream.radius
        assert stream.buffer is not None and stream.buffer.shape[1] <= 2 * stream.radius + 11
    else:  # every latent frame decoded once, at most `chunk` at a time
        assert sum(frames_in) == 23 and max(frames_in) <= chunk


def test_rollout_needs_a_context_model(models):
    video, predict, decoder = models
    with pytest.raises(ValueError, match="prediction model"):
        next(Cascade(pipeline(video, decoder)).segments(track(3), RolloutConfig(interpolate=False)))
    with pytest.raises(ValueError, match="frames=0: give 1 or more"):
        no_frames = RolloutConfig(interpolate=False, frames=0)
        next(Cascade(pipeline(predict, decoder)).segments(track(3), no_frames))


@pytest.fixture(scope="module")
def cascade_dir(tmp_path_factory, models):
    from drivesim.models.weights import save_checkpoint

    video, predict, decoder = models
    d = tmp_path_factory.mktemp("cascade")
    ae = AutoencoderKL(TINY_AE)
    save_checkpoint(ae, d / "autoencoder", {"autoencoder": TINY_AE.to_dict()})
    save_checkpoint(decoder, d / "temporal_decoder", {"autoencoder": TINY_AE.to_dict()})
    meta = {"latent_scale": 1.0, "step": 0, "train_config": {"schedule": {}}}
    save_checkpoint(video, d / "unet", {"unet": video.cfg.to_dict(), **meta})
    for name in ("prediction", "interpolation"):
        save_checkpoint(predict, d / name, {"unet": predict.cfg.to_dict(), **meta})
    save_upsampler(d)
    return d


def read_frames(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.slow
def test_rollout_command_resumes_after_interruption(cascade_dir, repo, tmp_path, monkeypatch):
    import json

    from drivesim.cli import main
    from drivesim.pipelines import rollout_job

    scenario = str(repo / "scenarios" / "day_cut_in.yaml")
    args = [scenario, "--segments", "3", "--model", str(cascade_dir), "--crowdedness", "light,crowded"]
    args += FEW_STEPS
    assert main(["rollout", *args, "--out", str(tmp_path / "full")]) == 0
    meta = json.loads((tmp_path / "full" / "day_cut_in.meta.json").read_text())
    assert meta["frames"] == 1 + 4 * (9 - 1) and meta["fps"] == 30
    assert meta["resolution"] == [512, 1024] and meta["base_resolution"] == [128, 256]
    full_frames, base_frames = (read_frames(tmp_path / "full" / f"day_cut_in{s}.mp4") for s in ("", ".base"))
    assert len(full_frames) == len(base_frames) == meta["frames"]
    assert full_frames[0].shape == (512, 1024, 3) and base_frames[0].shape == (128, 256, 3)
    assert meta["diagnostics"]["seam_ratio"] > 0 and len(meta["diagnostics"]["segments"]) == 3
    assert not (tmp_path / "full" / "day_cut_in").exists()  # work folder removed when complete

    real_write = rollout_job.write_mp4

    def failing_write(path, frames, fps):
        if path.name == "part-00001.mp4":
            raise KeyboardInterrupt
        real_write(path, frames, fps)

    monkeypatch.setattr(rollout_job, "write_mp4", failing_write)
    assert main(["rollout", *args, "--out", str(tmp_path / "cut")]) == 130  # Ctrl-C after segment 0
    assert not (tmp_path / "cut" / "day_cut_in.mp4").exists()
    monkeypatch.setattr(rollout_job, "write_mp4", real_write)
    assert main(["rollout", *args, "--out", str(tmp_path / "cut")]) == 0
    full, resumed = (read_frames(tmp_path / d / "day_cut_in.mp4") for d in ("full", "cut"))
    assert len(full) == len(resumed) == meta["frames"]
    assert all((a == b).all() for a, b in zip(full, resumed))


@pytest.mark.slow
def test_rollout_is_cut_to_the_seconds_asked_for(cascade_dir, repo, tmp_path):
    """0.9 s at 30 fps is 27 frames; 3 whole segments of 3 key frames make 33. The video, the kept
    base video, the labels and the diagnostics all stop at 27 (the cut is inside segment 2)."""
    import json

    from drivesim.cli import main
    from drivesim.data.labels import read_scalabel

    out = tmp_path / "out"
    scenario = str(repo / "scenarios" / "day_cut_in.yaml")
    args = ["rollout", scenario, "--seconds", "0.9", "--model", str(cascade_dir), "--out", str(out)]
    assert main(args + FEW_STEPS) == 0
    meta = json.loads((out / "day_cut_in.meta.json").read_text())
    assert meta["rollout"]["segments"] == 3 and meta["rollout"]["frames"] == 27 and meta["frames"] == 27
    for name in ("day_cut_in", "day_cut_in.base"):
        assert len(read_frames(out / f"{name}.mp4")) == len(read_scalabel(out / f"{name}.json")) == 27
    segments = meta["diagnostics"]["segments"]
    assert [s["first_frame"] for s in segments] == [0, 9, 21] and sum(s["frames"] for s in segments) == 27


@pytest.mark.slow
def test_bench_rollout_rows(cascade_dir, repo):
    from drivesim.bench.rollout import STAGES, bench_rollout, format_rows

    rows = bench_rollout(
        (1, 2),
        steps=1,
        interpolation_steps=1,
        model_dir=str(cascade_dir),
        scenario=str(repo / "scenarios" / "day_cut_in.yaml"),
        threads=1,
        upsampler="bicubic",
    )
    assert [r["frames"] for r in rows] == [1 + 4 * 5, 1 + 4 * 11]
    assert rows[0]["peak_ratio"] == 1.0 and rows[1]["peak_mib"] > 0
    for r in rows:  # every stage ran and took time (interpolation is the key blend by default: ~0);
        stages = {s: r[f"{s}_s_per_frame"] for s in STAGES}  # together they fit in the whole run
        assert all(v > 0 for s, v in stages.items() if s != "interpolation")
        assert sum(stages.values()) <= r["s_per_frame"]
    assert "ratio" in format_rows(rows) and "interpolation" in format_rows(rows)


def test_denoising_loss_leaves_known_frames_out(models, tmp_path):
    import torch.nn.functional as F

    from drivesim.eval.denoising import denoising_loss
    from drivesim.train.latent_cache import LatentClipDataset, build_latent_cache

    clips = ProceduralClipDataset(length=2, num_frames=5, fps=7.5, size=(32, 64), seed=9)
    path = build_latent_cache(
        clips, lambda x: F.avg_pool2d(torch.cat([x, x[:, :1]], 1), 8), tmp_path / "c.safetensors", meta={}
    )
    data = LatentClipDataset(path)
    video, predict, _ = models
    image = denoising_loss(video, data, 1.0, clips=2, num_frames=5, image_only=True)
    plain = denoising_loss(video, data, 1.0, clips=2, num_frames=5)
    assert image > 0 and plain > 0 and image != plain  # temporal layers change the prediction
    # The context model starts as the video model (same outputs, same noise), so the means
    # would be equal if the known key frames 0 and 4 were not left out.
    keys = denoising_loss(predict, data, 1.0, clips=2, num_frames=5, keyframes=True, stage=1)
    assert keys != pytest.approx(plain, rel=1e-6)


def test_eval_context_reports_every_strength(cascade_dir, tmp_path):
    import math

    from drivesim.eval.context_use import context_use_report

    report = context_use_report(
        str(cascade_dir),
        (1.0, 0.5),
        cache_dir=str(tmp_path),
        clips=1,
        steps=2,
        interpolation_steps=2,
        progress=False,
    )
    assert list(report) == ["prediction s=1", "interpolation s=1", "prediction s=0.5", "interpolation s=0.5"]
    assert all(math.isfinite(v) for m in report.values() for v in m.values())
    # the real clips and the linear blend do not depend on the sampling
    assert report["prediction s=1"]["step_real"] == report["prediction s=0.5"]["step_real"]
    a, b = report["interpolation s=1"], report["interpolation s=0.5"]
    assert a["latent_mse_linear_blend"] == b["latent_mse_linear_blend"] and a["latent_mse"] != b["latent_mse"]
    p = report["prediction s=1"]
    assert p["step_ratio"] == pytest.approx(p["step_context_to_new"] / p["step_real"])


def test_heldout_caches_are_per_clip_count(cascade_dir, tmp_path):
    """A cache built for 1 clip is not reused when 2 are asked for (it was, silently)."""
    from drivesim.eval.denoising import heldout_caches

    one = heldout_caches(str(cascade_dir), str(tmp_path), 1)
    two = heldout_caches(str(cascade_dir), str(tmp_path), 2)
    assert [len(one[f]) for f in (7.5, 30.0)] == [1, 1]
    assert [len(two[f]) for f in (7.5, 30.0)] == [2, 2]


def test_shared_cascade_writes_each_clip_at_its_own_size(cascade_dir, repo, tmp_path):
    """One cascade with the upsampler loaded: a base-size clip is not upsampled, a 256x512 one is
    upsampled by the model and resized, and the labels match each video."""
    from drivesim.data.labels import read_scalabel
    from drivesim.pipelines.rollout import RolloutConfig
    from drivesim.pipelines.rollout_job import RenderSettings, rollout_cascade, run_rollout
    from drivesim.scenario import load_scenario

    cfg = RolloutConfig(segments=1, new_frames=3, steps=1, interpolation_steps=1)
    base = load_scenario(repo / "scenarios" / "day_cut_in.yaml")
    cascade = rollout_cascade(cascade_dir, cfg, RenderSettings(upsampler="model"), [(512, 1024)])
    assert cascade.upsampler is not None
    for size in ((128, 256), (256, 512)):
        scenario = base.model_copy(
            update={"id": f"clip{size[0]}", "output": base.output.model_copy(update={"resolution": size})}
        )
        render = RenderSettings(upsampler="model")
        meta = run_rollout(scenario, tmp_path, cfg, render=render, cascade=cascade, progress=False).meta
        frames = read_frames(tmp_path / f"clip{size[0]}.mp4")
        assert meta.resolution == size and frames[0].shape == (*size, 3)
        assert meta.upsampler["method"] == ("none" if size == (128, 256) else "model")
        saved = json.loads((tmp_path / f"clip{size[0]}.meta.json").read_text())
        assert saved == json.loads(json.dumps(meta.to_json())) and saved["resolution"] == list(size)
        labels = read_scalabel(tmp_path / f"clip{size[0]}.json")
        assert len(labels) == len(frames)
