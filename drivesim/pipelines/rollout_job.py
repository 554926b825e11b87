"""`drivesim rollout`: a long clip from a scenario, written segment by segment and resumable.

out_dir/<scenario id>/ holds parts/part-NNNNN.mp4 (one per segment, atomic) and the rollout
state after the last finished segment; a re-run continues from there. When every segment is
done the parts are joined without re-encoding into out_dir/<id>.mp4, with the labels
(<id>.json) and the metadata plus drift / seam diagnostics (<id>.meta.json, written last).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from drivesim.data.labels import FrameLabel, to_scalabel
from drivesim.export.video import concat_mp4, write_mp4
from drivesim.metrics import rollout_diagnostics
from drivesim.models.model_index import has_part
from drivesim.models.weights import CheckpointError, checkpoint_paths
from drivesim.pipelines.conditions_track import RolloutConditions
from drivesim.pipelines.generate import load_upsampler, upsampler_meta, warn_resolution
from drivesim.pipelines.rollout import (
    FACTOR,
    Rollout,
    RolloutConfig,
    RolloutState,
    clip_frames,
    load_rollout_state,
    save_rollout_state,
)
from drivesim.pipelines.upsample import StreamingUpsampler, Upsampler, UpsampleSettings, output_frames
from drivesim.pipelines.video_ldm import VideoLDMPipeline
from drivesim.scenario import Scenario, load_scenario
from drivesim.utils import DEFAULT_MODEL_DIR, timed, to_uint8, write_json_atomic

logger = logging.getLogger(__name__)


def load_rollout_pipelines(model_dir: Path,
                           interpolate: bool) -> tuple[VideoLDMPipeline, VideoLDMPipeline | None]:
    """(prediction, interpolation or None) of a model folder, sharing one temporal decoder."""
    for name in ("prediction", "interpolation")[:1 + interpolate]:
        if not has_part(model_dir, name):
            raise CheckpointError(f"{model_dir / name}.safetensors: missing; a rollout needs the '{name}' "
                                  f"model (train it with `drivesim train {name}`)")
    prediction = VideoLDMPipeline.from_pretrained(model_dir, unet="prediction")
    interpolation = prediction.with_unet(model_dir, "interpolation") if interpolate else None
    return prediction, interpolation


@dataclasses.dataclass
class Cascade:
    """The loaded models of a rollout (a batch loads them once for all its clips)."""
    prediction: VideoLDMPipeline
    interpolation: VideoLDMPipeline | None
    upsampler: Upsampler | None


def load_cascade(model_dir: str | Path, cfg: RolloutConfig, upsampler: str = "model",
                 upsample: UpsampleSettings | None = None, device: str = "cpu",
                 output_sizes: list[tuple[int, int]] = ()) -> Cascade:
    """The rollout's models on `device`; the upsampler model only when upsampler == 'model' and
    one of output_sizes (H,W) differs from the base video's size."""
    prediction, interpolation = load_rollout_pipelines(Path(model_dir), cfg.interpolate)
    for pipe in (prediction, interpolation):
        if pipe is not None:
            pipe.to(device)
    base_size = prediction.output_size(cfg.latent_size)
    needed = any(tuple(size) != base_size for size in output_sizes)
    model = load_upsampler(model_dir, upsampler, upsample or UpsampleSettings(), needed=needed)
    if model is not None:
        model.to(device)
    return Cascade(prediction, interpolation, model)


def run_rollout(scenario_path: str | Path | Scenario, out_dir: str | Path, cfg: RolloutConfig,
                model_dir: str | Path = DEFAULT_MODEL_DIR, crowdedness: list[str] | None = None,
                progress: bool = True, decode_chunk: int = 7, device: str = "cpu", upsampler: str = "model",
                upsample: UpsampleSettings | None = None, keep_base: bool = False,
                time_of_day: list[str] | None = None, cascade: Cascade | None = None,
                on_segment: Callable[[int, int], None] | None = None,
                track: RolloutConditions | None = None, context: torch.Tensor | None = None) -> dict:
    """Generate (or resume) the rollout; returns the metadata written beside the mp4.
    decode_chunk: output frames per temporal-decoder call (memory vs speed; same frames).
    upsampler: none | bicubic | model, how the base video reaches the scenario's output.resolution
    (the model streams: frames leave it with a lag, in fixed memory).
    crowdedness / time_of_day: per segment (the last repeats); cascade: models already loaded.
    on_segment(done, total): called after each of the segments + 1 steps (the last flushes).
    track: the conditions per output frame at the base size instead of the scenario's world (its
    labels are written, scaled to the video); context [1,c,4,h,w]: the first c key latents (a real
    clip's, encoded) instead of a generated first frame (drivesim augment)."""
    scenario = scenario_path if isinstance(scenario_path, Scenario) else load_scenario(scenario_path)
    out_dir, model_dir = Path(out_dir), Path(model_dir)
    work = out_dir / scenario.id
    state_path = work / "state"
    if cascade is None:
        cascade = load_cascade(model_dir, cfg, upsampler, upsample, device, [scenario.output.resolution])
    prediction, interpolation, model = cascade.prediction, cascade.interpolation, cascade.upsampler
    rollout = Rollout(prediction, interpolation, cfg, decode_chunk)
    length = clip_frames(cfg)  # output frames of this clip
    key_frames = cfg.segments * cfg.new_frames
    base_size = prediction.output_size(cfg.latent_size)
    size = base_size if upsampler == "none" else tuple(scenario.output.resolution)  # the video written
    if upsampler == "none":
        warn_resolution(scenario, base_size)
    if upsampler == "model" and size != base_size and model is None:
        raise ValueError(f"{scenario.id}: upsampler='model' at {size}, but the cascade has no upsampler")
    if upsampler != "model" or (size[0] <= base_size[0] and size[1] <= base_size[1]):
        model = None  # a shared cascade's upsampler only serves clips larger than the base
    if upsampler == "model" and size == base_size:
        upsampler = "none"  # what was done, for the metadata
    given_track = track is not None
    if track is None:
        track = RolloutConditions.from_scenario(scenario, key_frames, cfg.key_fps, FACTOR, cfg.new_frames,
                                                crowdedness, base_size, time_of_day)
    versions = prediction.versions | (interpolation.versions if interpolation else {})
    config = json.loads(json.dumps({  # JSON-normalised, to compare with a saved state
        "rollout": dataclasses.asdict(cfg), "scenario": scenario.model_dump(mode="json"),
        "crowdedness_by_segment": crowdedness, "time_of_day_by_segment": time_of_day, "keep_base": keep_base,
        "upsampler": upsampler_meta(upsampler, model, cfg.seed), "given_track": given_track,
        "given_context": None if context is None else list(context.shape),
        "model_versions": versions | ({"upsampler": model.version} if model else {})}))
    state = RolloutState(context=context)
    if checkpoint_paths(state_path)[0].exists():
        state, saved = load_rollout_state(state_path)
        if {k: saved.get(k) for k in config} != config:
            raise ValueError(f"{work}: an unfinished rollout with a different config is there; "
                             "delete that folder or run with the same options")
        logger.info("resuming %s at segment %d/%d", scenario.id, state.next_segment, cfg.segments)
    parts = work / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    bar = tqdm(total=cfg.segments + 1, initial=state.next_segment, desc=f"rollout {scenario.id}",
               unit="segment", disable=not progress)
    stream = StreamingUpsampler(model, cfg.seed) if model is not None else None
    if stream is not None and state.upsampler is not None:
        stream.load_state(state.upsampler)
    seconds = rollout.stage_seconds
    for segment in rollout.run(track, state):
        # whole segments overshoot the clip's duration: cut there, before the upsampler pays for it
        base = segment.frames[:, :max(0, length - segment.first_frame)]
        frames = base
        if base.numel() and not torch.isfinite(base).all():
            raise FloatingPointError(f"{scenario.id}: segment {segment.index} decoded to NaN/inf frames; "
                                     "nothing of it was written")
        with timed(seconds, "upsample"):
            if stream is not None:
                frames = stream.push(base) if base.numel() else torch.empty(0)
                if segment.index == cfg.segments:  # the final flush
                    frames = torch.cat([f for f in (frames, stream.flush()) if f.numel()], 1)
                state.upsampler = stream.state()
                if frames.numel():  # the model's 4x to the asked size, when that is not 4x
                    frames = output_frames(frames, size, "bicubic")
            elif base.numel():
                frames = output_frames(base, size, upsampler)
        with timed(seconds, "write"):
            if frames.numel():
                write_mp4(parts / f"part-{segment.index:05d}.mp4", to_uint8(frames[0]), cfg.out_fps)
            if keep_base and base.numel():
                write_mp4(parts / f"base-{segment.index:05d}.mp4", to_uint8(base[0]), cfg.out_fps)
        save_rollout_state(state_path, state, cfg, config)
        bar.update(1)
        if on_segment is not None:
            on_segment(segment.index + 1, cfg.segments + 1)
    bar.close()
    video = out_dir / f"{scenario.id}.mp4"
    frames = concat_mp4(sorted(parts.glob("part-*.mp4")), video)
    for name, at in [(scenario.id, size)] + [(f"{scenario.id}.base", base_size)] * keep_base:
        at_size = track if at == base_size else track.at_size(at) if given_track else \
            RolloutConditions.from_scenario(scenario, key_frames, cfg.key_fps, FACTOR, cfg.new_frames,
                                            crowdedness, at, time_of_day)
        laid_out = at_size.labels[:frames] if cfg.interpolate else at_size.labels[::FACTOR][:frames]
        labels = [FrameLabel(i, lab.boxes, lab.attributes) for i, lab in enumerate(laid_out)]
        write_json_atomic(to_scalabel(labels, name), out_dir / f"{name}.json")
    if keep_base:
        concat_mp4(sorted(parts.glob("base-*.mp4")), out_dir / f"{scenario.id}.base.mp4")
    starts = [i for i in rollout.segment_starts() if i < frames]
    diagnostics = rollout_diagnostics(str(video), cfg.out_fps, starts)
    meta = {"scenario_id": scenario.id, "seed": cfg.seed, **config, "fps": cfg.out_fps, "frames": frames,
            "resolution": list(size), "base_resolution": list(base_size), "diagnostics": diagnostics,
            "seconds_this_run": time.perf_counter() - start,
            "stage_seconds_this_run": {k: round(v, 3) for k, v in seconds.items()}}
    write_json_atomic(meta, out_dir / f"{scenario.id}.meta.json")
    shutil.rmtree(work)
    return meta
