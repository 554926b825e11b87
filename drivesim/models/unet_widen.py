"""Grow a trained VideoUNet to more latent channels and more box classes without changing what
it computes (the UNet side of models/autoencoder_widen.py).

A widened autoencoder needs a key-frame model with as many input and output channels, and the
class-aware box condition one layout channel and one embedding row per class. Retraining the
conditioning paths and temporal layers from scratch costs far more CPU steps than reusing them:
old latent channels keep their weights and new ones enter and leave through zero weights; every
class's layout channel and embedding start as copies of the car's (the only class a 1-class
model knew), so a scene of cars is denoised exactly as before.
"""

from __future__ import annotations

import dataclasses

import torch

from drivesim.models.autoencoder_widen import conv_bias
from drivesim.models.unet import UNetConfig, VideoUNet

WIDENED_FIELDS = ("in_channels", "out_channels", "box_classes")


def _input_index(old: UNetConfig, new: UNetConfig) -> torch.Tensor:
    """For each new conv_in channel, the old channel whose weights it starts from (-1: zeros)."""
    latents = [i if i < old.in_channels else -1 for i in range(new.in_channels)]
    if not new.box_layout:
        return torch.tensor(latents)
    car = old.in_channels  # layout: one coverage channel per class, then nearness and core
    classes = [car + (k if k < old.box_classes else 0) for k in range(new.box_classes)]
    tail = [car + old.box_classes, car + old.box_classes + 1]
    return torch.tensor(latents + classes + tail)


def _copy_channels(weight: torch.Tensor, source: torch.Tensor, index: torch.Tensor, dim: int) -> None:
    """weight.select(dim, j) = source.select(dim, index[j]) where index[j] >= 0, else 0."""
    weight.zero_()
    for j, i in enumerate(index.tolist()):
        if i >= 0:
            weight.select(dim, j).copy_(source.select(dim, i))


@torch.no_grad()
def widen_unet(model: VideoUNet, cfg: UNetConfig) -> VideoUNet:
    """VideoUNet -> one with cfg's (larger) in/out channels and box classes, same outputs on old inputs."""
    old = model.cfg
    if dataclasses.replace(cfg, **{f: getattr(old, f) for f in WIDENED_FIELDS}) != old:
        raise ValueError(
            f"widen: only {', '.join(WIDENED_FIELDS)} may differ from the checkpoint's unet config"
        )
    for f in WIDENED_FIELDS:
        if getattr(cfg, f) < getattr(old, f):
            raise ValueError(
                f"widen: unet.{f}={getattr(cfg, f)} is smaller than the checkpoint's {getattr(old, f)}"
            )
    wide = VideoUNet(cfg)
    own = wide.state_dict()
    own.update({k: v for k, v in model.state_dict().items() if own[k].shape == v.shape})
    wide.load_state_dict(own)

    conv_in = wide.unet.conv_in
    _copy_channels(conv_in.weight, model.unet.conv_in.weight, _input_index(old, cfg), dim=1)
    conv_out = wide.unet.conv_out
    keep = torch.tensor([i if i < old.out_channels else -1 for i in range(cfg.out_channels)])
    _copy_channels(conv_out.weight, model.unet.conv_out.weight, keep, dim=0)
    _copy_channels(conv_bias(conv_out), conv_bias(model.unet.conv_out), keep, dim=0)
    classes = torch.tensor([k if k < old.box_classes else 0 for k in range(cfg.box_classes)])
    _copy_channels(wide.boxes.class_embedding.weight, model.boxes.class_embedding.weight, classes, dim=0)
    if old.context_channels:  # context input: latents, then the known-frame mask
        latents = [i if i < old.in_channels else -1 for i in range(cfg.in_channels)]
        index = torch.tensor([*latents, old.in_channels])
        ctx = wide.temporal_context.conv_in
        _copy_channels(ctx.weight, model.temporal_context.conv_in.weight, index, dim=1)
    return wide
