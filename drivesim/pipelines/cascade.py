"""Cascade: a model folder's stages, loaded once, and the segments every generating command runs
(`for segment in cascade.segments(track, cfg, size=(512, 1024), method="model")`, docs/models.md).

Stages (paper section 3), one method each: `key_frames` (a key-frame LDM; in a rollout the
masked-context prediction model), `interpolate` (T -> 4T with the interpolation model), `decode`
(the temporal decoder) and `upsample` (the 4x video upsampler, bicubic or none). `segments` chains
them segment by segment (section 3.2, pipelines/rollout.py): segment 0 starts from one
box-conditioned image-LDM frame, or from given context latents (drivesim augment), and segment k > 0
from the last context key latents of segment k - 1. Frames stream out of the decoder and the
upsampler with a lag; memory does not grow with length; the RolloutState after any segment resumes.
The key rate, latent size and interpolation factor are read from the checkpoints' configs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch
from einops import rearrange, repeat

from drivesim.data.conditions import Conditions
from drivesim.diffusion.guidance import GuidanceScales
from drivesim.models.model_index import check_folder_class, has_part
from drivesim.models.weights import CheckpointError
from drivesim.pipelines.conditions_track import RolloutConditions
from drivesim.pipelines.rollout import (
    FACTOR,
    INTERPOLATION_STAGE,
    CascadeSegment,
    RolloutConfig,
    RolloutState,
    SegmentMeta,
    check_rollout,
    clip_frames,
    clip_labels,
    key_blend,
    segment_seed,
)
from drivesim.pipelines.source_guide import SourceGuide
from drivesim.pipelines.streaming_decode import StreamingDecoder, WindowedDecoder
from drivesim.pipelines.upsample import (
    StreamingUpsampler,
    UpsampleMethod,
    Upsampler,
    UpsampleSettings,
    output_frames,
    upsample_segment,
)
from drivesim.pipelines.video_ldm import VideoLDMPipeline
from drivesim.utils import DEFAULT_MODEL_DIR, timed

CLASS_NAME = "Cascade"
TRAIN_COMMANDS = {"unet": "video-ldm", "prediction": "prediction", "interpolation": "interpolation"}


class Cascade:
    """The loaded stages of a model folder; stateless between calls (a batch shares one)."""

    def __init__(
        self,
        key_model: VideoLDMPipeline,
        interpolation: VideoLDMPipeline | None = None,
        upsampler: Upsampler | None = None,
    ):
        self.key_model, self.interpolation, self.upsampler = key_model, interpolation, upsampler

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path = DEFAULT_MODEL_DIR,
        *,
        key_model: str = "prediction",
        interpolation: bool = True,
        upsampler: bool = False,
        upsample: UpsampleSettings | None = None,
        device: str = "cpu",
    ) -> Cascade:
        """The stages of a model folder on `device`: UNet part `key_model` ('prediction' for rollouts,
        'unet' for one-segment clips) with the temporal decoder, the interpolation part when
        `interpolation`, the upsampler part when `upsampler`. Clear errors name a missing part."""
        model_dir = Path(model_dir)
        check_folder_class(model_dir, CLASS_NAME)
        for name, wanted in ((key_model, True), ("interpolation", interpolation)):
            if wanted and not has_part(model_dir, name):
                raise CheckpointError(
                    f"{model_dir / name}.safetensors: missing; this needs the '{name}' model "
                    f"(train it with `drivesim train {TRAIN_COMMANDS.get(name, name)}`, "
                    "see scripts/train_tiny.sh)"
                )
        keys = VideoLDMPipeline.from_pretrained(model_dir, unet=key_model).to(device)
        cascade = cls(keys, keys.with_unet(model_dir, "interpolation").to(device) if interpolation else None)
        if upsampler:
            cascade.load_upsampler(model_dir, upsample)
        return cascade

    def with_upsampler(self, upsampler: Upsampler | None) -> Cascade:
        """The same stages with another upsampler (None: none)."""
        return Cascade(self.key_model, self.interpolation, upsampler)

    def load_upsampler(self, model_dir: str | Path, settings: UpsampleSettings | None = None) -> Upsampler:
        """Load the folder's upsampler part into this cascade (on its device) and return it."""
        if not has_part(model_dir, "upsampler"):
            raise CheckpointError(
                f"{model_dir}: no upsampler part; use --upsampler bicubic|none or train one "
                "(`drivesim train upsampler`, scripts/train_tiny.sh)"
            )
        self.upsampler = Upsampler.from_pretrained(model_dir, settings or UpsampleSettings()).to(self.device)
        return self.upsampler

    # -- what the checkpoints say ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.key_model.device

    def stated(self) -> dict:
        """What the checkpoints' training configs state: key_fps, latent_size, factor (absent if unsaid)."""
        latents = self.key_model.data_config("latents")
        out = {}
        if latents.get("fps"):
            out["key_fps"] = float(latents["fps"])
        if latents.get("size"):
            f = self.key_model.decoder.cfg.downsample_factor
            out["latent_size"] = (latents["size"][0] // f, latents["size"][1] // f)
        if self.interpolation is not None:
            fast = self.interpolation.data_config("fast_latents").get("fps")
            slow = self.interpolation.data_config("latents").get("fps")
            if fast and slow:
                out["factor"] = round(fast / slow)
        return out

    @property
    def key_fps(self) -> float:
        """Frame rate of the key-frame model's training clips (RolloutConfig's default if unsaid)."""
        return self.stated().get("key_fps", RolloutConfig.key_fps)

    @property
    def latent_size(self) -> tuple[int, int]:
        """(h, w) of the key-frame model's training latents (RolloutConfig's default if unsaid)."""
        return self.stated().get("latent_size", RolloutConfig.latent_size)

    def base_size(self, cfg: RolloutConfig | None = None) -> tuple[int, int]:
        """(H, W) of decoded frames at cfg's latent size (default: the key model's)."""
        return self.key_model.output_size(cfg.latent_size if cfg else self.latent_size)

    @property
    def versions(self) -> dict[str, str]:
        """{part: model version} of the stages loaded."""
        versions = self.key_model.versions | (self.interpolation.versions if self.interpolation else {})
        return versions | ({"upsampler": self.upsampler.version} if self.upsampler else {})

    def fit(self, cfg: RolloutConfig) -> RolloutConfig:
        """cfg with the key rate and latent size the checkpoints were trained at (where they say)."""
        stated = self.stated()
        if stated.get("factor", FACTOR) != FACTOR:
            raise ValueError(
                f"the interpolation model was trained for {stated['factor']}x; the cascade "
                f"interpolates {FACTOR}x (T -> {FACTOR}T, paper section 3.3)"
            )
        fields = {k: stated[k] for k in ("key_fps", "latent_size") if k in stated}
        return replace(cfg, **fields) if fields else cfg

    # -- the stages --------------------------------------------------------------------------------------
    def key_frames(self, cond: Conditions, num_frames: int, **sampling) -> torch.Tensor:
        """Batched conditions -> key latents [B,T,4,h,w] (unscaled) from the key-frame model;
        `sampling`: VideoLDMPipeline.__call__'s keywords (sampler, steps, guidance, seed, context...)."""
        return self.key_model(cond, num_frames, decode=False, **sampling).latents

    def interpolate(
        self,
        keys: torch.Tensor,
        first_key: int,
        track: RolloutConditions,
        cfg: RolloutConfig,
        seed: int,
        guide: SourceGuide | None = None,
        frames: int | None = None,
    ) -> torch.Tensor:
        """keys [1,K,4,h,w] with global key index first_key -> the 4(K-1) frames after keys[0]
        (only the first `frames` of them: the key pairs past those are not interpolated);
        guide: start from its frames (SDEdit) instead of the noised blend of the keys."""
        if frames is not None:
            keys = keys[:, : -(-frames // FACTOR) + 1]
        k = keys.shape[1]
        if k < 2:  # nothing between the keys is wanted
            return keys[:, :0]
        windows = torch.zeros(k - 1, FACTOR + 1, *keys.shape[2:], device=keys.device)
        windows[:, 0], windows[:, -1] = keys[0, :-1], keys[0, 1:]
        mask = torch.zeros(k - 1, FACTOR + 1, device=keys.device)
        mask[:, 0] = mask[:, -1] = 1
        fine = [[(first_key + i) * FACTOR + j for j in range(FACTOR + 1)] for i in range(k - 1)]
        if self.interpolation is None:
            raise ValueError("interpolation needs a cascade with an interpolation model")
        start, strength = key_blend(windows), cfg.interpolation_strength
        if guide is not None:
            start = rearrange(
                guide.at([f for window in fine for f in window]), "1 (n t) c h w -> n t c h w", t=FACTOR + 1
            )
            start, strength = start.to(windows), guide.strength
        if strength == 0:  # the guide as it is, the key frames as given
            out = torch.where(rearrange(mask, "n t -> n t 1 1 1").bool(), windows, start)
            return out[:, 1:].reshape(1, -1, *keys.shape[2:])[:, :frames]
        out = self.interpolation(
            track.fine_conditions(fine),
            FACTOR + 1,
            latent_size=cfg.latent_size,
            sampler=cfg.sampler,
            steps=cfg.interpolation_steps,
            guidance=GuidanceScales(1.0, 1.0),
            seed=seed,
            decode=False,
            context_latents=windows,
            context_mask=mask,
            stage=INTERPOLATION_STAGE,
            frame_correlation=cfg.frame_correlation,
            start_latents=start,
            strength=strength,
        ).latents
        return out[:, 1:].reshape(1, -1, *keys.shape[2:])[:, :frames]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """[B,T,4,h,w] unscaled latents -> frames [B,T,3,8h,8w] in [-1,1] (a whole clip at once)."""
        return self.key_model.decode(latents)

    def upsample(
        self, frames: torch.Tensor, size: tuple[int, int], method: UpsampleMethod, seed: int = 0
    ) -> torch.Tensor:
        """Base frames [B,T,3,h,w] -> frames at `size` (H,W) by `method` (none | bicubic | model)."""
        return output_frames(frames, size, method, self.upsampler, seed)

    # -- the rollout -------------------------------------------------------------------------------------
    def segment_keys(
        self,
        index: int,
        track: RolloutConditions,
        context: torch.Tensor | None,
        cfg: RolloutConfig,
        guide: SourceGuide | None = None,
    ) -> torch.Tensor:
        """Key latents [1,F,4,h,w] of segment `index` (F = context + new frames); guide: new keys
        start from its frames (SDEdit) instead of the noised last context frame."""
        seed = segment_seed(cfg, index)
        guidance = GuidanceScales(cfg.guidance_scene, cfg.guidance_boxes, context=cfg.guidance_context)
        sampling = dict(
            latent_size=cfg.latent_size,
            sampler=cfg.sampler,
            steps=cfg.steps,
            guidance=guidance,
            frame_correlation=cfg.frame_correlation,
        )
        first_key = index * cfg.new_frames
        if index == 0 and context is not None:  # given first key frames (e.g. a real clip's, encoded)
            keys = list(range(cfg.new_frames))
        elif index == 0:  # a box-conditioned first frame, then the segment from 1 context frame
            context = self.key_frames(track.key_conditions([0]), 1, seed=seed, **sampling)
            keys = list(range(cfg.new_frames))
        elif context is None:
            raise ValueError(f"segment {index} needs the context latents of segment {index - 1}")
        else:
            keys = list(range(first_key - context.shape[1], first_key + cfg.new_frames))
        t = len(keys)
        ctx_latents = torch.zeros(1, t, *context.shape[2:], device=context.device)
        ctx_latents[:, : context.shape[1]] = context
        mask = (torch.arange(t, device=context.device) < context.shape[1]).float()[None]
        start = repeat(context[:, -1], "b c h w -> b t c h w", t=t)
        strength = cfg.prediction_strength
        if guide is not None:
            start, strength = guide.at([k * FACTOR for k in keys]).to(context), guide.strength
        if strength == 0:  # the guide as it is, the context frames as given
            return torch.where(rearrange(mask, "1 t -> 1 t 1 1 1").bool(), ctx_latents, start)
        return self.key_frames(
            track.key_conditions(keys),
            t,
            seed=seed + 1,
            context_latents=ctx_latents,
            context_mask=mask,
            start_latents=start,
            strength=strength,
            **sampling,
        )

    def segment_latents(
        self,
        index: int,
        window: torch.Tensor,
        track: RolloutConditions,
        state: RolloutState,
        cfg: RolloutConfig,
        seconds: dict[str, float],
        guide: SourceGuide | None = None,
        frames: int | None = None,
    ) -> torch.Tensor:
        """The output latents [1,n,4,h,w] segment `index` adds: its new keys, interpolated when cfg
        says; only the first `frames` (None: all) are made."""
        new = window[:, -cfg.new_frames :]
        if not cfg.interpolate:
            return new[:, :frames]
        with timed(seconds, "interpolation"):
            if index == 0:
                rest = None if frames is None else frames - 1
                between = self.interpolate(new, 0, track, cfg, segment_seed(cfg, 0) + 2, guide, rest)
                return torch.cat([new[:, :1], between], 1)[:, :frames]
            if state.context is None:
                raise ValueError(f"segment {index} needs the context latents of segment {index - 1}")
            keys = torch.cat([state.context[:, -1:], new], 1)  # from the previous segment's last key
            seed = segment_seed(cfg, index) + 2
            return self.interpolate(keys, index * cfg.new_frames - 1, track, cfg, seed, guide, frames)

    def segments(
        self,
        track: RolloutConditions,
        cfg: RolloutConfig,
        state: RolloutState | None = None,
        *,
        size: tuple[int, int] | None = None,
        method: UpsampleMethod = "none",
        labels: RolloutConditions | None = None,
        decode_chunk: int = 8,
        guide: SourceGuide | None = None,
        reference: bool = False,
    ) -> Iterator[CascadeSegment]:
        """Segments state.next_segment .. cfg.segments-1, then a final flush (meta.index == cfg.segments).

        track: conditions at the base size; size / method: the frames' size and how they get there
        (none | bicubic | model; the model streams); labels: the track at `size` whose labels are
        yielded (default: track). `state` is updated in place after each segment (save it to resume).
        decode_chunk: frames per temporal-decoder pass (memory vs speed; the same frames).
        guide: a source clip every new frame starts from (SourceGuide; None: noise, as the paper).
        reference: the eager reference path `drivesim bench cascade` measures against: the whole
        decoder on overlapping windows, the last segment interpolated and decoded in full, then cut
        (the fast path decodes layer by layer and makes only the frames written)."""
        check_rollout(cfg, self.key_model.unet, self.interpolation is not None)
        state = state or RolloutState()
        base_size = self.base_size(cfg)
        hw = size or base_size
        size = (hw[0], hw[1])
        labels = labels or track
        length = clip_frames(cfg)
        if reference:
            decoder = WindowedDecoder(self.key_model.decoder, decode_chunk)
        else:
            decoder = StreamingDecoder(self.key_model.decoder, decode_chunk)
        if state.decoder is not None:
            decoder.load_state(state.decoder)
        larger = size[0] > base_size[0] or size[1] > base_size[1]
        if method == "model" and larger and self.upsampler is None:
            raise ValueError(f"upsampler='model' at {size}, but the cascade has no upsampler")
        model = self.upsampler if method == "model" and larger else None  # else bicubic/area/none serve
        stream = StreamingUpsampler(model, cfg.seed) if model is not None else None
        if stream is not None and state.upsampler is not None:
            stream.load_state(state.upsampler)
        for index in range(state.next_segment, cfg.segments + 1):
            seconds: dict[str, float] = {}
            first_base = decoder.emitted
            if index < cfg.segments:
                with timed(seconds, "key_frames"):
                    window = self.segment_keys(index, track, state.context, cfg, guide)
                wanted = None if reference else max(0, length - state.out_frames)
                out = self.segment_latents(index, window, track, state, cfg, seconds, guide, wanted)
                if guide is not None:  # the source's fine detail in every new frame
                    out = guide.blend(out, state.out_frames, 1 if cfg.interpolate else FACTOR)
                with timed(seconds, "decode"):
                    base = decoder.push(out)
                state.out_frames += out.shape[1]
                state.context = window[:, -cfg.context_frames :].clone()
                state.next_segment = index + 1
            else:
                window = torch.empty(0)
                with timed(seconds, "decode"):
                    base = decoder.flush()
            state.decoder = decoder.state()
            # whole segments overshoot the clip's duration: cut there, before the upsampler pays for it
            base = base[:, : max(0, length - first_base)] if base.numel() else base
            if base.numel() and not torch.isfinite(base).all():
                raise FloatingPointError(f"segment {index} decoded to NaN/inf frames")
            first_frame = stream.emitted if stream is not None else first_base
            with timed(seconds, "upsample"):
                frames = upsample_segment(
                    base, size, method, self.upsampler, stream, final=index == cfg.segments
                )
            if stream is not None:
                state.upsampler = stream.state()
            n = frames.shape[1] if frames.numel() else 0
            meta = SegmentMeta(
                index, first_frame, first_base, cfg.new_frames if index < cfg.segments else 0, seconds
            )
            yield CascadeSegment(
                frames, base, clip_labels(labels, cfg, first_frame, first_frame + n), window, meta
            )
