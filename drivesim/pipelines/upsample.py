"""The cascade's last stage: 128x256 video -> 512x1024 (4x), by the diffusion upsampler or bicubic.

Memory stays fixed in both directions. Spatially, every denoising step evaluates the model on
overlapping tiles blended with linear ramps (tiling.py). Temporally, frames stream through
windows of `chunk` frames plus `steps x temporal reach` frames on each side
(StreamingWindows), so a long rollout passes at flat memory and equals a whole-clip pass:
all noise is drawn per global frame index from the seed.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F

from drivesim.diffusion.samplers import denoise_loop, make_scheduler, sdedit_timesteps
from drivesim.diffusion.schedule import ScheduleConfig, velocity_from_x0, x0_preconditioning
from drivesim.models.model_index import load_part, part_prefix
from drivesim.models.upsampler import UpsamplerUNet, bicubic_upsample
from drivesim.models.weights import read_config
from drivesim.pipelines.streaming_decode import StreamingWindows
from drivesim.pipelines.tiling import tiled

UpsampleMethod = Literal["none", "bicubic", "model"]  # how the base video reaches the output size
METHODS: tuple[UpsampleMethod, ...] = get_args(UpsampleMethod)
# The default way to 512x1024. The tiny diffusion upsampler (r7, trained on the old flat-shaded
# world) loses to bicubic on today's world: `drivesim eval upsampler --clips 4 --frames 16
# --low-res decoded` gives 20.97 vs 21.10 dB PSNR at equal SSIM (0.623) and 1.01x bicubic's warped
# flicker, for 0.58 of 0.60 s per frame. `--upsampler model` keeps it available.
DEFAULT_UPSAMPLER: UpsampleMethod = "bicubic"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpsampleSettings:
    """How the model upsampler samples; defaults meet <= 2 s per 512x1024 frame on 2 CPU cores."""

    # The shipped tiny upsampler: 1 step (its x0 guess at t = T) beats bicubic, 2 and 4 steps fall
    # below it (held-out frame, AE-decoded input: 24.89 / 24.40 / 23.71 dB vs bicubic 24.74).
    steps: int = 1
    sampler: str = "ddim"
    noise_level: int = 10  # low-res noise augmentation at inference (sigma 0.1; training draws 0..20)
    frame_correlation: float | None = None  # share of the noise common to all frames; None: model's
    tile: int = 512  # high-res tile side in pixels (a multiple of the model's size_multiple)
    overlap: int = 64  # pixels shared by neighbouring tiles
    blend: int = 32  # width of the linear ramp inside the overlap
    chunk: int = 16  # output frames per temporal window

    def __post_init__(self):
        problems = [
            f"{name}={getattr(self, name)}: {rule}"
            for name, ok, rule in (
                ("steps", self.steps >= 1, "use 1 or more"),
                ("noise_level", 0 <= self.noise_level < 1000, "use a timestep in 0..999"),
                ("tile", self.tile > 0, "use a positive number of pixels"),
                ("blend", 0 <= self.blend <= self.overlap, "use 0..overlap"),
                ("chunk", self.chunk >= 1, "use 1 or more"),
            )
            if not ok
        ]
        if problems:
            raise ValueError("upsampler settings: " + "; ".join(problems))


def frame_noise(seed: int, index: int, stream: int, shape: tuple[int, ...]) -> torch.Tensor:
    """N(0, I) of `shape` for global frame `index`, the same in any window or chunking."""
    state = np.random.SeedSequence([seed, index, stream]).generate_state(2, dtype=np.uint64)
    return torch.randn(shape, generator=torch.Generator().manual_seed(int(state[0] >> np.uint64(1))))


class Upsampler:
    """low-res frames [B,T,3,h,w] in [-1,1] -> [B,T,3,4h,4w] = bicubic + the sampled residual."""

    def __init__(
        self,
        model: UpsamplerUNet,
        schedule: ScheduleConfig,
        image_only: bool = False,
        version: str = "",
        settings: UpsampleSettings = UpsampleSettings(),
    ):
        self.model = model.eval().requires_grad_(False)  # inference only
        self.schedule, self.image_only, self.version, self.settings = schedule, image_only, version, settings

    @classmethod
    def from_pretrained(
        cls,
        dir_or_prefix: str | Path,
        settings: UpsampleSettings = UpsampleSettings(),
        name: str = "upsampler",
    ) -> Upsampler:
        """Part `name` of a model folder, or a checkpoint prefix; an image-stage checkpoint runs
        without its (untrained) temporal layers."""
        prefix = part_prefix(dir_or_prefix, name)
        meta = read_config(prefix)
        version = meta.get("model_version", f"{prefix}@step{meta.get('step')}")
        return cls(
            load_part(prefix, "upsampler", UpsamplerUNet),
            ScheduleConfig.from_dict(meta["schedule"]),
            image_only=meta.get("stage") == "image",
            version=version,
            settings=settings,
        )

    def to(self, device: str | torch.device) -> Upsampler:
        self.model.to(device)
        return self

    @property
    def scale(self) -> int:
        return self.model.cfg.scale

    @property
    def temporal_radius(self) -> int:
        """Frames on each side that can change one output frame over the whole sampling loop."""
        return 0 if self.image_only else self.model.cfg.temporal_radius * self.settings.steps

    @torch.no_grad()
    def __call__(self, low: torch.Tensor, seed: int = 0, frame_offset: int = 0) -> torch.Tensor:
        """Upsample a window whose first frame is global frame `frame_offset` of the video."""
        s, cfg = self.settings, self.model.cfg
        b, t, _, h, w = low.shape
        size = (h * cfg.scale, w * cfg.scale)
        scheduler = make_scheduler(s.sampler, self.schedule)
        timesteps = sdedit_timesteps(scheduler, s.steps, 1.0, low.device)
        correlation = self.schedule.frame_correlation if s.frame_correlation is None else s.frame_correlation
        shared = frame_noise(seed, 0, 2, (b, 1, 3, *size))
        own = torch.cat([frame_noise(seed, frame_offset + i, 0, (b, 1, 3, *size)) for i in range(t)], 1)
        x = (correlation**0.5 * shared + (1 - correlation) ** 0.5 * own).to(low)
        x = x * scheduler.init_noise_sigma
        low_noise = torch.cat([frame_noise(seed, frame_offset + i, 1, (b, 1, 3, h, w)) for i in range(t)], 1)
        level = torch.full((b,), s.noise_level, dtype=torch.long, device=low.device)
        low_aug = scheduler.add_noise(low, low_noise.to(low), level)

        def denoise(x_t: torch.Tensor, t_batch: torch.Tensor) -> torch.Tensor:
            alpha_bar = scheduler.alphas_cumprod.to(x_t.device)[t_batch[:1]]
            c_in, c_skip, c_out = x0_preconditioning(alpha_bar, cfg.sigma_data)
            out = tiled(
                lambda xt, lo: self.model(xt, lo, t_batch, level, image_only=self.image_only),
                c_in * x_t,
                low_aug,
                cfg.scale,
                s.tile,
                s.overlap,
                s.blend,
                cfg.size_multiple,
            )
            return velocity_from_x0(x_t, c_skip * x_t + c_out * out, alpha_bar)  # the scheduler takes v

        residual = denoise_loop(denoise, x, scheduler, timesteps) / cfg.residual_scale
        return (bicubic_upsample(low, cfg.scale) + residual).clamp(-1, 1)


class StreamingUpsampler(StreamingWindows):
    """push(low [1,n,3,h,w]) -> high-res frames ready so far; flush() -> the rest."""

    state_name = "upsampler"

    def __init__(self, upsampler: Upsampler, seed: int = 0):
        super().__init__(upsampler.settings.chunk, upsampler.temporal_radius)
        self.upsampler, self.seed = upsampler, seed

    def _window(self, window: torch.Tensor, lo: int) -> torch.Tensor:
        return self.upsampler(window, self.seed, frame_offset=lo)


def upsample_video(
    low: torch.Tensor, method: UpsampleMethod, upsampler: Upsampler | None = None, seed: int = 0
) -> torch.Tensor:
    """[B,T,3,h,w] -> upsampled frames by `method` ('none' returns the input)."""
    if method not in METHODS:
        raise ValueError(f"upsampler={method!r}: use one of {METHODS}")
    if method == "none":
        return low
    if method == "bicubic":
        return bicubic_upsample(low, upsampler.scale if upsampler else 4)
    if upsampler is None:
        raise ValueError("upsampler='model' needs a model folder with an upsampler part")
    outs = []
    for clip in low.split(1):
        stream = StreamingUpsampler(upsampler, seed)
        outs.append(torch.cat([stream.push(clip), stream.flush()], 1))
    return torch.cat(outs)


@functools.cache
def note_resize(sizes: tuple[int, ...], mode: str) -> None:
    """Say once per process (not once per segment) that frames are resized to the requested size."""
    logger.info("resizing %dx%d frames to the requested %dx%d (%s)", *sizes, mode)


def output_frames(
    low: torch.Tensor,
    size: tuple[int, int],
    method: UpsampleMethod,
    upsampler: Upsampler | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Base frames [B,T,3,h,w] -> frames at `size` (H,W): upsampled by `method` when size is larger
    than the base, then resized (area down, bicubic up) if it is not exactly 4x. 'none' keeps the base."""
    if method not in METHODS:
        raise ValueError(f"upsampler={method!r}: use one of {METHODS}")
    h, w = low.shape[-2:]
    size = (size[0], size[1])
    if method == "none" or size == (h, w):
        return low
    frames = low if size[0] <= h and size[1] <= w else upsample_video(low, method, upsampler, seed)
    if tuple(frames.shape[-2:]) != size:
        mode = "area" if size[0] <= frames.shape[-2] and size[1] <= frames.shape[-1] else "bicubic"
        note_resize((*frames.shape[-2:], *size), mode)
        b = frames.shape[0]
        frames = F.interpolate(frames.flatten(0, 1), size=size, mode=mode).clamp(-1, 1).unflatten(0, (b, -1))
    return frames


def upsample_segment(
    base: torch.Tensor,
    size: tuple[int, int],
    method: UpsampleMethod,
    upsampler: Upsampler | None,
    stream: StreamingUpsampler | None,
    final: bool,
) -> torch.Tensor:
    """One rollout segment's base frames [1,n,3,h,w] -> the frames ready at `size`: through the
    streaming model upsampler when given (its lag held back until `final`), else by `method`."""
    if stream is None:
        return output_frames(base, size, method, upsampler) if base.numel() else base
    frames = stream.push(base) if base.numel() else torch.empty(0)
    if final:
        frames = torch.cat([f for f in (frames, stream.flush()) if f.numel()], 1)
    return output_frames(frames, size, "bicubic") if frames.numel() else frames  # the model's 4x to size
