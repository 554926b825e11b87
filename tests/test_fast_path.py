"""The fast inference path against the eager reference (tiny UNTRAINED models): layer-by-layer
streaming, conditions prepared once per sampling run, frames made only when written, the tuned
allocator. Tolerances: 1e-4 absolute on decoded frames in [-1,1] (float32 sums in another order),
1e-3 after a whole rollout."""

import pytest
import torch
from conftest import TINY_AE, TINY_UNET, perturb, save_cascade
from torch import nn

from drivesim.diffusion.guidance import GuidanceScales, GuidedDenoiser, guided_prediction
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.models.autoencoder import AutoencoderKL
from drivesim.models.layer_stream import Layer, LayerStream
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.models.unet import PREPARED_LAYOUT, VideoUNet
from drivesim.pipelines.cascade import Cascade
from drivesim.pipelines.conditions_track import RolloutConditions
from drivesim.pipelines.rollout import RolloutConfig, clip_frames
from drivesim.pipelines.streaming_decode import StreamingDecoder, WindowedDecoder
from drivesim.pipelines.video_ldm import VideoLDMPipeline
from drivesim.runtime import tune_allocator
from drivesim.world import World, WorldSpec

LATENT = (4, 8)


def toy_layers(calls: list[int]) -> list[Layer]:
    """Per-frame scale, a radius-1 and a radius-2 temporal mix: frames [t,c] -> [t,c]."""
    torch.manual_seed(0)
    conv1, conv2 = nn.Conv1d(3, 3, 3, padding=1), nn.Conv1d(3, 3, 5, padding=2)

    def per_frame(x, first):
        calls.append(x.shape[0])
        return x * 2 + 1

    def temporal(conv):
        # each frame's global index enters, as the decoder's frame position embedding does
        return lambda x, first: conv(x.T[None])[0].T + 0.01 * torch.arange(first, first + len(x))[:, None]

    return [Layer(per_frame), Layer(temporal(conv1), 1), Layer(temporal(conv2), 2), Layer(per_frame)]


def full_pass(layers: list[Layer], x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer.fn(x, 0)
    return x


@pytest.mark.parametrize("pushes,chunk", [((4, 1, 9, 3), 2), ((17,), 8), ((1,) * 17, 3)])
def test_layer_stream_equals_one_pass_and_computes_each_frame_once(pushes, chunk):
    calls: list[int] = []
    layers = toy_layers(calls)
    x = torch.randn(sum(pushes), 3)
    with torch.no_grad():
        full = full_pass(layers, x)
        calls.clear()
        stream, outs, at = LayerStream(layers, chunk), [], 0
        for n in pushes:
            outs.append(stream.push(x[None, at : at + n]))
            at += n
        outs.append(stream.flush())
    streamed = torch.cat([o for o in outs if o.numel()], 1)[0]
    torch.testing.assert_close(streamed, full, atol=1e-5, rtol=1e-5)
    assert stream.lag == 3 and stream.emitted == len(x)
    # each per-frame layer sees each frame once; a layer after the temporal ones gets at most the
    # frames they held back on top of a chunk (at the flush)
    assert sum(calls) == 2 * len(x) and max(calls) <= chunk + stream.lag


def test_layer_stream_resumes_from_its_state_and_from_a_windowed_one():
    td = TemporalDecoder.from_image_autoencoder(AutoencoderKL(TINY_AE)).eval()
    perturb(td, 0.05)
    z = torch.randn(1, 19, 4, *LATENT)
    with torch.no_grad():
        full = td(z).clamp(-1, 1)
    first = StreamingDecoder(td, 4)
    head = first.push(z[:, :9])
    resumed = StreamingDecoder(td, 4)
    resumed.load_state({k: v.clone() for k, v in first.state().items()})
    tail = [resumed.push(z[:, 9:]), resumed.flush()]
    windowed = WindowedDecoder(td, 5)  # a state saved by the windowed decoder (older drivesim)
    w_head = windowed.push(z[:, :9])
    from_windows = StreamingDecoder(td, 4)
    from_windows.load_state(windowed.state())
    w_tail = [from_windows.push(z[:, 9:]), from_windows.flush()]
    for parts in ([head, *tail], [w_head, *w_tail]):
        out = torch.cat([p for p in parts if p.numel()], 1)
        torch.testing.assert_close(out, full, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="chunk=0"):
        LayerStream([], chunk=0)


def test_prepared_conditions_give_the_same_prediction():
    torch.manual_seed(1)
    unet = VideoUNet(TINY_UNET).eval()
    perturb(unet)
    cond = {
        "time_of_day": torch.tensor([1]),
        "crowdedness": torch.tensor([2]),
        "boxes": torch.tensor([[[[0.1, 0.4, 0.4, 0.8], [0.5, 0.5, 0.7, 0.7]]]]).repeat(1, 3, 1, 1),
        "box_class": torch.zeros(1, 3, 2, dtype=torch.long),
        "box_mask": torch.ones(1, 3, 2, dtype=torch.bool),
    }
    x, t = torch.randn(1, 3, 4, *LATENT), torch.tensor([500])
    scales = GuidanceScales(2.0, 1.5)
    with torch.no_grad():
        per_step = guided_prediction(unet, x, t, cond, scales)
        prepared = GuidedDenoiser(unet, cond, scales, prepare=lambda c: unet.prepare_conditions(c, 3, LATENT))
        assert PREPARED_LAYOUT in prepared.cond
        torch.testing.assert_close(prepared(x, t), per_step, atol=1e-5, rtol=1e-5)


def tiny_cascade() -> Cascade:
    torch.manual_seed(0)
    video = VideoUNet(TINY_UNET)
    perturb(video)
    predict = VideoUNet.with_context(video, context_channels=8).eval()
    decoder = TemporalDecoder.from_image_autoencoder(AutoencoderKL(TINY_AE)).eval()
    perturb(decoder, 0.01)
    pipe = VideoLDMPipeline(predict, decoder, ScheduleConfig(), latent_scale=1.0)
    return Cascade(pipe, pipe)


def test_fast_segments_make_only_the_frames_written_and_match_the_reference():
    """3 segments of 3 key frames make 33 frames; 26 are asked for. The fast path interpolates and
    decodes only those; its frames equal the reference's except the last radius (7) frames, which
    see the clip's end instead of the cut frames after it."""
    cascade = tiny_cascade()
    spec = WorldSpec(num_frames=37, fps=30.0, height=32, width=64, seed=2, crowdedness="moderate")
    track = RolloutConditions(list(World(spec).labels()), (32, 64), "day", ["light"], 7.5, keys_per_segment=3)
    cfg = RolloutConfig(
        segments=3, new_frames=3, steps=1, interpolation_steps=1, latent_size=LATENT, seed=1, frames=26
    )
    assert clip_frames(cfg) == 26
    decoded: list[int] = []
    hook = cascade.key_model.decoder.post_quant_conv.register_forward_pre_hook(
        lambda m, args: decoded.append(args[0].shape[0])
    )
    outs = {}
    for reference in (True, False):
        decoded.clear()
        segments = list(cascade.segments(track, cfg, reference=reference))
        outs[reference] = (torch.cat([s.frames for s in segments if s.frames.numel()], 1), sum(decoded))
    hook.remove()
    (ref, ref_decoded), (fast, fast_decoded) = outs[True], outs[False]
    assert ref.shape == fast.shape and fast.shape[1] == 26
    assert fast_decoded == 26 and ref_decoded > 33  # windows recompute their radius; the cut was made
    radius = cascade.key_model.decoder.receptive_radius
    # 1e-3: the rollout's frames pass a UNet, interpolation and the decoder in another batching
    torch.testing.assert_close(fast[:, : 26 - radius], ref[:, : 26 - radius], atol=1e-3, rtol=1e-3)
    assert (fast[:, -1] - ref[:, -1]).abs().max() > 1e-3  # the last frames see the clip end


def test_tune_allocator_is_switchable(monkeypatch):
    monkeypatch.setenv("DRIVESIM_TUNE_MALLOC", "0")
    assert tune_allocator() is False
    tuned = tune_allocator(True)
    assert isinstance(tuned, bool)  # True on glibc; musl / macOS keep their allocator
    tune_allocator(False)


@pytest.fixture(scope="module")
def cascade_dir(tmp_path_factory):
    return save_cascade(tmp_path_factory.mktemp("cascade"), upsampler=True)


@pytest.mark.slow
def test_bench_cascade_rows(cascade_dir, repo):
    from drivesim.bench.cascade import STAGES, bench_cascade, format_rows

    rows = bench_cascade(
        ("reference", "default"),
        scenario=str(repo / "scenarios" / "day_box_track.yaml"),
        seconds=0.5,
        steps=1,
        interpolation_steps=1,
        model_dir=str(cascade_dir),
        threads=1,
    )
    assert [r["path"] for r in rows] == ["reference", "default"] and rows[0]["ratio"] == 1.0
    assert [r["frames"] for r in rows] == [15, 15] and rows[0]["size"] == [512, 1024]
    assert rows[1]["malloc_tuned"] in (True, False) and rows[0]["malloc_tuned"] is False
    for r in rows:  # every stage was timed; together they fit in the whole run
        assert sum(r[f"{s}_s_per_frame"] for s in STAGES) <= r["s_per_frame"] and r["peak_mib"] > 0
    assert "reference" in format_rows(rows) and "frames/s" in format_rows(rows)
    with pytest.raises(ValueError, match="unknown path"):
        bench_cascade(("fastest",))
