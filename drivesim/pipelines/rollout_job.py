"""`drivesim rollout`: a long clip from a scenario, written segment by segment and resumable.

out_dir/<scenario id>/ holds parts/part-NNNNN.mp4 (one per segment, atomic) and the rollout
state after the last finished segment; a re-run continues from there. When every segment is
done the parts are joined without re-encoding into out_dir/<id>.mp4, with the labels
(<id>.json) and the metadata plus drift / seam diagnostics (<id>.meta.json, written last).
The frames come from Cascade.segments.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import torch
from tqdm import tqdm

from drivesim.data.labels import FrameLabel, to_scalabel
from drivesim.export.video import concat_mp4, write_mp4
from drivesim.metrics import rollout_diagnostics
from drivesim.models.weights import checkpoint_paths
from drivesim.pipelines.cascade import Cascade, CascadeSegment
from drivesim.pipelines.conditions_track import RolloutConditions
from drivesim.pipelines.generate import upsampler_meta, warn_resolution
from drivesim.pipelines.rollout import (
    FACTOR,
    RolloutConfig,
    RolloutState,
    clip_labels,
    load_rollout_state,
    save_rollout_state,
    segment_starts,
)
from drivesim.pipelines.rollout_meta import RolloutMeta
from drivesim.pipelines.source_guide import SourceGuide
from drivesim.pipelines.upsample import DEFAULT_UPSAMPLER, UpsampleMethod, Upsampler, UpsampleSettings
from drivesim.scenario import Scenario, load_scenario
from drivesim.utils import DEFAULT_MODEL_DIR, timed, to_uint8, write_json_atomic

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RolloutResult:
    """A finished rollout: what <id>.meta.json holds, the labels of <id>.json and the files."""

    meta: RolloutMeta
    labels: list[FrameLabel]
    video: Path
    label_file: Path


@dataclasses.dataclass(frozen=True)
class RenderSettings:
    """How a rollout's frames leave the cascade. decode_chunk: frames per temporal-decoder pass
    (memory vs speed; same frames); upsampler: none | bicubic | model, how the base video reaches
    the scenario's output.resolution (the model streams: frames leave it with a lag, in fixed
    memory); keep_base: also write the base video and its labels."""

    decode_chunk: int = 8
    device: str = "cpu"
    upsampler: UpsampleMethod = DEFAULT_UPSAMPLER
    upsample: UpsampleSettings | None = None
    keep_base: bool = False


class RenderOptions(Protocol):
    """The render fields that a batch's or augment's options carry (read only)."""

    @property
    def decode_chunk(self) -> int: ...
    @property
    def upsampler(self) -> UpsampleMethod: ...
    @property
    def upsample(self) -> UpsampleSettings | None: ...


def render_settings(options: RenderOptions, device: str) -> RenderSettings:
    """A batch's or augment's options as the RenderSettings of its rollouts on `device`."""
    return RenderSettings(options.decode_chunk, device, options.upsampler, options.upsample)


@dataclasses.dataclass(frozen=True)
class SourceInputs:
    """A real clip a rollout follows (drivesim augment). track: the conditions per output frame at
    the base size instead of the scenario's world (its labels are written, scaled to the video);
    context [1,c,4,h,w]: the first c key latents (the clip's, encoded) instead of a generated first
    frame; guide: the clip's latents per output frame, the start of every new frame."""

    track: RolloutConditions | None = None
    context: torch.Tensor | None = None
    guide: SourceGuide | None = None


def rollout_cascade(
    model_dir: str | Path,
    cfg: RolloutConfig,
    render: RenderSettings = RenderSettings(),
    output_sizes: Sequence[Sequence[int]] = (),
) -> Cascade:
    """The rollout's stages of a model folder on render.device; the upsampler model only when
    render.upsampler == 'model' and one of output_sizes (H,W) differs from the base video's."""
    cascade = Cascade.from_pretrained(model_dir, interpolation=cfg.interpolate, device=render.device)
    base = cascade.base_size(cfg)
    if render.upsampler == "model" and any(tuple(size) != base for size in output_sizes):
        cascade.load_upsampler(model_dir, render.upsample)
    return cascade


def resume_state(state_path: Path, config: dict, context: torch.Tensor | None) -> RolloutState:
    """The state saved at state_path when its config is `config` (a clear error if it is another's),
    else a fresh one starting from `context`."""
    if not checkpoint_paths(state_path)[0].exists():
        return RolloutState(context=context)
    state, saved = load_rollout_state(state_path)
    if {k: saved.get(k) for k in config} != config:
        raise ValueError(
            f"{state_path.parent}: an unfinished rollout with a different config is there; "
            "delete that folder or run with the same options"
        )
    logger.info("resuming %s at segment %d", state_path.parent.name, state.next_segment)
    return state


def write_segments(
    stages: Iterator[CascadeSegment],
    parts: Path,
    keep_base: bool,
    fps: float,
    clip_id: str,
    steps: int,
    advance: Callable[[int], object],
    on_segment: Callable[[int, int], None] | None,
    save_state: Callable[[], None],
) -> dict[str, float]:
    """Each of the `steps` segments' frames to parts/part-NNNNN.mp4 (and base-NNNNN.mp4), then the
    state saved; -> wall seconds per stage."""
    seconds: dict[str, float] = {}
    while (segment := _next_segment(stages, clip_id)) is not None:
        for stage, s in segment.meta.seconds.items():
            seconds[stage] = seconds.get(stage, 0.0) + s
        index = segment.meta.index
        with timed(seconds, "write"):
            if segment.frames.numel():
                write_mp4(parts / f"part-{index:05d}.mp4", to_uint8(segment.frames[0]), fps)
            if keep_base and segment.base.numel():
                write_mp4(parts / f"base-{index:05d}.mp4", to_uint8(segment.base[0]), fps)
        save_state()
        advance(1)
        if on_segment is not None:
            on_segment(index + 1, steps)
    return seconds


def _next_segment(stages: Iterator[CascadeSegment], clip_id: str) -> CascadeSegment | None:
    try:
        return next(stages)
    except StopIteration:
        return None
    except FloatingPointError as e:
        raise FloatingPointError(f"{clip_id}: {e}; nothing of it was written") from e


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a rollout writes: the video size, the upsampling done to reach it (`method`, with the
    upsampler model when it runs), and the condition track at the base size and at the video's."""

    size: tuple[int, int]
    base_size: tuple[int, int]
    method: UpsampleMethod
    model: Upsampler | None
    track: RolloutConditions
    written_track: RolloutConditions
    given_track: bool


def _plan(
    scenario: Scenario,
    cfg: RolloutConfig,
    cascade: Cascade,
    render: RenderSettings,
    track: RolloutConditions | None,
    crowdedness: list[str] | None,
    time_of_day: list[str] | None,
) -> _Plan:
    """Sizes, upsampling and condition tracks of a rollout (cfg already fitted to the cascade)."""
    key_frames = cfg.segments * cfg.new_frames
    base_size = cascade.base_size(cfg)
    h, w = base_size if render.upsampler == "none" else scenario.output.resolution
    size = (h, w)  # the video written
    if render.upsampler == "none":
        warn_resolution(scenario, base_size)
    larger = size[0] > base_size[0] or size[1] > base_size[1]
    model = cascade.upsampler if render.upsampler == "model" and larger else None  # a shared cascade's
    method = "none" if render.upsampler == "model" and size == base_size else render.upsampler

    def from_scenario(at: tuple[int, int]) -> RolloutConditions:  # boxes in pixels of `at`
        return RolloutConditions.from_scenario(
            scenario, key_frames, cfg.key_fps, FACTOR, cfg.new_frames, crowdedness, at, time_of_day
        )

    given_track = track is not None
    if track is None:
        track = from_scenario(base_size)
    if size == base_size:
        written_track = track
    else:
        written_track = track.at_size(size) if given_track else from_scenario(size)
    return _Plan(size, base_size, method, model, track, written_track, given_track)


def _state_config(
    scenario: Scenario,
    cfg: RolloutConfig,
    cascade: Cascade,
    plan: _Plan,
    render: RenderSettings,
    source: SourceInputs,
    crowdedness: list[str] | None,
    time_of_day: list[str] | None,
) -> dict:
    """Everything that makes a rollout's frames, JSON-normalised to compare with a saved state."""
    versions = cascade.key_model.versions | (cascade.interpolation.versions if cascade.interpolation else {})
    model, guide, context = plan.model, source.guide, source.context
    return json.loads(
        json.dumps(
            {
                "rollout": dataclasses.asdict(cfg),
                "scenario": scenario.model_dump(mode="json"),
                "crowdedness_by_segment": crowdedness,
                "time_of_day_by_segment": time_of_day,
                "keep_base": render.keep_base,
                "upsampler": upsampler_meta(plan.method, model, cfg.seed),
                "given_track": plan.given_track,
                "given_context": None if context is None else list(context.shape),
                "model_versions": versions | ({"upsampler": model.version} if model else {}),
                **({"guide": {"keep": guide.keep, "frames": guide.latents.shape[1]}} if guide else {}),
            }
        )
    )


def _finish(
    scenario: Scenario, cfg: RolloutConfig, plan: _Plan, parts: Path, out_dir: Path, keep_base: bool
) -> tuple[list[FrameLabel], int]:
    """Join the parts into out_dir/<id>.mp4 with its labels (and the base video's); -> labels, frames."""
    frames = concat_mp4(sorted(parts.glob("part-*.mp4")), out_dir / f"{scenario.id}.mp4")
    written = clip_labels(plan.written_track, cfg, 0, frames)
    write_json_atomic(to_scalabel(written, scenario.id), out_dir / f"{scenario.id}.json")
    if keep_base:
        base_labels = to_scalabel(clip_labels(plan.track, cfg, 0, frames), f"{scenario.id}.base")
        write_json_atomic(base_labels, out_dir / f"{scenario.id}.base.json")
        concat_mp4(sorted(parts.glob("base-*.mp4")), out_dir / f"{scenario.id}.base.mp4")
    return written, frames


def run_rollout(
    scenario_path: str | Path | Scenario,
    out_dir: str | Path,
    cfg: RolloutConfig,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    crowdedness: list[str] | None = None,
    time_of_day: list[str] | None = None,
    render: RenderSettings = RenderSettings(),
    source: SourceInputs = SourceInputs(),
    cascade: Cascade | None = None,
    progress: bool = True,
    on_segment: Callable[[int, int], None] | None = None,
    reference: bool = False,
) -> RolloutResult:
    """Generate (or resume) the rollout; returns its metadata (also written beside the mp4) and labels.
    crowdedness / time_of_day: per segment (the last repeats); cascade: models already loaded.
    on_segment(done, total): called after each of the segments + 1 steps (the last flushes).
    reference: Cascade.segments' eager reference path (`drivesim bench cascade`)."""
    scenario = scenario_path if isinstance(scenario_path, Scenario) else load_scenario(scenario_path)
    out_dir = Path(out_dir)
    work = out_dir / scenario.id
    state_path, parts = work / "state", work / "parts"
    if cascade is None:
        cascade = rollout_cascade(model_dir, cfg, render, [scenario.output.resolution])
    cfg = cascade.fit(cfg)
    plan = _plan(scenario, cfg, cascade, render, source.track, crowdedness, time_of_day)
    config = _state_config(scenario, cfg, cascade, plan, render, source, crowdedness, time_of_day)
    state = resume_state(state_path, config, source.context)
    parts.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    stages = cascade.with_upsampler(plan.model).segments(
        plan.track,
        cfg,
        state,
        size=plan.size,
        method=plan.method,
        labels=plan.written_track,
        decode_chunk=render.decode_chunk,
        guide=source.guide,
        reference=reference,
    )
    total = cfg.segments + 1
    desc = f"rollout {scenario.id}"
    with tqdm(
        total=total, initial=state.next_segment, desc=desc, unit="segment", disable=not progress
    ) as bar:
        seconds = write_segments(
            stages,
            parts,
            render.keep_base,
            cfg.out_fps,
            scenario.id,
            total,
            bar.update,
            on_segment,
            lambda: save_rollout_state(state_path, state, cfg, config),
        )
    written, frames = _finish(scenario, cfg, plan, parts, out_dir, render.keep_base)
    video = out_dir / f"{scenario.id}.mp4"
    meta = RolloutMeta(
        scenario_id=scenario.id,
        seed=cfg.seed,
        settings=config,
        fps=cfg.out_fps,
        frames=frames,
        resolution=plan.size,
        base_resolution=plan.base_size,
        diagnostics=rollout_diagnostics(
            str(video), cfg.out_fps, [i for i in segment_starts(cfg) if i < frames]
        ),
        seconds_this_run=time.perf_counter() - start,
        stage_seconds_this_run={k: round(v, 3) for k, v in seconds.items()},
    )
    write_json_atomic(meta.to_json(), out_dir / f"{scenario.id}.meta.json")
    shutil.rmtree(work)
    return RolloutResult(meta, written, video, out_dir / f"{scenario.id}.json")
