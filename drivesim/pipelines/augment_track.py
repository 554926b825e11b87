"""What an augmented variant is conditioned on: the changes asked for, the source clip's labels
laid out per output frame (its boxes carried over), and its first frames as context latents.

Output frame f of a variant (at the rollout's 30 fps) shows source time start_s + f / 30 s; key
frame k shows start_s + k / 7.5 s. Source frames are centre-cropped to 1:2 and resized to the
base video, as every dataset does, and their boxes go through the same crop.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from einops import rearrange

from drivesim.data.clips import center_crop_to_aspect, resample_indices, transform_box
from drivesim.data.conditions import CROWDEDNESS, TIME_OF_DAY
from drivesim.data.labels import FrameLabel
from drivesim.data.procedural import frames_to_tensor
from drivesim.data.sources import SourceClip
from drivesim.pipelines.conditions_track import RolloutConditions
from drivesim.pipelines.rollout import FACTOR, RolloutConfig, segments_for
from drivesim.world.labels import BDD_TIME_OF_DAY

VARIABLE = {"time_of_day": TIME_OF_DAY, "crowdedness": CROWDEDNESS}


class AugmentError(ValueError):
    """A bad --vary, or a source clip that cannot be augmented; the message says what to change."""


def parse_changes(text: str) -> dict[str, str]:
    """'time_of_day=night,crowdedness=crowded' -> {'time_of_day': 'night', 'crowdedness': 'crowded'}."""
    changes: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or name not in VARIABLE:
            raise AugmentError(
                f"--vary {text!r}: write CONDITION=VALUE[,CONDITION=VALUE] with CONDITION one "
                f"of {', '.join(VARIABLE)}, e.g. time_of_day=night,crowdedness=crowded"
            )
        if value not in VARIABLE[name]:
            raise AugmentError(f"--vary {part!r}: {name} must be one of {', '.join(VARIABLE[name])}")
        if name in changes:
            raise AugmentError(f"--vary {text!r}: {name} is given twice")
        changes[name] = value
    if not changes:
        raise AugmentError("--vary is empty: give e.g. time_of_day=night")
    return changes


def variant_scene(source: SourceClip, changes: dict[str, str]) -> dict[str, dict]:
    """{condition: {from, to}} for time of day and crowdedness (`to` = `from` when unchanged)."""
    scene = {"time_of_day": source.time_of_day, "crowdedness": source.crowdedness}
    if changes.get("time_of_day", scene["time_of_day"]) is None:
        raise AugmentError(
            f"{source.path}: its labels give no time of day (`timeofday`); vary it "
            "explicitly, e.g. --vary time_of_day=night (or =day to keep a day clip)"
        )
    return {k: {"from": v, "to": changes.get(k, v)} for k, v in scene.items()}


def adds_traffic(scene: dict[str, dict]) -> bool:
    """Whether the variant asks for more cars than the source shows (they will have no boxes)."""
    old, new = scene["crowdedness"]["from"], scene["crowdedness"]["to"]
    if new == old or new is None:
        return False
    return old is None or CROWDEDNESS.index(new) > CROWDEDNESS.index(old)


def variant_segments(source: SourceClip, start_s: float, seconds: float, cfg: RolloutConfig) -> int:
    """Segments for `seconds` of the source from start_s, never past its last frame."""
    left = source.duration_s - start_s - 1 / source.fps
    keys_fit = math.floor(left * cfg.key_fps + 1e-9) + 1  # key k at start_s + k / key_fps
    most = keys_fit // cfg.new_frames
    if start_s < 0 or most < 1:
        raise AugmentError(
            f"{source.path}: {source.duration_s:.2f} s from {start_s:g} s is shorter than one "
            f"segment ({cfg.new_frames} key frames at {cfg.key_fps:g} fps); use an earlier "
            "--start or a longer clip"
        )
    return max(1, min(most, segments_for(seconds, cfg.new_frames, cfg.interpolate, cfg.key_fps)))


def source_track(
    source: SourceClip,
    start_s: float,
    cfg: RolloutConfig,
    size: tuple[int, int],
    frame_hw: tuple[int, int],
    scene: dict[str, dict],
    attributes: dict[str, str],
) -> RolloutConditions:
    """The source's labels per output frame (boxes cropped + resized to `size`, None = unknown),
    conditioned on the variant's scene; `attributes` go into every frame's label attributes."""
    out_fps = cfg.key_fps * FACTOR
    n = cfg.segments * cfg.new_frames * FACTOR + 1
    crop = center_crop_to_aspect(*frame_hw, aspect_w_over_h=size[1] / size[0])
    tod, crowd = scene["time_of_day"]["to"], scene["crowdedness"]["to"]
    labels = []
    for f, j in enumerate(resample_indices(source.fps, out_fps, start_s, n)):
        j = min(j, source.num_frames - 1)
        label = source.labels.get(j) if source.labels else None
        boxes = None
        if label is not None and label.boxes is not None:
            boxes = [b for b in (transform_box(b, crop, size) for b in label.boxes) if b]
        attrs = {
            "timeofday": BDD_TIME_OF_DAY[tod],
            **({"crowdedness": crowd} if crowd else {}),
            "sourceFrame": str(j),
            **attributes,
        }
        labels.append(FrameLabel(f, boxes, attrs))
    return RolloutConditions(labels, size, tod, [crowd], cfg.key_fps, FACTOR, cfg.new_frames)  # None: unknown


def source_frames(
    source: SourceClip, indices: list[int], size: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Source frames at `indices` (past its end: its last frame), centre-cropped to the aspect of
    `size` and resized to it -> ([n,3,H,W] in [-1,1], the source's (H, W))."""
    raw = source.read_frames([min(j, source.num_frames - 1) for j in indices])
    y0, y1, x0, x1 = center_crop_to_aspect(*raw[0].shape[:2], aspect_w_over_h=size[1] / size[0])
    frames = np.stack(
        [cv2.resize(f[y0:y1, x0:x1], (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in raw]
    )
    return frames_to_tensor(frames), raw[0].shape[:2]


def context_frames(
    source: SourceClip, start_s: float, cfg: RolloutConfig, size: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int]]:
    """The source's first cfg.context_frames key frames -> ([c,3,H,W] in [-1,1], source (H, W))."""
    return source_frames(source, resample_indices(source.fps, cfg.key_fps, start_s, cfg.context_frames), size)


@torch.no_grad()
def guide_latents(
    autoencoder,
    source: SourceClip,
    start_s: float,
    cfg: RolloutConfig,
    size: tuple[int, int],
    chunk: int = 32,
) -> torch.Tensor:
    """The source encoded at every output frame of the rollout (the frames source_track labels) ->
    unscaled latents [1,N,4,H/8,W/8], N = segments x new_frames x FACTOR + 1 (--keep-structure's guide)."""
    n = cfg.segments * cfg.new_frames * FACTOR + 1
    indices = resample_indices(source.fps, cfg.key_fps * FACTOR, start_s, n)
    parts = []
    for first in range(0, n, chunk):  # a long source never sits in memory whole
        frames, _ = source_frames(source, indices[first : first + chunk], size)
        parts.append(encode_context(autoencoder, frames))
    return torch.cat(parts, 1)


@torch.no_grad()
def encode_context(autoencoder, frames: torch.Tensor) -> torch.Tensor:
    """[c,3,H,W] in [-1,1] -> unscaled latents [1,c,4,H/8,W/8] (the posterior mode)."""
    latents = autoencoder.encode(frames.to(next(autoencoder.parameters()).device)).mode()
    return rearrange(latents, "t c h w -> 1 t c h w")


def translate_context(
    prediction,
    latents: torch.Tensor,
    track: RolloutConditions,
    cfg: RolloutConfig,
    strength: float,
    seed: int,
    guidance,
) -> torch.Tensor:
    """Context latents [1,c,4,h,w] moved towards the variant's conditions by SDEdit (noised to
    `strength`, denoised by the prediction model without context); strength 0 returns them as given."""
    if strength <= 0:
        return latents
    c = latents.shape[1]
    return prediction(
        track.key_conditions(list(range(c))),
        c,
        latent_size=cfg.latent_size,
        sampler=cfg.sampler,
        steps=cfg.steps,
        guidance=guidance,
        seed=seed,
        decode=False,
        frame_correlation=cfg.frame_correlation,
        start_latents=latents,
        strength=min(strength, 1.0),
    ).latents
