"""Scenario files -> a Parquet clip catalog: every expanded clip (sweep x variants) runs the whole
cascade (key frames, prediction rollout to the scenario's duration, interpolation to 30 fps,
upsampling to its output.resolution) and is committed atomically (drivesim.export.catalog).

Every scenario file is validated before any work starts. Clips already in the catalog (same
scenario hash + seed) are skipped; a clip that fails is recorded in failed/ and retried on the
next run. Time of day and crowdedness schedules are honoured per prediction segment: segment k
takes the scheduled value at its first new key frame (k * new_frames / key_fps seconds).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from drivesim.data.catalog import clip_ids
from drivesim.data.labels import FrameLabel
from drivesim.export.catalog import CatalogWriter
from drivesim.models.model_index import part_prefix
from drivesim.models.weights import weights_digest
from drivesim.pipelines.cascade import Cascade
from drivesim.pipelines.catalog_row import catalog_row
from drivesim.pipelines.rollout import RolloutConfig, for_seconds
from drivesim.pipelines.rollout_job import render_settings, rollout_cascade, run_rollout
from drivesim.pipelines.rollout_meta import RolloutMeta
from drivesim.pipelines.upsample import DEFAULT_UPSAMPLER, UpsampleMethod, UpsampleSettings
from drivesim.scenario import Scenario
from drivesim.scenario_expand import ClipSpec, expand_paths
from drivesim.utils import DEFAULT_MODEL_DIR

logger = logging.getLogger(__name__)
BACKENDS = ("local", "ray")
WORK = ".work"  # unfinished clips, inside the catalog (same filesystem: media are renamed, not copied)


@dataclass(frozen=True)
class BatchOptions:
    rollout: RolloutConfig = field(default_factory=RolloutConfig)  # seed and segments are set per clip
    upsampler: UpsampleMethod = DEFAULT_UPSAMPLER  # none | bicubic | model
    upsample: UpsampleSettings = field(default_factory=UpsampleSettings)
    decode_chunk: int = 8


@dataclass
class ClipResult:
    clip: ClipSpec
    status: str  # generated | skipped | failed
    seconds: float = 0.0
    frames: int = 0
    error: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)  # key_frames, interpolation, ...


def clip_config(clip: ClipSpec, base: RolloutConfig) -> RolloutConfig:
    """The rollout of one clip: its seed, enough segments for its duration, cut to its duration."""
    return dataclasses.replace(for_seconds(base, clip.scenario.duration), seed=clip.seed)


def segment_schedule(scenario: Scenario, cfg: RolloutConfig) -> tuple[list[str], list[str]]:
    """(time_of_day, crowdedness) per segment: the scheduled values at each segment's first new key."""
    starts = [k * cfg.new_frames / cfg.key_fps for k in range(cfg.segments)]
    return [scenario.time_of_day_at(t) for t in starts], [scenario.crowdedness_at(t) for t in starts]


def model_hashes(model_dir: str | Path, cascade: Cascade) -> dict[str, str]:
    """{part: sha256 of its weights file, 16 hex digits} of the parts the cascade runs."""
    parts = (
        ["temporal_decoder", "prediction"]
        + ["interpolation"] * (cascade.interpolation is not None)
        + ["upsampler"] * (cascade.upsampler is not None)
    )
    return {name: weights_digest(part_prefix(model_dir, name)) for name in parts}


@dataclass
class RenderedClip:
    """A generated clip before its commit: run_rollout's metadata, its labels and its files."""

    meta: RolloutMeta
    labels: list[FrameLabel]
    seconds: float
    mp4: Path
    label_file: Path


def render_clip(
    clip: ClipSpec,
    cascade: Cascade,
    options: BatchOptions,
    work: Path,
    device: str = "cpu",
    on_segment: Callable[[int, int], None] | None = None,
) -> RenderedClip:
    """Run the cascade for one clip into `work` (<clip_id>.mp4 and .json); raises on failure.
    on_segment(done, total): progress after each rollout segment (run_rollout)."""
    start = time.perf_counter()
    cfg = clip_config(clip, cascade.fit(options.rollout))  # the checkpoints' key rate and latent size
    times, crowds = segment_schedule(clip.scenario, cfg)
    named = clip.scenario.model_copy(update={"id": clip.clip_id})  # its files are named by clip id
    try:
        result = run_rollout(
            named,
            work,
            cfg,
            crowdedness=crowds,
            time_of_day=times,
            render=render_settings(options, device),
            cascade=cascade,
            progress=False,
            on_segment=on_segment,
        )
    finally:
        shutil.rmtree(work / clip.clip_id, ignore_errors=True)  # the rollout's state, if it stopped
    return RenderedClip(
        result.meta, result.labels, time.perf_counter() - start, result.video, result.label_file
    )


def commit_clip(
    writer: CatalogWriter, clip: ClipSpec, rendered: RenderedClip, hashes: dict[str, str]
) -> ClipResult:
    """Media into the catalog, then the clip's row."""
    row = catalog_row(clip, rendered.meta, rendered.labels, rendered.seconds, hashes)
    writer.commit(row, rendered.mp4, rendered.label_file)
    return ClipResult(
        clip,
        "generated",
        rendered.seconds,
        rendered.meta.frames,
        stage_seconds=rendered.meta.stage_seconds_this_run,
    )


def fail_clip(writer: CatalogWriter, clip: ClipSpec, error: BaseException, seconds: float) -> ClipResult:
    """Record a clip whose generation failed (it is retried on the next run)."""
    logger.warning(
        "%s (%s, seed %d) failed: %s: %s",
        clip.clip_id,
        clip.scenario.id,
        clip.seed,
        type(error).__name__,
        error,
    )
    writer.record_failure(
        clip.clip_id,
        {"scenario_id": clip.scenario.id, "scenario_file": clip.source, "seed": clip.seed},
        error,
    )
    return ClipResult(clip, "failed", seconds, error=f"{type(error).__name__}: {error}")


def run_local(
    todo: list[ClipSpec],
    writer: CatalogWriter,
    options: BatchOptions,
    model_dir: str | Path,
    device: str,
    work: Path,
    progress: bool,
) -> list[ClipResult]:
    """Every clip in this process, one after the other, the models loaded once."""
    sizes = [c.scenario.output.resolution for c in todo]
    cascade = rollout_cascade(model_dir, options.rollout, render_settings(options, device), sizes)
    hashes = model_hashes(model_dir, cascade)
    results = []
    for clip in tqdm(todo, desc="catalog", unit="clip", disable=not progress):
        start = time.perf_counter()
        try:
            rendered = render_clip(clip, cascade, options, work, device)
            results.append(commit_clip(writer, clip, rendered, hashes))
        except Exception as e:  # one bad clip must not stop the batch: it is recorded and retried next run
            results.append(fail_clip(writer, clip, e, time.perf_counter() - start))
    return results


def generate_catalog(
    paths: list[str | Path],
    root: str | Path,
    options: BatchOptions | None = None,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    variants: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    backend: str = "local",
    workers: int = 2,
    ray_address: str | None = None,
) -> list[ClipResult]:
    """Generate every clip the scenario files ask for into the catalog at `root` (resumable).
    backend 'ray': one task per clip on `workers` Ray actors (a local cluster, or ray_address)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: use one of {BACKENDS}")
    clips = expand_paths(paths, variants)  # raises ScenarioError before any work
    options = options or BatchOptions()
    out_fps = options.rollout.out_fps
    for scenario_id in sorted({c.scenario.id for c in clips if abs(c.scenario.fps - out_fps) > 1e-6}):
        logger.info(
            "%s: the cascade writes %g fps; the scenario's fps is used for its length only",
            scenario_id,
            out_fps,
        )
    writer = CatalogWriter(root, fps=out_fps)
    with writer.lock():
        present = set(clip_ids(writer.root))
        results = [ClipResult(c, "skipped") for c in clips if c.clip_id in present]
        todo = [c for c in clips if c.clip_id not in present]
        if results:
            logger.info("skipping %d clip(s) already in %s", len(results), root)
        if not todo:
            return results
        work = writer.root / WORK
        shutil.rmtree(work, ignore_errors=True)  # a killed run's leftovers (we hold the lock)
        work.mkdir()
        if backend == "ray":
            from drivesim.pipelines.batch_ray import run_on_ray

            done = run_on_ray(todo, writer, options, model_dir, device, work, progress, workers, ray_address)
        else:
            done = run_local(todo, writer, options, model_dir, device, work, progress)
        shutil.rmtree(work, ignore_errors=True)
    order = {c.clip_id: i for i, c in enumerate(clips)}
    return sorted(results + done, key=lambda r: order[r.clip.clip_id])
