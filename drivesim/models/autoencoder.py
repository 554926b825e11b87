"""KL autoencoder (f=8, 4 latent channels) in the Stable Diffusion VAE layout.

Built from diffusers' own VAE `Encoder`/`Decoder`, so the state-dict keys and shapes are
exactly those of diffusers `AutoencoderKL` for the same config; original CompVis/SD key
names are converted on load (`drivesim.models.autoencoder_keys`). The latent scale factor
lives in the config and is saved with every checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from diffusers.models.autoencoders.vae import Decoder, DiagonalGaussianDistribution, Encoder
from torch import nn


@dataclass(frozen=True)
class AutoencoderConfig:
    in_channels: int = 3
    latent_channels: int = 4
    block_out_channels: tuple[int, ...] = (32, 64, 128, 128)  # 4 levels -> f = 8
    layers_per_block: int = 1
    norm_num_groups: int = 32
    scaling_factor: float = 1.0  # multiply latents by this before diffusion; set after training
    mid_block_add_attention: bool = True

    @classmethod
    def tiny(cls) -> AutoencoderConfig:
        """CPU profile (3.9 M parameters: encoder 1.5 M, decoder 2.4 M)."""
        return cls()

    @classmethod
    def paper(cls) -> AutoencoderConfig:
        """The Stable Diffusion 1.x / 2.x VAE (83.7 M parameters)."""
        return cls(block_out_channels=(128, 256, 512, 512), layers_per_block=2, scaling_factor=0.18215)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> AutoencoderConfig:
        """From JSON (lists -> tuples); unknown keys raise TypeError naming them."""
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**kwargs)


class AutoencoderKL(nn.Module):
    """x [B,3,H,W] in [-1,1] <-> z [B,4,H/8,W/8] (unscaled latents)."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        n = len(cfg.block_out_channels)
        self.encoder = Encoder(
            in_channels=cfg.in_channels,
            out_channels=cfg.latent_channels,
            down_block_types=("DownEncoderBlock2D",) * n,
            block_out_channels=cfg.block_out_channels,
            layers_per_block=cfg.layers_per_block,
            norm_num_groups=cfg.norm_num_groups,
            double_z=True,
            mid_block_add_attention=cfg.mid_block_add_attention,
        )
        self.decoder = Decoder(
            in_channels=cfg.latent_channels,
            out_channels=cfg.in_channels,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=cfg.block_out_channels,
            layers_per_block=cfg.layers_per_block,
            norm_num_groups=cfg.norm_num_groups,
            mid_block_add_attention=cfg.mid_block_add_attention,
        )
        self.quant_conv = nn.Conv2d(2 * cfg.latent_channels, 2 * cfg.latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(cfg.latent_channels, cfg.latent_channels, 1)

    def encode(self, x: torch.Tensor) -> DiagonalGaussianDistribution:
        """[B,3,H,W] -> posterior over [B,4,H/8,W/8] (.mean, .sample(generator), .kl())."""
        return DiagonalGaussianDistribution(self.quant_conv(self.encoder(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[B,4,h,w] unscaled latents -> [B,3,8h,8w]."""
        return self.decoder(self.post_quant_conv(z))

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, noise: torch.Tensor | None = None
    ):
        """[B,3,H,W] -> (reconstruction [B,3,H,W], posterior); the latent sample uses `noise`
        [B,4,H/8,W/8] if given, else draws it with `generator`."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if noise is None else posterior.mean + posterior.std * noise
        return self.decode(z), posterior


def load_autoencoder(prefix) -> AutoencoderKL:
    """An AutoencoderKL checkpoint (safetensors + JSON config with an 'autoencoder' entry)."""
    from drivesim.models.weights import load_checkpoint

    return load_checkpoint(prefix, lambda c: AutoencoderKL(AutoencoderConfig.from_dict(c["autoencoder"])))
