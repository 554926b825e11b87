"""Scenario files -> generated clips with the shipped (or a given) model."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from drivesim.diffusion.guidance import GuidanceScales
from drivesim.export.generated import is_generated, write_generated_clip
from drivesim.pipelines.scenario_conditions import scenario_conditions
from drivesim.pipelines.video_ldm import VideoLDMPipeline
from drivesim.scenario import load_scenario, scenario_files
from drivesim.utils import DEFAULT_MODEL_DIR

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateOptions:
    sampler: str = "dpmpp"
    steps: int = 20
    guidance_scene: float = 3.0
    guidance_boxes: float = 2.0
    key_fps: float = 7.5  # the key-frame model's frame rate
    max_frames: int = 16  # one segment; longer clips need the rollout model
    latent_size: tuple[int, int] = (16, 32)  # the key-frame model's latent size (128x256 frames)
    frame_correlation: float | None = None  # shared part of the starting noise; None = the model's prior
    guidance_rescale: float = 0.7  # CFG rescale phi
    overwrite: bool = False


def warn_resolution(scenario, size: tuple[int, int]) -> None:
    """Say so when the video written differs from the scenario's output.resolution."""
    if tuple(scenario.output.resolution) != tuple(size):
        logger.warning("%s: output.resolution %s is not available yet (no upsampler in this release); "
                       "writing %dx%d, with labels in that resolution", scenario.id,
                       "x".join(map(str, scenario.output.resolution)), *size)


def generate_scenarios(path: str | Path, out_dir: str | Path, options: GenerateOptions,
                       model_dir: str | Path = DEFAULT_MODEL_DIR, progress: bool = True,
                       device: str = "cpu") -> list[Path]:
    """Generate one clip per scenario file (skipping complete ones); returns mp4 paths."""
    scenarios = [load_scenario(p) for p in scenario_files(path)]  # validate all before work
    todo = [s for s in scenarios if options.overwrite or not is_generated(out_dir, s.id)]
    if len(todo) < len(scenarios):
        logger.info("skipping %d complete clip(s) in %s", len(scenarios) - len(todo), out_dir)
    if not todo:
        return []
    pipe = VideoLDMPipeline.from_pretrained(model_dir).to(device)
    guidance = GuidanceScales(options.guidance_scene, options.guidance_boxes,
                              rescale=options.guidance_rescale)
    written = []
    for scenario in tqdm(todo, desc="generate", unit="clip", disable=not progress):
        frames = min(options.max_frames, max(1, math.ceil(scenario.duration * options.key_fps)))
        if frames < scenario.duration * options.key_fps:
            logger.info("%s: %g s is longer than one segment; generating the first %d key frames (%.2f s). "
                        "`drivesim rollout` makes the whole clip at 30 fps", scenario.id, scenario.duration,
                        frames, frames / options.key_fps)
        size = pipe.output_size(options.latent_size)  # labels describe the video written
        warn_resolution(scenario, size)
        cond, labels = scenario_conditions(scenario, frames, options.key_fps, size)
        out = pipe(cond, frames, latent_size=options.latent_size, sampler=options.sampler,
                   steps=options.steps, guidance=guidance, seed=scenario.seed,
                   frame_correlation=options.frame_correlation)
        meta = {"scenario_id": scenario.id, "seed": scenario.seed,
                "scenario": scenario.model_dump(mode="json"), "sampler": options.sampler,
                "steps": options.steps,
                "frame_correlation": pipe.frame_correlation(options.frame_correlation),
                "guidance": {"scene": guidance.scene, "boxes": guidance.boxes,
                             "rescale": guidance.rescale},
                "fps": options.key_fps, "frames": frames, "resolution": list(size),
                "requested_resolution": list(scenario.output.resolution),
                "model_versions": pipe.versions}
        written.append(write_generated_clip(out_dir, scenario.id, out.frames[0], options.key_fps,
                                            labels, meta))
    return written
