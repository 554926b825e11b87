"""Long videos, segment by segment (paper section 3.2): the rollout's settings, its resumable
state and its arithmetic; drivesim.pipelines.cascade runs it (key frames from the masked-context
prediction model, optional 4x interpolation, streaming temporal decoding, upsampling).

Segment 0: one box-conditioned image-LDM frame (the prediction UNet with image_only), then
the prediction model fills the segment from that 1 context frame; or, when the state starts
with context latents (drivesim augment: a real clip's first frames), from those frames.
Segment k > 0: the last `context_frames` key latents of the previous segment are the context
(kept exactly), with classifier-free guidance on the context. New key frames may start from the
last context frame and interpolated frames from the linear blend of their key frames, noised part
of the way (SDEdit, `*_strength`); interpolation strength 0 (the default) keeps the blend without
running the interpolation model, which does not beat it (MODEL_CARD.md). Each segment adds
`new_frames` key frames, so N
segments give N * new_frames key frames. Frames stream out as they are decoded; memory does
not grow with length, and the state after any segment can be saved and resumed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from einops import rearrange
from safetensors.torch import save_file

from drivesim.data.labels import FrameLabel
from drivesim.pipelines.conditions_track import RolloutConditions

FACTOR = 4  # interpolation T -> 4T
INTERPOLATION_STAGE = 2  # 4T -> 16T step: the key-frame rate (7.5 fps) to 30 fps


@dataclass(frozen=True)
class RolloutConfig:
    segments: int = 4
    new_frames: int = 6  # key frames added per segment
    context_frames: int = 2  # 1 or 2
    key_fps: float = 7.5
    interpolate: bool = True  # 4x to key_fps * 4 with the interpolation model
    sampler: str = "dpmpp"
    steps: int = 20
    interpolation_steps: int = 10
    guidance_scene: float = 2.0
    guidance_boxes: float = 1.5
    guidance_context: float = 1.5  # 1 = no context guidance
    frame_correlation: float | None = None  # shared part of the starting noise; None = each model's prior
    # SDEdit starts (1 = pure noise): new key frames from the noised last context frame,
    # interpolated frames from the noised linear blend of their two key frames
    prediction_strength: float = 1.0
    # 0 = the linear blend itself, without the interpolation model: the tiny model (trained on the
    # previous world) is further from the real in-between frames than the blend at every strength
    # (held-out latent MSE 0.41 / 0.80 / 1.59 at 0.2 / 0.5 / 1 vs 0.19) and steps 1.9-3.9x a real
    # frame step (blend: 0.61x). MODEL_CARD.md, "Twice as fast".
    interpolation_strength: float = 0.0
    seed: int = 0
    latent_size: tuple[int, int] = (16, 32)
    frames: int | None = None  # output frames to write (a clip's duration); None = all the segments make

    @property
    def out_fps(self) -> float:
        return self.key_fps * (FACTOR if self.interpolate else 1)


def frames_for(seconds: float, interpolate: bool, key_fps: float = RolloutConfig.key_fps) -> int:
    """Output frames of a clip of `seconds`, at key_fps * FACTOR (key_fps without interpolation)."""
    fps = key_fps * (FACTOR if interpolate else 1)
    return max(1, math.ceil(round(seconds * fps, 6)))  # round: 0.3 s * 30 fps is 9.000000000000002


def segments_for(
    seconds: float, new_frames: int, interpolate: bool, key_fps: float = RolloutConfig.key_fps
) -> int:
    """Segments for a clip of `seconds`: K key frames give FACTOR (K - 1) + 1 output frames
    at key_fps * FACTOR (K at key_fps without interpolation)."""
    out_frames = frames_for(seconds, interpolate, key_fps)
    keys = math.ceil((out_frames + FACTOR - 1) / FACTOR) if interpolate else out_frames
    return max(1, math.ceil(keys / new_frames))


def for_seconds(cfg: RolloutConfig, seconds: float) -> RolloutConfig:
    """cfg with the whole segments a clip of `seconds` needs, its frames cut to those seconds."""
    return replace(
        cfg,
        segments=segments_for(seconds, cfg.new_frames, cfg.interpolate, cfg.key_fps),
        frames=frames_for(seconds, cfg.interpolate, cfg.key_fps),
    )


def segment_frames(cfg: RolloutConfig) -> int:
    """Output frames that cfg.segments whole segments make (before cfg.frames cuts the clip)."""
    keys = cfg.segments * cfg.new_frames
    return FACTOR * (keys - 1) + 1 if cfg.interpolate else keys


def clip_frames(cfg: RolloutConfig) -> int:
    """Output frames a rollout writes: its segments' frames, cut to cfg.frames."""
    made = segment_frames(cfg)
    return made if cfg.frames is None else min(made, cfg.frames)


@dataclass(frozen=True)
class SegmentMeta:
    """What one step of Cascade.segments did."""

    index: int  # segment number; == cfg.segments for the final flush (no new key frames)
    first_frame: int  # output frame index of the segment's frames[:, 0]
    first_base_frame: int  # output frame index of its base[:, 0] (the upsampler lags behind)
    new_key_frames: int
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage


@dataclass
class CascadeSegment:
    """The frames one segment made ready, with their labels."""

    frames: torch.Tensor  # [1,n,3,H,W] in [-1,1] at the output size (n = 0 while the upsampler fills)
    base: torch.Tensor  # [1,m,3,h,w] the decoded base frames, cut to the clip
    labels: list[FrameLabel]  # one per frame of `frames`, frame_index = output frame index
    key_latents: torch.Tensor  # [1,F,4,h,w] the key window incl. its context frames (empty: flush)
    meta: SegmentMeta


@dataclass
class RolloutState:
    """What the next segment needs: resumable after any segment."""

    next_segment: int = 0
    context: torch.Tensor | None = None  # [1,c,4,h,w] last key latents (before segment 0: given first keys)
    decoder: dict | None = None
    out_frames: int = 0  # output (fine) frames passed to the decoder so far
    upsampler: dict | None = None  # the streaming upsampler's buffer (rollout_job)


def save_rollout_state(path: str | Path, state: RolloutState, config: RolloutConfig, extra: dict) -> None:
    """state -> <path>.safetensors (tensors) + <path>.json (counters, config, extra), atomically."""
    from drivesim.models.weights import checkpoint_paths
    from drivesim.utils import atomic_write, write_json_atomic

    tensors_path, json_path = checkpoint_paths(path)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"context": state.context, **(state.decoder or {}), **(state.upsampler or {})}
    tensors = {k: v.cpu().contiguous() for k, v in tensors.items()}
    meta = {
        "next_segment": state.next_segment,
        "out_frames": state.out_frames,
        "config": asdict(config),
        **extra,
    }
    atomic_write(tensors_path, lambda tmp: save_file(tensors, tmp))
    write_json_atomic(meta, json_path, indent=2)


def load_rollout_state(path: str | Path) -> tuple[RolloutState, dict]:
    """-> (state, its JSON metadata) written by save_rollout_state."""
    from drivesim.models.weights import checkpoint_paths, read_config, read_tensors

    tensors_path, _ = checkpoint_paths(path)
    meta, tensors = read_config(path), read_tensors(tensors_path)
    decoder = {k: v for k, v in tensors.items() if k.startswith("decoder_")}
    upsampler = {k: v for k, v in tensors.items() if k.startswith("upsampler_")} or None
    state = RolloutState(meta["next_segment"], tensors["context"], decoder, meta["out_frames"], upsampler)
    return state, meta


def key_blend(windows: torch.Tensor) -> torch.Tensor:
    """[B,F,C,h,w] -> the linear blend from frame 0 to frame F-1 at every frame (SDEdit start)."""
    w = rearrange(torch.linspace(0, 1, windows.shape[1], device=windows.device), "t -> 1 t 1 1 1")
    return windows[:, :1] * (1 - w) + windows[:, -1:] * w


def segment_starts(cfg: RolloutConfig) -> list[int]:
    """Output frame index of each segment's first new frame after segment 0."""
    per_key = FACTOR if cfg.interpolate else 1
    first = 1 + per_key * (cfg.new_frames - 1) if cfg.interpolate else cfg.new_frames
    return [first + i * per_key * cfg.new_frames for i in range(cfg.segments - 1)]


def segment_seed(cfg: RolloutConfig, index: int) -> int:
    """The sampling seed of segment `index` (the key frames use it and +1, interpolation +2)."""
    return cfg.seed * 100_003 + index


def clip_labels(track: RolloutConditions, cfg: RolloutConfig, start: int, stop: int) -> list[FrameLabel]:
    """Labels of output frames start..stop-1 (the track has one label per 30 fps frame)."""
    laid_out = track.labels if cfg.interpolate else track.labels[::FACTOR]
    return [FrameLabel(i, lab.boxes, lab.attributes) for i, lab in enumerate(laid_out[start:stop], start)]


def check_rollout(cfg: RolloutConfig, key_unet, has_interpolation: bool) -> None:
    """Clear errors for a rollout that a key-frame UNet (+ interpolation model) cannot run."""
    if key_unet is None or not key_unet.cfg.context_channels:
        raise ValueError(
            "the rollout needs a prediction model (context_channels > 0); "
            "a plain video LDM cannot take context frames"
        )
    if cfg.interpolate and not has_interpolation:
        raise ValueError("interpolate=True needs an interpolation model")
    if cfg.frames is not None and cfg.frames < 1:
        raise ValueError(f"frames={cfg.frames}: give 1 or more output frames, or None for whole segments")
    if cfg.context_frames not in (1, 2) or cfg.new_frames < cfg.context_frames:
        raise ValueError(f"context_frames={cfg.context_frames} must be 1 or 2 and <= new_frames")
    if not 0 < cfg.prediction_strength <= 1:
        raise ValueError(f"prediction_strength={cfg.prediction_strength}: must be in (0, 1] (1 = pure noise)")
    if not 0 <= cfg.interpolation_strength <= 1:
        raise ValueError(
            f"interpolation_strength={cfg.interpolation_strength}: must be in [0, 1] "
            "(0 = the linear blend of the key frames, 1 = pure noise)"
        )
