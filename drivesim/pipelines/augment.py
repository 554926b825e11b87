"""`drivesim augment`: variants of real (or catalog) clips with changed conditions, into a catalog.

For each source clip, each change set (--vary) and each seed:
1. the source's first `context_frames` key frames (7.5 fps) are encoded by the autoencoder; when
   the time of day changes they are first moved towards the new conditions by SDEdit
   (`context_strength`, drivesim.pipelines.augment_track);
2. its labelled boxes, per output frame, are the box conditions and the variant's labels;
3. the rollout continues from that context with the changed conditions (run_rollout with a
   given track and context), and the clip is committed with its provenance (source clip id,
   path, start, what changed: the augment columns of the catalog schema).
Added traffic has no ground truth: when the crowdedness is raised above the source's, the row's
`labels_complete` is false and every label frame has the attribute labelsComplete: "false".
Boxes of an unannotated source stay unknown (`boxes_known` false, frames without "labels").
Resumable as `generate --catalog` is: clips already present are skipped, failures recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from drivesim.data.catalog import clip_ids
from drivesim.data.sources import SourceClip, open_sources
from drivesim.diffusion.guidance import GuidanceScales
from drivesim.export.catalog import CatalogWriter
from drivesim.models.model_index import load_part, part_prefix
from drivesim.models.weights import read_config, weights_digest
from drivesim.pipelines.augment_track import (
    AugmentError,
    adds_traffic,
    context_frames,
    encode_context,
    guide_latents,
    source_track,
    translate_context,
    variant_scene,
    variant_segments,
)
from drivesim.pipelines.batch import WORK, model_hashes
from drivesim.pipelines.cascade import Cascade
from drivesim.pipelines.catalog_row import cascade_columns
from drivesim.pipelines.rollout import RolloutConfig, frames_for
from drivesim.pipelines.rollout_job import (
    RolloutResult,
    SourceInputs,
    render_settings,
    rollout_cascade,
    run_rollout,
)
from drivesim.pipelines.rollout_meta import RolloutMeta
from drivesim.pipelines.source_guide import SourceGuide
from drivesim.pipelines.upsample import DEFAULT_UPSAMPLER, UpsampleMethod, UpsampleSettings
from drivesim.scenario import Output, Scenario
from drivesim.utils import DEFAULT_MODEL_DIR

logger = logging.getLogger(__name__)
# SDEdit strength of the context frames when the time of day changes (measured in the README).
CONTEXT_STRENGTH = 0.8
# Share of the source every frame keeps (--keep-structure); measured in docs/augmentation.md.
KEEP_STRUCTURE = 0.1
KEEP_DETAIL = 1.0
GUIDANCE_SCENE = 3.0


@dataclass(frozen=True)
class AugmentOptions:
    """How variants are made (the rollout's sampling settings, length, context, output)."""

    # seed and segments are set per clip; a stronger scene guidance turns a real day scene to night
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(guidance_scene=GUIDANCE_SCENE))
    seconds: float = 2.0  # variant length (at most the source's rest from start_s)
    start_s: float = 0.0  # where in each source the variant starts
    context_strength: float | None = None  # None: CONTEXT_STRENGTH if the time of day changes, else 0
    resolution: tuple[int, int] = (512, 1024)  # output video (H, W); upsampler 'none' writes the base
    upsampler: UpsampleMethod = DEFAULT_UPSAMPLER
    upsample: UpsampleSettings = field(default_factory=UpsampleSettings)
    decode_chunk: int = 8
    variants: int = 1  # seeds seed, seed + 1, ... per source and change set
    seed: int = 0
    # how much of the source every frame keeps (per-frame SDEdit from its latents); 0: only its first
    # context frames, the rest generated from noise (the paper's rollout)
    keep_structure: float = KEEP_STRUCTURE
    # with keep_structure > 0: the share of the source's fine detail (its edges) in every frame
    keep_detail: float = KEEP_DETAIL

    def __post_init__(self):
        if not 0 <= self.keep_structure <= 1:
            raise AugmentError(
                f"--keep-structure {self.keep_structure}: use a value in 0..1 (0: a new scene after the "
                f"first frames, 1: the source itself; default {KEEP_STRUCTURE})"
            )
        if not 0 <= self.keep_detail <= 1:
            raise AugmentError(
                f"--keep-detail {self.keep_detail}: use a value in 0..1 (0: the model's own detail, "
                f"1: the source's edges; default {KEEP_DETAIL})"
            )


@dataclass(frozen=True)
class AugmentJob:
    """One variant to make: a source, the changes, a seed."""

    source: SourceClip
    changes: dict[str, str]
    seed: int
    variant: int
    spec_hash: str

    @property
    def clip_id(self) -> str:
        """`<spec hash>-<seed>`, stable across runs (resume)."""
        return f"{self.spec_hash}-{self.seed}"


@dataclass
class AugmentResult:
    """What happened to one job."""

    job: AugmentJob
    status: str  # generated | skipped | failed
    seconds: float = 0.0
    frames: int = 0
    error: str = ""


def spec_json(source: SourceClip, changes: dict[str, str], options: AugmentOptions) -> str:
    """Canonical JSON of what defines a variant apart from its seed (what its id hashes)."""
    return json.dumps(
        {
            "kind": "augment",
            "source_clip_id": source.clip_id,
            "source_path": source.path,
            "start_s": options.start_s,
            "seconds": options.seconds,
            "changes": changes,
            "context_strength": options.context_strength,  # None: the default for the changes
            "keep_structure": options.keep_structure,
            "keep_detail": options.keep_detail if options.keep_structure > 0 else None,
            "resolution": list(output_size(options)),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def output_size(options: AugmentOptions) -> tuple[int, int]:
    """(H, W) of the written video: the base video without an upsampler."""
    h, w = options.rollout.latent_size if options.upsampler == "none" else options.resolution
    return (8 * h, 8 * w) if options.upsampler == "none" else (h, w)


def plan(
    sources: list[SourceClip], change_sets: list[dict[str, str]], options: AugmentOptions
) -> list[AugmentJob]:
    """Every (source, change set, seed) as a job with its stable clip id."""
    jobs = []
    for source in sources:
        for changes in change_sets:
            digest = hashlib.sha256(spec_json(source, changes, options).encode()).hexdigest()[:12]
            jobs += [
                AugmentJob(source, changes, options.seed + v, v, digest) for v in range(options.variants)
            ]
    return jobs


def context_strength(options: AugmentOptions, scene: dict[str, dict]) -> float:
    """The SDEdit strength for the context frames of a variant (0 keeps them exactly)."""
    if options.context_strength is not None:
        return options.context_strength
    if options.keep_structure > 0:  # the context frames are kept as much as every other frame
        return 1.0 - options.keep_structure
    changed = scene["time_of_day"]["from"] != scene["time_of_day"]["to"]
    return CONTEXT_STRENGTH if changed else 0.0


def render_variant(
    job: AugmentJob, cascade: Cascade, autoencoder, options: AugmentOptions, work: Path, device: str
) -> tuple[RolloutResult, dict]:
    """Roll out one variant into work/<clip_id>.mp4 + .json -> (run_rollout's result, row facts)."""
    source = job.source
    fitted = cascade.fit(options.rollout)  # the checkpoints' key rate and latent size
    cfg = dataclasses.replace(
        fitted,
        seed=job.seed,
        segments=variant_segments(source, options.start_s, options.seconds, fitted),
        frames=frames_for(options.seconds, fitted.interpolate, fitted.key_fps),
    )
    base = cascade.base_size(cfg)
    frames, frame_hw = context_frames(source, options.start_s, cfg, base)
    scene = variant_scene(source, job.changes)
    complete = source.boxes_known and not adds_traffic(scene)
    track = source_track(
        source,
        options.start_s,
        cfg,
        base,
        frame_hw,
        scene,
        {"sourceClip": source.clip_id, "labelsComplete": str(complete).lower()},
    )
    strength = context_strength(options, scene)
    guidance = GuidanceScales(cfg.guidance_scene, cfg.guidance_boxes)
    context = translate_context(
        cascade.key_model,
        encode_context(autoencoder, frames),
        track,
        cfg,
        strength,
        cfg.seed * 100_003 - 1,
        guidance,
    )
    tod, crowd = scene["time_of_day"]["to"], scene["crowdedness"]["to"]
    scenario = Scenario(
        id=job.clip_id,
        time_of_day=tod,
        crowdedness=crowd or "light",
        seed=job.seed,
        duration_s=cfg.segments * cfg.new_frames / cfg.key_fps,
        output=Output(resolution=output_size(options)),
    )
    guide = None
    if options.keep_structure > 0:  # every frame starts from the source's own, noised
        latents = guide_latents(autoencoder, source, options.start_s, cfg, base)
        guide = SourceGuide(latents.to(context), options.keep_structure, options.keep_detail)
    try:
        result = run_rollout(
            scenario,
            work,
            cfg,
            render=render_settings(options, device),
            source=SourceInputs(track, context, guide),
            cascade=cascade,
            progress=False,
        )
    finally:
        shutil.rmtree(work / job.clip_id, ignore_errors=True)
    facts = {"scene": scene, "labels_complete": complete, "context_strength": strength}
    return result, facts | {"keep_structure": options.keep_structure}


def augment_row(
    job: AugmentJob,
    meta: RolloutMeta,
    facts: dict,
    labels,
    seconds: float,
    hashes: dict,
    options: AugmentOptions,
) -> dict:
    """A catalog row for a variant: cascade columns + its provenance (the augment columns)."""
    source, scene = job.source, facts["scene"]
    changed = {k: scene[k] for k in job.changes}
    spec = json.loads(spec_json(source, job.changes, options)) | {"seed": job.seed}
    return {
        "clip_id": job.clip_id,
        "scenario_id": f"augment-{source.clip_id}",
        "scenario_hash": job.spec_hash,
        "seed": job.seed,
        "variant": job.variant,
        "scenario_file": source.path,
        "scenario_json": json.dumps(spec, sort_keys=True, separators=(",", ":")),
        "time_of_day": scene["time_of_day"]["to"],
        "crowdedness": scene["crowdedness"]["to"],
        "time_of_day_schedule": [],
        "crowdedness_schedule": [],
        "ego_speed_kmh": None,
        "num_agents": 0,
        **cascade_columns(meta, labels, seconds, hashes),
        "source_clip_id": source.clip_id,
        "source_path": source.path,
        "source_start_s": options.start_s,
        "augment_changes": json.dumps(changed, sort_keys=True),
        "context_frames": meta.rollout.context_frames,
        "context_strength": facts["context_strength"],
        "boxes_known": source.boxes_known,
        "labels_complete": facts["labels_complete"],
    }


def load_models(model_dir: Path, options: AugmentOptions, device: str) -> tuple[Cascade, object, dict, dict]:
    """(cascade, autoencoder, weight hashes, the autoencoder's version) of a model folder."""
    cascade = rollout_cascade(
        model_dir, options.rollout, render_settings(options, device), [output_size(options)]
    )
    autoencoder = load_part(model_dir, "autoencoder").to(device).eval()
    prefix = part_prefix(model_dir, "autoencoder")
    hashes = model_hashes(model_dir, cascade) | {"autoencoder": weights_digest(prefix)}
    version = read_config(prefix).get("model_version", str(prefix))
    return cascade, autoencoder, hashes, {"autoencoder": version}


def augment_catalog(
    input: str | Path,
    out: str | Path,
    change_sets: list[dict[str, str]],
    options: AugmentOptions | None = None,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    device: str = "cpu",
    progress: bool = True,
    source_fps: float | None = None,
    where=None,
) -> list[AugmentResult]:
    """Variants of every source clip of `input` (folder or catalog; `where` filters catalog rows)
    for every change set into the catalog at `out`; resumable, failures recorded and retried."""
    options = options or AugmentOptions()
    jobs = plan(open_sources(input, source_fps, where), change_sets, options)
    for job in jobs:
        variant_scene(job.source, job.changes)  # every source's problems before any work
    writer = CatalogWriter(out, fps=options.rollout.out_fps)
    results: list[AugmentResult] = []
    with writer.lock():
        present = set(clip_ids(writer.root))
        results += [AugmentResult(j, "skipped") for j in jobs if j.clip_id in present]
        todo = [j for j in jobs if j.clip_id not in present]
        if not todo:
            return results
        work = writer.root / WORK
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        cascade, autoencoder, hashes, versions = load_models(Path(model_dir), options, device)
        for job in tqdm(todo, desc="augment", unit="clip", disable=not progress):
            start = time.perf_counter()
            try:
                result, facts = render_variant(job, cascade, autoencoder, options, work, device)
                meta = result.meta.with_versions(versions)  # the encoder of the context frames
                seconds = time.perf_counter() - start
                row = augment_row(job, meta, facts, result.labels, seconds, hashes, options)
                writer.commit(row, result.video, result.label_file)
                results.append(AugmentResult(job, "generated", seconds, meta.frames))
            except Exception as e:  # one bad clip must not stop the batch: recorded, retried next run
                logger.warning(
                    "%s (from %s) failed: %s: %s", job.clip_id, job.source.clip_id, type(e).__name__, e
                )
                writer.record_failure(
                    job.clip_id,
                    {"source_clip_id": job.source.clip_id, "seed": job.seed, "changes": job.changes},
                    e,
                )
                results.append(
                    AugmentResult(
                        job, "failed", time.perf_counter() - start, error=f"{type(e).__name__}: {e}"
                    )
                )
        shutil.rmtree(work, ignore_errors=True)
    order = {j.clip_id: i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r.job.clip_id])
