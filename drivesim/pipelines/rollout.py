"""Long videos, segment by segment (paper section 3.2): key frames from the masked-context
prediction model, optional 4x interpolation, streaming temporal decoding.

Segment 0: one box-conditioned image-LDM frame (the prediction UNet with image_only), then
the prediction model fills the segment from that 1 context frame; or, when the state starts
with context latents (drivesim augment: a real clip's first frames), from those frames.
Segment k > 0: the last `context_frames` key latents of the previous segment are the context
(kept exactly), with classifier-free guidance on the context. New key frames start from the last context frame
and interpolated frames from the linear blend of their key frames, noised part of the way
(SDEdit, `*_strength`): from pure noise the tiny models lose the scene at every segment
border (measured in the README). Each segment adds `new_frames` key frames, so N
segments give N * new_frames key frames. Frames stream out as they are decoded; memory does
not grow with length, and the state after any segment can be saved and resumed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from einops import rearrange, repeat
from safetensors.torch import save_file

from drivesim.diffusion.guidance import GuidanceScales
from drivesim.pipelines.conditions_track import RolloutConditions
from drivesim.pipelines.streaming_decode import StreamingDecoder
from drivesim.pipelines.video_ldm import VideoLDMPipeline
from drivesim.utils import timed

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
    interpolation_strength: float = 0.5
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


def segments_for(seconds: float, new_frames: int, interpolate: bool,
                 key_fps: float = RolloutConfig.key_fps) -> int:
    """Segments for a clip of `seconds`: K key frames give FACTOR (K - 1) + 1 output frames
    at key_fps * FACTOR (K at key_fps without interpolation)."""
    out_frames = frames_for(seconds, interpolate, key_fps)
    keys = math.ceil((out_frames + FACTOR - 1) / FACTOR) if interpolate else out_frames
    return max(1, math.ceil(keys / new_frames))


def for_seconds(cfg: RolloutConfig, seconds: float) -> RolloutConfig:
    """cfg with the whole segments a clip of `seconds` needs, its frames cut to those seconds."""
    return replace(cfg, segments=segments_for(seconds, cfg.new_frames, cfg.interpolate, cfg.key_fps),
                   frames=frames_for(seconds, cfg.interpolate, cfg.key_fps))


def segment_frames(cfg: RolloutConfig) -> int:
    """Output frames that cfg.segments whole segments make (before cfg.frames cuts the clip)."""
    keys = cfg.segments * cfg.new_frames
    return FACTOR * (keys - 1) + 1 if cfg.interpolate else keys


def clip_frames(cfg: RolloutConfig) -> int:
    """Output frames a rollout writes: its segments' frames, cut to cfg.frames."""
    made = segment_frames(cfg)
    return made if cfg.frames is None else min(made, cfg.frames)


@dataclass
class Segment:
    index: int
    key_latents: torch.Tensor  # [1,F,4,h,w] the window incl. context frames (unscaled)
    new_keys: int  # the last new_keys frames of key_latents are new
    frames: torch.Tensor  # [1,m,3,H,W] frames decoded during this segment (streaming lag)
    first_frame: int  # global output index of frames[:, 0]


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
    from drivesim.utils import atomic_write

    tensors_path, json_path = checkpoint_paths(path)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"context": state.context, **(state.decoder or {}), **(state.upsampler or {})}
    tensors = {k: v.cpu().contiguous() for k, v in tensors.items()}
    meta = {"next_segment": state.next_segment, "out_frames": state.out_frames,
            "config": asdict(config), **extra}
    atomic_write(tensors_path, lambda tmp: save_file(tensors, tmp))
    atomic_write(json_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2)))


def load_rollout_state(path: str | Path) -> tuple[RolloutState, dict]:
    """-> (state, its JSON metadata) written by save_rollout_state."""
    from drivesim.models.weights import checkpoint_paths, read_config, read_tensors

    tensors_path, _ = checkpoint_paths(path)
    meta, tensors = read_config(path), read_tensors(tensors_path)
    decoder = {k: tensors[k] for k in ("decoder_buffer", "decoder_index")}
    upsampler = {k: v for k, v in tensors.items() if k.startswith("upsampler_")} or None
    state = RolloutState(meta["next_segment"], tensors["context"], decoder, meta["out_frames"], upsampler)
    return state, meta


def key_blend(windows: torch.Tensor) -> torch.Tensor:
    """[B,F,C,h,w] -> the linear blend from frame 0 to frame F-1 at every frame (SDEdit start)."""
    w = rearrange(torch.linspace(0, 1, windows.shape[1], device=windows.device), "t -> 1 t 1 1 1")
    return windows[:, :1] * (1 - w) + windows[:, -1:] * w


class Rollout:
    """Segment-by-segment generator over a RolloutConditions track."""

    def __init__(self, prediction: VideoLDMPipeline, interpolation: VideoLDMPipeline | None,
                 cfg: RolloutConfig, decode_chunk: int = 7):
        if not prediction.unet.cfg.context_channels:
            raise ValueError("the rollout needs a prediction model (context_channels > 0); "
                             "a plain video LDM cannot take context frames")
        if cfg.interpolate and interpolation is None:
            raise ValueError("interpolate=True needs an interpolation model")
        if cfg.frames is not None and cfg.frames < 1:
            raise ValueError(f"frames={cfg.frames}: give 1 or more output frames, or None for whole segments")
        if cfg.context_frames not in (1, 2) or cfg.new_frames < cfg.context_frames:
            raise ValueError(f"context_frames={cfg.context_frames} must be 1 or 2 and <= new_frames")
        for name in ("prediction_strength", "interpolation_strength"):
            if not 0 < getattr(cfg, name) <= 1:
                raise ValueError(f"{name}={getattr(cfg, name)}: must be in (0, 1] (1 = pure noise)")
        self.prediction, self.interpolation, self.cfg = prediction, interpolation, cfg
        self.decode_chunk = decode_chunk  # speed vs memory only: the frames do not depend on it
        self.stage_seconds: dict[str, float] = {}  # wall time per stage in this process
        self.guidance = GuidanceScales(cfg.guidance_scene, cfg.guidance_boxes, context=cfg.guidance_context)

    def segment_seed(self, index: int) -> int:
        return self.cfg.seed * 100_003 + index

    def key_segment(self, index: int, track: RolloutConditions, context: torch.Tensor | None) -> torch.Tensor:
        """Key latents [1,F,4,h,w] of segment `index` (F = context + new frames)."""
        cfg, seed = self.cfg, self.segment_seed(index)
        first_key = index * cfg.new_frames
        if index == 0 and context is not None:  # given first key frames (e.g. a real clip's, encoded)
            keys = list(range(cfg.new_frames))
        elif index == 0:  # a box-conditioned first frame, then the segment from 1 context frame
            first = self.prediction(track.key_conditions([0]), 1, latent_size=cfg.latent_size,
                                    sampler=cfg.sampler, steps=cfg.steps, guidance=self.guidance, seed=seed,
                                    decode=False, frame_correlation=cfg.frame_correlation).latents
            context, keys = first, list(range(cfg.new_frames))
        else:
            keys = list(range(first_key - context.shape[1], first_key + cfg.new_frames))
        t = len(keys)
        ctx_latents = torch.zeros(1, t, *context.shape[2:], device=context.device)
        ctx_latents[:, :context.shape[1]] = context
        mask = (torch.arange(t, device=context.device) < context.shape[1]).float()[None]
        start = repeat(context[:, -1], "b c h w -> b t c h w", t=t)
        return self.prediction(track.key_conditions(keys), t, latent_size=cfg.latent_size,
                               sampler=cfg.sampler, steps=cfg.steps, guidance=self.guidance, seed=seed + 1,
                               decode=False, context_latents=ctx_latents, context_mask=mask,
                               frame_correlation=cfg.frame_correlation, start_latents=start,
                               strength=cfg.prediction_strength).latents

    def interpolate(self, keys: torch.Tensor, first_key: int, track: RolloutConditions,
                    seed: int) -> torch.Tensor:
        """keys [1,K,4,h,w] with global key index first_key -> the 4(K-1) frames after keys[0]."""
        k = keys.shape[1]
        windows = torch.zeros(k - 1, FACTOR + 1, *keys.shape[2:], device=keys.device)
        windows[:, 0], windows[:, -1] = keys[0, :-1], keys[0, 1:]
        mask = torch.zeros(k - 1, FACTOR + 1, device=keys.device)
        mask[:, 0] = mask[:, -1] = 1
        fine = [[(first_key + i) * FACTOR + j for j in range(FACTOR + 1)] for i in range(k - 1)]
        cond = track.fine_conditions(fine)
        blend = key_blend(windows)
        out = self.interpolation(cond, FACTOR + 1, latent_size=self.cfg.latent_size, sampler=self.cfg.sampler,
                                 steps=self.cfg.interpolation_steps, guidance=GuidanceScales(1.0, 1.0),
                                 seed=seed, decode=False, context_latents=windows, context_mask=mask,
                                 stage=INTERPOLATION_STAGE, frame_correlation=self.cfg.frame_correlation,
                                 start_latents=blend, strength=self.cfg.interpolation_strength).latents
        return out[:, 1:].reshape(1, -1, *keys.shape[2:])

    def run(self, track: RolloutConditions, state: RolloutState | None = None) -> Iterator[Segment]:
        """Yield segments state.next_segment .. cfg.segments-1, then a final flush Segment
        (index == cfg.segments, no new keys). `state` is updated in place after each segment."""
        cfg = self.cfg
        state = state or RolloutState()
        decoder = StreamingDecoder(self.prediction.decoder, self.decode_chunk)
        if state.decoder is not None:
            decoder.load_state(state.decoder)
        for index in range(state.next_segment, cfg.segments):
            with timed(self.stage_seconds, "key_frames"):
                window = self.key_segment(index, track, state.context)
            new = window[:, -cfg.new_frames:]
            first_key = index * cfg.new_frames
            if not cfg.interpolate:
                out = new
            elif index == 0:
                with timed(self.stage_seconds, "interpolation"):
                    fine = self.interpolate(new, 0, track, self.segment_seed(index) + 2)
                out = torch.cat([new[:, :1], fine], 1)
            else:  # from the previous segment's last key to this segment's last key
                keys = torch.cat([state.context[:, -1:], new], 1)
                with timed(self.stage_seconds, "interpolation"):
                    out = self.interpolate(keys, first_key - 1, track, self.segment_seed(index) + 2)
            first_out = decoder.emitted
            with timed(self.stage_seconds, "decode"):
                frames = decoder.push(out)
            state.out_frames += out.shape[1]
            state.context = window[:, -cfg.context_frames:].clone()
            state.next_segment = index + 1
            state.decoder = decoder.state()
            yield Segment(index, window, cfg.new_frames, frames, first_out)
        first_out = decoder.emitted
        with timed(self.stage_seconds, "decode"):
            frames = decoder.flush()
        state.decoder = decoder.state()
        yield Segment(cfg.segments, torch.empty(0), 0, frames, first_out)

    def segment_starts(self) -> list[int]:
        """Output frame index of each segment's first new frame after segment 0."""
        per_key = FACTOR if self.cfg.interpolate else 1
        first = 1 + per_key * (self.cfg.new_frames - 1) if self.cfg.interpolate else self.cfg.new_frames
        return [first + i * per_key * self.cfg.new_frames for i in range(self.cfg.segments - 1)]
