"""Scenario files -> generated clips with the shipped (or a given) model."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from drivesim.diffusion.guidance import GuidanceScales
from drivesim.export.generated import is_generated, write_generated_clip
from drivesim.pipelines.cascade import Cascade
from drivesim.pipelines.rollout import RolloutConfig
from drivesim.pipelines.scenario_conditions import scenario_conditions
from drivesim.pipelines.upsample import DEFAULT_UPSAMPLER, UpsampleMethod, Upsampler, UpsampleSettings
from drivesim.scenario import load_scenario, scenario_files
from drivesim.utils import DEFAULT_MODEL_DIR

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateOptions:
    sampler: str = "dpmpp"
    steps: int = 20
    # The catalog's, rollout's, preview's and `eval report`'s scales: one default for every path.
    guidance_scene: float = RolloutConfig.guidance_scene
    guidance_boxes: float = RolloutConfig.guidance_boxes
    key_fps: float | None = None  # the key-frame rate; None: what the key-frame model trained at (7.5)
    max_frames: int = 16  # one segment; longer clips need the rollout model
    latent_size: tuple[int, int] | None = None  # None: the key-frame model's (16x32: 128x256 frames)
    frame_correlation: float | None = None  # shared part of the starting noise; None = the model's prior
    guidance_rescale: float = 0.7  # CFG rescale phi
    upsampler: UpsampleMethod = DEFAULT_UPSAMPLER  # how the base video reaches output.resolution
    upsample: UpsampleSettings = field(default_factory=UpsampleSettings)
    keep_base: bool = False  # also write the 128x256 base video (<id>.base.mp4 + labels)
    overwrite: bool = False


def warn_resolution(scenario, size: tuple[int, int]) -> None:
    """Say so when the video written differs from the scenario's output.resolution."""
    if tuple(scenario.output.resolution) != tuple(size):
        logger.warning(
            "%s: --upsampler none writes the %dx%d base video (output.resolution is %s), "
            "with labels in that resolution",
            scenario.id,
            *size,
            "x".join(map(str, scenario.output.resolution)),
        )


def upsampler_meta(method: UpsampleMethod, upsampler: Upsampler | None, seed: int) -> dict:
    """How the written video was upsampled (for the clip's metadata)."""
    meta = {"method": method, "seed": seed}
    if upsampler is not None:
        meta |= {"version": upsampler.version, **asdict(upsampler.settings)}
    return meta


def generate_scenarios(
    path: str | Path,
    out_dir: str | Path,
    options: GenerateOptions,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    progress: bool = True,
    device: str = "cpu",
) -> list[Path]:
    """Generate one clip per scenario file (skipping complete ones); returns mp4 paths."""
    scenarios = [load_scenario(p) for p in scenario_files(path)]  # validate all before work
    for s in scenarios:
        if s.sweep is not None or s.variants > 1 or s.schedule.time_of_day or s.schedule.crowdedness:
            logger.warning(
                "%s: sweep, variants and schedule need `drivesim generate --catalog`; this makes "
                "one clip at the starting conditions",
                s.id,
            )
    todo = [s for s in scenarios if options.overwrite or not is_generated(out_dir, s.id)]
    if len(todo) < len(scenarios):
        logger.info("skipping %d complete clip(s) in %s", len(scenarios) - len(todo), out_dir)
    if not todo:
        return []
    cascade = Cascade.from_pretrained(model_dir, key_model="unet", interpolation=False, device=device)
    pipe = cascade.key_model
    key_fps, latent_size = options.key_fps or cascade.key_fps, options.latent_size or cascade.latent_size
    base_size = pipe.output_size(latent_size)
    if options.upsampler == "model" and any(tuple(s.output.resolution) != base_size for s in todo):
        cascade.load_upsampler(model_dir, options.upsample)
    upsampler = cascade.upsampler
    guidance = GuidanceScales(
        options.guidance_scene, options.guidance_boxes, rescale=options.guidance_rescale
    )
    written = []
    for scenario in tqdm(todo, desc="generate", unit="clip", disable=not progress):
        frames = min(options.max_frames, max(1, math.ceil(scenario.duration * key_fps)))
        if frames < scenario.duration * key_fps:
            logger.info(
                "%s: %g s is longer than one segment; generating the first %d key frames (%.2f s). "
                "`drivesim rollout` makes the whole clip at 30 fps",
                scenario.id,
                scenario.duration,
                frames,
                frames / key_fps,
            )
        h, w = base_size if options.upsampler == "none" else scenario.output.resolution
        size = (h, w)
        if options.upsampler == "none":
            warn_resolution(scenario, base_size)
        cond, base_labels = scenario_conditions(scenario, frames, key_fps, base_size)
        labels = scenario_conditions(scenario, frames, key_fps, size)[1]  # of the video written
        latents = cascade.key_frames(
            cond,
            frames,
            latent_size=latent_size,
            sampler=options.sampler,
            steps=options.steps,
            guidance=guidance,
            seed=scenario.seed,
            frame_correlation=options.frame_correlation,
        )
        base_frames = cascade.decode(latents)  # the one-segment case: key frames, decode, upsample
        video = cascade.upsample(base_frames, size, options.upsampler, scenario.seed)
        meta = {
            "scenario_id": scenario.id,
            "seed": scenario.seed,
            "scenario": scenario.model_dump(mode="json"),
            "sampler": options.sampler,
            "steps": options.steps,
            "frame_correlation": pipe.frame_correlation(options.frame_correlation),
            "guidance": {"scene": guidance.scene, "boxes": guidance.boxes, "rescale": guidance.rescale},
            "fps": key_fps,
            "frames": frames,
            "resolution": list(size),
            "requested_resolution": list(scenario.output.resolution),
            "base_resolution": list(base_size),
            "upsampler": upsampler_meta(options.upsampler, upsampler, scenario.seed),
            "model_versions": pipe.versions | ({"upsampler": upsampler.version} if upsampler else {}),
        }
        base = (base_frames[0], base_labels) if options.keep_base else None
        written.append(write_generated_clip(out_dir, scenario.id, video[0], key_fps, labels, meta, base=base))
    return written
