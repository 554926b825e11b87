"""Preview runs behind the page: a fast key-frame preview, the full cascade, and adding a rendered
clip to a Parquet catalog through the batch's writer (drivesim.pipelines.batch).

Tier 1 (seconds): one image-LDM frame at the base resolution (128x256), then up to 16 key frames
of the key-frame video LDM at 7.5 fps (`drivesim generate`'s path; the scene's starting
conditions). Tier 2 (minutes): the whole cascade of `drivesim generate --catalog` for the
scene (rollout with its schedules, 30 fps, the scene's output resolution), with progress per
segment. Models load once per server, on first use; every request is checked against the
server's limits first.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

from drivesim.data.catalog import CatalogError, clip_ids, read_clips
from drivesim.data.labels import read_scalabel
from drivesim.diffusion.guidance import GuidanceScales
from drivesim.export.catalog import CatalogWriter
from drivesim.export.video import write_mp4
from drivesim.pipelines.batch import BatchOptions, RenderedClip, commit_clip, model_hashes, render_clip
from drivesim.pipelines.cascade import Cascade
from drivesim.pipelines.generate import GenerateOptions
from drivesim.pipelines.rollout import RolloutConfig
from drivesim.pipelines.scenario_conditions import scenario_conditions
from drivesim.pipelines.upsample import DEFAULT_UPSAMPLER, UpsampleMethod
from drivesim.preview.drawing import boxed_copy, draw_clip_boxes
from drivesim.preview.limits import PreviewLimits, check_full_render, check_steps
from drivesim.scenario import Scenario
from drivesim.scenario_expand import ClipSpec, canonical_json, expand
from drivesim.utils import DEFAULT_MODEL_DIR, to_uint8

logger = logging.getLogger(__name__)
SOURCE = "drivesim preview"  # the catalog row's scenario_file when the scene came from no file
KEEP_S = 24 * 3600  # a request's files (its videos, a full render not yet added) are kept this long


class PreviewError(ValueError):
    """A request the previewer cannot serve; the message says why and what to do."""


@dataclass(frozen=True)
class PreviewSettings:
    """A request's sampling settings (the editor's fields); fewer steps than the batch's defaults,
    since a preview is about speed (the catalog row records what a clip used)."""

    preview_steps: int = 6  # tier 1 (key-frame preview): looks like 10-20 steps with the tiny model
    steps: int = 10  # tier 2 (full render): key-frame steps of the rollout
    interpolation_steps: int = 5
    guidance_scene: float = RolloutConfig.guidance_scene
    guidance_boxes: float = RolloutConfig.guidance_boxes
    guidance_context: float = RolloutConfig.guidance_context
    upsampler: UpsampleMethod = DEFAULT_UPSAMPLER  # full render (when output.resolution > base)
    sampler: str = RolloutConfig.sampler

    def rollout(self, seed: int) -> RolloutConfig:
        """The full render's rollout settings (segments are set per clip by the batch code)."""
        return RolloutConfig(
            sampler=self.sampler,
            steps=self.steps,
            seed=seed,
            interpolation_steps=self.interpolation_steps,
            guidance_scene=self.guidance_scene,
            guidance_boxes=self.guidance_boxes,
            guidance_context=self.guidance_context,
        )


@dataclass
class Preview:
    """A finished preview: the video, the same with its boxes drawn, and (full tier) the rendered
    clip that "Add to catalog" commits."""

    tier: str  # keyframes | full
    video: Path
    boxed: Path
    frames: int
    fps: float
    seconds: float
    key: str  # what it was made from (request_key)
    note: str = ""
    clip: ClipSpec | None = None
    rendered: RenderedClip | None = None  # full tier, until it is added to a catalog
    model_hashes: dict[str, str] | None = None  # full tier: the parts that made it (catalog column)


def request_key(scenario: Scenario, settings: PreviewSettings) -> str:
    """Identity of a request: the scenario (seed included) and the settings."""
    return canonical_json(scenario, exclude=()) + repr(dataclasses.astuple(settings))


class Previewer:
    """Serves preview requests for one server: models loaded once, outputs under a work folder."""

    def __init__(
        self,
        model_dir: str | Path = DEFAULT_MODEL_DIR,
        device: str = "cpu",
        limits: PreviewLimits | None = None,
        catalog: str | Path | None = None,
        work_dir: str | Path | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.device = device
        self.limits = limits or PreviewLimits()
        self.catalog = Path(catalog) if catalog else None
        self.work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="drivesim-preview-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # model loading
        self._keys: Cascade | None = None  # the key-frame model
        self._cascade: Cascade | None = None

    def _check_model_dir(self) -> None:
        if not self.model_dir.is_dir():
            raise PreviewError(
                f"{self.model_dir}: no such model folder; start `drivesim preview` with "
                "--model DIR (a folder of model parts), or without --model (the shipped one)"
            )

    def keyframe_cascade(self) -> Cascade:
        """The key-frame video LDM and its decoder (loaded on first use)."""
        self._check_model_dir()
        with self._lock:
            if self._keys is None:
                self._keys = Cascade.from_pretrained(
                    self.model_dir, key_model="unet", interpolation=False, device=self.device
                )
            return self._keys

    def cascade(self, options: BatchOptions, size: tuple[int, int]) -> Cascade:
        """The rollout cascade a clip of output `size` needs (loaded on first use, the upsampler
        model added when a clip first needs it); its upsampler is None unless this clip uses it."""
        self._check_model_dir()
        with self._lock:
            if self._cascade is None:
                self._cascade = Cascade.from_pretrained(
                    self.model_dir, interpolation=options.rollout.interpolate, device=self.device
                )
            cascade = self._cascade
            base = cascade.base_size(cascade.fit(options.rollout))
            if options.upsampler != "model" or tuple(size) == base:
                return cascade.with_upsampler(None)
            if cascade.upsampler is None:
                cascade.load_upsampler(self.model_dir, options.upsample)
            return cascade

    def new_folder(self) -> Path:
        """A fresh folder under the work folder (one per request); folders older than KEEP_S go."""
        now = time.time()
        for old in self.work.iterdir():
            if old.is_dir() and now - old.stat().st_mtime > KEEP_S:
                shutil.rmtree(old, ignore_errors=True)
        folder = self.work / uuid.uuid4().hex[:12]
        folder.mkdir()
        return folder

    def _keyframe_request(self, scenario: Scenario, settings: PreviewSettings, frames: int):
        check_steps(self.limits, preview_steps=settings.preview_steps)
        cascade = self.keyframe_cascade()
        cond, labels = scenario_conditions(scenario, frames, cascade.key_fps, cascade.base_size())
        guidance = GuidanceScales(
            settings.guidance_scene, settings.guidance_boxes, rescale=GenerateOptions.guidance_rescale
        )
        latents = cascade.key_frames(
            cond,
            frames,
            latent_size=cascade.latent_size,
            sampler=settings.sampler,
            steps=settings.preview_steps,
            guidance=guidance,
            seed=scenario.seed,
        )
        return to_uint8(cascade.decode(latents)[0]), labels

    def first_frame(self, scenario: Scenario, settings: PreviewSettings) -> tuple[np.ndarray, np.ndarray]:
        """The scene's first frame from the image LDM at the base resolution -> (uint8 [H,W,3], the
        same with its conditioning boxes)."""
        frames, labels = self._keyframe_request(scenario, settings, 1)
        return frames[0], draw_clip_boxes(frames, labels)[0]

    def keyframes(self, scenario: Scenario, settings: PreviewSettings) -> Preview:
        """Tier 1: up to limits.max_key_frames key frames at 7.5 fps and the base resolution."""
        start = time.perf_counter()
        key_fps = self.keyframe_cascade().key_fps
        wanted = max(1, math.ceil(scenario.duration * key_fps - 1e-9))
        frames = min(wanted, self.limits.max_key_frames)
        notes = []
        if frames < wanted:
            notes.append(
                f"key frames: the first {frames} of {wanted} ({frames / key_fps:.2f} of "
                f"{scenario.duration:g} s; this server's limit is {self.limits.max_key_frames}); "
                "the full render makes the whole clip"
            )
        if scenario.schedule.time_of_day or scenario.schedule.crowdedness:
            notes.append("key frames use the starting conditions; the full render follows the schedules")
        video, labels = self._keyframe_request(scenario, settings, frames)
        folder = self.new_folder()
        write_mp4(folder / "keyframes.mp4", video, key_fps)
        write_mp4(folder / "keyframes.boxed.mp4", draw_clip_boxes(video, labels), key_fps)
        return Preview(
            "keyframes",
            folder / "keyframes.mp4",
            folder / "keyframes.boxed.mp4",
            frames,
            key_fps,
            time.perf_counter() - start,
            request_key(scenario, settings),
            "; ".join(notes),
        )

    def full(
        self,
        scenario: Scenario,
        settings: PreviewSettings,
        source: str = SOURCE,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Preview:
        """Tier 2: the whole cascade for the scene (batch generation's render_clip);
        on_progress(done, total) after each segment."""
        clips = expand(scenario, source)
        if len(clips) != 1:
            raise PreviewError(
                f"the scene expands to {len(clips)} clips (a sweep or variants): the preview "
                "renders one clip; use `drivesim generate --catalog` for a sweep"
            )
        options = BatchOptions(rollout=settings.rollout(scenario.seed), upsampler=settings.upsampler)
        check_steps(self.limits, steps=settings.steps, interpolation_steps=settings.interpolation_steps)
        check_full_render(scenario, options.rollout, self.limits)
        start = time.perf_counter()
        cascade = self.cascade(options, scenario.output.resolution)
        folder = self.new_folder()
        hashes = model_hashes(self.model_dir, cascade)
        rendered = render_clip(clips[0], cascade, options, folder, self.device, on_progress)
        video = shutil.copy(rendered.mp4, folder / "full.mp4")  # the page's copy: commit moves the original
        boxed = boxed_copy(
            video, read_scalabel(rendered.label_file), folder / "full.boxed.mp4", rendered.meta.fps
        )
        return Preview(
            "full",
            Path(video),
            boxed,
            rendered.meta.frames,
            rendered.meta.fps,
            time.perf_counter() - start,
            request_key(scenario, settings),
            clip=clips[0],
            rendered=rendered,
            model_hashes=hashes,
        )

    def in_catalog(self, scenario: Scenario) -> str | None:
        """The clip id of the scene when the server's catalog has it already, else None."""
        if self.catalog is None:
            return None
        clip_id = expand(scenario, SOURCE)[0].clip_id
        return clip_id if clip_id in clip_ids(self.catalog) else None

    def add_to_catalog(self, preview: Preview) -> dict:
        """Commit a full render to the server's catalog (media, then its row) -> the row read back."""
        if self.catalog is None:
            raise PreviewError("this server has no catalog: start it with `drivesim preview --catalog DIR`")
        if preview.tier != "full" or preview.rendered is None or preview.clip is None:
            raise PreviewError("only a full render can be added: render the full clip first")
        writer = CatalogWriter(self.catalog, fps=preview.fps)
        clip_id = preview.clip.clip_id
        with writer.lock():
            if clip_id in clip_ids(writer.root):
                raise CatalogError(
                    f"{self.catalog}: clip {clip_id} (this scenario and seed) is already in "
                    "the catalog; change the seed or the scene to add another clip"
                )
            commit_clip(writer, preview.clip, preview.rendered, preview.model_hashes or {})
        preview.rendered = None  # its media now belong to the catalog
        return read_clips(writer.root, filter=ds.field("clip_id") == clip_id).to_pylist()[0]

    def close(self) -> None:
        """Delete the work folder (every preview's files)."""
        shutil.rmtree(self.work, ignore_errors=True)
