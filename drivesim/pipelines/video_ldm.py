"""VideoLDMPipeline: conditions in, latent video out, decoded frames via the autoencoder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch

from conditioners.context import Context
from drivesim.data.conditions import Conditions, as_conditions, tensor_dict
from drivesim.diffusion.guidance import GuidanceScales, GuidedDenoiser
from drivesim.diffusion.samplers import SamplerConfig, sample
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.models.autoencoder import AutoencoderKL
from drivesim.models.model_index import has_part, load_part, part_prefix
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.models.unet import VideoUNet
from drivesim.models.weights import read_config
from drivesim.utils import DEFAULT_MODEL_DIR, autocast, module_device, resolve_device


@dataclass
class VideoLDMOutput:
    latents: torch.Tensor  # [B,T,4,h,w] unscaled (autoencoder) latents
    frames: torch.Tensor | None  # [B,T,3,H,W] in [-1,1], None when decode=False


class VideoLDMPipeline:
    """The key-frame video LDM with its decoder; stateless between calls (thread-safe)."""

    def __init__(
        self,
        unet: VideoUNet | None,
        decoder: TemporalDecoder | AutoencoderKL,
        schedule: ScheduleConfig,
        latent_scale: float,
        versions: dict[str, str] | None = None,
        train_config: dict | None = None,
    ):
        # inference only: no weight needs a gradient (autocast would also cache a bf16 copy of each)
        self.unet = unet.eval().requires_grad_(False) if unet is not None else None
        self.decoder = decoder.eval().requires_grad_(False)
        self.schedule = schedule
        self.latent_scale = latent_scale
        self.versions = versions or {}
        self.train_config = train_config or {}  # the UNet checkpoint's training config (data rates, sizes)

    @classmethod
    def from_pretrained(
        cls, model_dir: str | Path = DEFAULT_MODEL_DIR, unet: str = "unet", temporal_decoder: bool = True
    ) -> VideoLDMPipeline:
        """The pipeline of a model folder (model_index.json, or unet/autoencoder/temporal_decoder
        files): UNet part `unet` (e.g. 'prediction'), the temporal decoder if the folder has one
        and `temporal_decoder`, else the image autoencoder's decoder. On the CPU; see .to()."""
        decoder_part = (
            "temporal_decoder"
            if temporal_decoder and has_part(model_dir, "temporal_decoder")
            else "autoencoder"
        )
        decoder = cast(TemporalDecoder | AutoencoderKL, load_part(model_dir, decoder_part))
        decoder_prefix = part_prefix(model_dir, decoder_part)
        versions = {"decoder": read_config(decoder_prefix).get("model_version", str(decoder_prefix))}
        return cls(None, decoder, ScheduleConfig(), 1.0, versions).with_unet(model_dir, unet)

    def with_unet(self, dir_or_prefix: str | Path, name: str) -> VideoLDMPipeline:
        """A pipeline with another UNet (part `name` of a model folder, e.g. 'interpolation', or a
        checkpoint prefix) sharing this decoder; its version is added under `name`."""
        unet = part_prefix(dir_or_prefix, name)
        meta = read_config(unet)
        model = load_part(unet, "unet", VideoUNet)
        schedule = ScheduleConfig.from_dict(meta.get("train_config", {}).get("schedule", {}))
        version = meta.get("model_version", f"{unet}@step{meta.get('step')}")
        return VideoLDMPipeline(
            model,
            self.decoder,
            schedule,
            float(meta["latent_scale"]),
            {**self.versions, name: version},
            meta.get("train_config", {}),
        )

    def data_config(self, name: str) -> dict:
        """The UNet's training data entry `name` ('latents', 'fast_latents': fps, size), {} if absent."""
        return self.train_config.get(name) or {}

    def output_size(self, latent_size: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of the decoded frames for a latent size (h, w)."""
        f = self.decoder.cfg.downsample_factor
        return latent_size[0] * f, latent_size[1] * f

    def frame_correlation(self, requested: float | None = None) -> float:
        """The starting-noise correlation a call uses: `requested`, else the training prior."""
        return self.schedule.frame_correlation if requested is None else requested

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk: int = 16) -> torch.Tensor:
        """[B,T,4,h,w] unscaled latents (any device) -> [B,T,3,8h,8w] in [-1,1] on self.device."""
        latents = latents.to(self.device)
        if isinstance(self.decoder, TemporalDecoder):
            return self.decoder.decode_chunked(latents, chunk=chunk).clamp(-1, 1)
        b = latents.shape[0]
        frames = [self.decoder.decode(z) for z in latents.flatten(0, 1).split(chunk)]
        return torch.cat(frames).unflatten(0, (b, -1)).clamp(-1, 1)

    @property
    def device(self) -> torch.device:
        """Where the models and every tensor a call creates live."""
        return module_device(self.decoder)

    def to(self, device: str | torch.device) -> VideoLDMPipeline:
        """Move the UNet and the decoder to `device` ('cpu', 'cuda', ...); returns self."""
        device = resolve_device(device)
        if self.unet is not None:
            self.unet.to(device)
        self.decoder.to(device)
        return self

    @torch.no_grad()
    def __call__(
        self,
        cond: Conditions,
        num_frames: int,
        *,
        latent_size: tuple[int, int] = (16, 32),
        sampler: str = "dpmpp",
        steps: int = 25,
        guidance: GuidanceScales | None = None,
        seed: int = 0,
        decode: bool = True,
        progress: bool = False,
        context_latents: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        stage: int = 0,
        frame_correlation: float | None = None,
        start_latents: torch.Tensor | None = None,
        strength: float = 1.0,
    ) -> VideoLDMOutput:
        """Batched conditions (B clips) -> B videos of num_frames frames, latents [B,T,4,h,w].

        Prediction / interpolation models take known frames: context_latents [B,T,4,h,w]
        (unscaled, as returned in .latents) and context_mask [B,T] (1 = known); known frames
        are returned exactly as given. stage: 0 prediction, 1 / 2 interpolation step.
        frame_correlation: share of the starting noise common to all frames (SamplerConfig); None =
        the noise prior this UNet trained with.
        start_latents [B,T,4,h,w] (unscaled) + strength < 1: start from that guess, noised (SDEdit).
        Inputs may be on any device; outputs are on self.device (bf16 autocast on CUDA)."""
        guidance = guidance or GuidanceScales()
        unet = self.unet
        if unet is None:
            raise ValueError("this pipeline has no UNet; load one with from_pretrained or with_unet")
        device = self.device
        cond = as_conditions({k: v.to(device) for k, v in tensor_dict(cond).items()})
        b = cond["time_of_day"].shape[0]
        shape = (b, num_frames, unet.cfg.in_channels, *latent_size)
        image_only = num_frames == 1
        context = None
        if context_mask is not None:
            if context_latents is None or context_latents.shape != shape or context_mask.shape != shape[:2]:
                raise ValueError(
                    f"context_latents must be {list(shape)} and context_mask {list(shape[:2])}; "
                    f"got {None if context_latents is None else list(context_latents.shape)} "
                    f"and {list(context_mask.shape)}"
                )
            context_latents, context_mask = context_latents.to(device), context_mask.to(device)
            context = Context(
                context_latents * self.latent_scale,
                context_mask.float(),
                torch.full((b,), stage, dtype=torch.long, device=device),
            )

        def model(x, t, c, context=None):
            with autocast(device):
                return unet(x, t, c, image_only, context).float()

        def prepare(c: Conditions) -> Conditions:
            return unet.prepare_conditions(c, num_frames, latent_size)

        prepared = prepare(cond) if guidance.is_identity else cond

        def unguided(x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
            return model(x, timesteps, prepared, context)

        denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
            unguided if guidance.is_identity else GuidedDenoiser(model, cond, guidance, context, prepare)
        )

        generator = torch.Generator(device=device).manual_seed(seed)
        known = (context.latents, context.mask) if context is not None else None
        start = None
        if strength < 1:
            if start_latents is None or start_latents.shape != shape:
                raise ValueError(f"strength={strength} < 1 needs start_latents of shape {list(shape)}")
            start = start_latents.to(device) * self.latent_scale
        plan = SamplerConfig(sampler, steps, strength, frame_correlation)
        scaled = sample(
            denoise, shape, plan, self.schedule, generator, known=known, start=start, progress=progress
        )
        latents = scaled / self.latent_scale
        if context is not None and context_mask is not None and context_latents is not None:
            known = context_mask.bool()  # known frames exactly as given
            latents[known] = context_latents[known]
        return VideoLDMOutput(latents, self.decode(latents) if decode else None)
