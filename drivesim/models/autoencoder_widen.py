"""Widen a trained autoencoder's latent to more channels without changing what it computes.

A stronger decoder needs more information per latent pixel, and retraining from scratch costs
far more CPU steps than growing a trained model (Net2Net's function-preserving idea): the old
channels keep their weights, each new mean channel starts as a random feature of the encoder's
last layer, each new log-variance channel starts at a low constant (posterior std 0.05), and the
decoder's first convolution reads the new channels through zero weights. So the widened model
decodes every input exactly as before, and training teaches it to use the new channels.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from drivesim.models.autoencoder import AutoencoderKL


def conv_bias(conv: nn.Conv2d) -> torch.Tensor:
    """A conv's bias (these convs all have one)."""
    assert conv.bias is not None
    return conv.bias


def _moments_index(old: int, new: int) -> torch.Tensor:
    """Where old moment channel i (mean 0..old-1, log-variance old..2old-1) sits in the new layout."""
    i = torch.arange(2 * old)
    return torch.where(i < old, i, i - old + new)


@torch.no_grad()
def widen_latent(ae: AutoencoderKL, channels: int, generator: torch.Generator | None = None) -> AutoencoderKL:
    """[B,3,H,W] -> [B,c,h,w] autoencoder -> the same map through [B,channels,h,w] latents."""
    old = ae.cfg.latent_channels
    if channels < old:
        raise ValueError(f"widen_latent={channels}: the autoencoder already has {old} latent channels")
    wide = AutoencoderKL(dataclasses.replace(ae.cfg, latent_channels=channels))
    state = {k: v for k, v in ae.state_dict().items() if not k.startswith(_RESHAPED)}
    wide.load_state_dict(state, strict=False)
    idx = _moments_index(old, channels)
    new_mean = torch.arange(old, channels)
    new_logvar = new_mean + channels

    conv = wide.encoder.conv_out
    w = ae.encoder.conv_out.weight
    conv.weight[idx], conv_bias(conv)[idx] = w, conv_bias(ae.encoder.conv_out)
    scale = w[:old].std()  # new features on the scale of the old means
    conv.weight[new_mean] = torch.randn(conv.weight[new_mean].shape, generator=generator) * scale
    conv_bias(conv)[new_mean] = 0
    conv.weight[new_logvar] = 0
    conv_bias(conv)[new_logvar] = NEW_LOGVAR

    q = wide.quant_conv
    q.weight.zero_()
    conv_bias(q).zero_()
    q.weight[idx[:, None], idx[None, :]] = ae.quant_conv.weight
    conv_bias(q)[idx] = conv_bias(ae.quant_conv)
    q.weight[new_mean, new_mean] = 1
    q.weight[new_logvar, new_logvar] = 1

    p = wide.post_quant_conv
    p.weight.zero_()
    conv_bias(p).zero_()
    p.weight[:old, :old] = ae.post_quant_conv.weight
    conv_bias(p)[:old] = conv_bias(ae.post_quant_conv)
    p.weight[new_mean, new_mean] = 1

    d = wide.decoder.conv_in
    d.weight.zero_()
    d.weight[:, :old] = ae.decoder.conv_in.weight
    conv_bias(d).copy_(conv_bias(ae.decoder.conv_in))
    return wide


NEW_LOGVAR = -6.0  # exp(-3) = 0.05: the new channels start nearly noise-free
_RESHAPED = ("encoder.conv_out.", "quant_conv.", "post_quant_conv.", "decoder.conv_in.")
