"""Temporal autoencoder decoder (paper section 3.1.1): the image decoder + temporal layers.

A one-conv 3D residual block (3x1x1) follows the mid block and every up block (before its
upsampler), and a windowed temporal attention follows the mid block, all zero-initialised
and alpha-blended, so at init the decoder equals the image decoder frame by frame. Spatial
keys are the image decoder's keys (`decoder.*`, `post_quant_conv.*`); temporal ones start
with `temporal`. The temporal receptive field is bounded, so `decode_chunked` with an
overlap of that radius equals a full decode while memory stays flat in video length.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from drivesim.models.autoencoder import AutoencoderConfig, AutoencoderKL
from drivesim.models.layer_stream import Layer, LayerStream
from drivesim.models.temporal_layers import TemporalAttention, TemporalConvBlock

ATTENTION_WINDOW = 2  # frames on each side


class TemporalDecoder(nn.Module):
    """z [B,T,4,h,w] unscaled latents -> video [B,T,3,8h,8w]."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        image = AutoencoderKL(cfg)
        self.decoder, self.post_quant_conv = image.decoder, image.post_quant_conv
        chans = list(reversed(cfg.block_out_channels))
        groups = cfg.norm_num_groups
        self.temporal_mid = TemporalConvBlock(chans[0], groups, convs=1)
        self.temporal_mid_attn = TemporalAttention(chans[0], heads=1, window=ATTENTION_WINDOW)
        self.temporal_up = nn.ModuleList(TemporalConvBlock(c, groups, convs=1) for c in chans)

    @classmethod
    def from_image_autoencoder(cls, ae: AutoencoderKL) -> TemporalDecoder:
        """Copy the image decoder's weights; temporal layers start at identity."""
        model = cls(ae.cfg)
        model.decoder.load_state_dict(ae.decoder.state_dict())
        model.post_quant_conv.load_state_dict(ae.post_quant_conv.state_dict())
        return model

    @property
    def receptive_radius(self) -> int:
        """Frames on each side that can influence one output frame."""
        layers = [self.temporal_mid, self.temporal_mid_attn, *self.temporal_up]
        return int(sum(layer.receptive_radius for layer in layers))

    def layers(self, image_only: bool = False) -> list[Layer]:
        """The decoder as per-frame and temporal layers on frames [t,c,h,w] (LayerStream's form)."""
        dec = self.decoder

        def temporal(module: TemporalConvBlock) -> Layer:
            return Layer(lambda h, first: module(h, h.shape[0], image_only), module.receptive_radius)

        def attention(h: torch.Tensor, first: int) -> torch.Tensor:
            return self.temporal_mid_attn(h, h.shape[0], image_only, frame_offset=first)

        steps = [
            Layer(lambda z, first: dec.mid_block(dec.conv_in(self.post_quant_conv(z)))),
            temporal(self.temporal_mid),
            Layer(attention, int(self.temporal_mid_attn.receptive_radius)),  # windowed: finite
        ]
        for block, module in zip(dec.up_blocks, self.temporal_up):
            resnets = list(cast(nn.ModuleList, block.resnets))
            ups = list(cast("nn.ModuleList | None", block.upsamplers) or [])
            steps += [
                Layer(lambda h, first, rs=resnets: _chain(h, rs, temb=None)),
                temporal(cast(TemporalConvBlock, module)),
            ]
            if ups:
                steps.append(Layer(lambda h, first, us=ups: _chain(h, us)))
        steps.append(Layer(lambda h, first: dec.conv_out(dec.conv_act(dec.conv_norm_out(h)))))
        return steps

    def forward(self, z: torch.Tensor, image_only: bool = False, frame_offset: int = 0) -> torch.Tensor:
        """[B,T,4,h,w] -> [B,T,3,8h,8w]; frame_offset = index of z's first frame in the video."""
        layers = self.layers(image_only)
        videos = []
        for h in z:  # the temporal layers take one video's frames [t,c,h,w]
            for layer in layers:
                h = layer.fn(h, frame_offset)
            videos.append(h)
        return torch.stack(videos)

    @torch.no_grad()
    def decode_chunked(
        self, z: torch.Tensor, chunk: int = 16, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B,T,4,h,w] -> [B,T,3,8h,8w] layer by layer (LayerStream), `chunk` frames at a time:
        equal to a full decode, each frame decoded once, memory flat in video length."""
        b, t, _, h, w = z.shape
        f = self.cfg.downsample_factor
        if out is None:
            out = torch.empty(b, t, self.cfg.in_channels, h * f, w * f, dtype=z.dtype)
        for i in range(b):
            stream = LayerStream(self.layers(), chunk)
            for start in range(0, t + chunk, chunk):  # one more round: the flush
                part = stream.push(z[i : i + 1, start : start + chunk]) if start < t else stream.flush()
                if part.numel():
                    out[i, stream.emitted - part.shape[1] : stream.emitted] = part[0]
        return out


def _chain(h: torch.Tensor, modules: list[nn.Module], **kwargs) -> torch.Tensor:
    for module in modules:
        h = module(h, **kwargs)
    return h


def load_temporal_decoder(prefix) -> TemporalDecoder:
    """A TemporalDecoder checkpoint (safetensors + JSON config with an 'autoencoder' entry)."""
    from drivesim.models.weights import load_checkpoint

    return load_checkpoint(prefix, lambda c: TemporalDecoder(AutoencoderConfig.from_dict(c["autoencoder"])))


@torch.no_grad()
def reconstruct_frames(ae: AutoencoderKL, td: TemporalDecoder | None, frames: torch.Tensor) -> torch.Tensor:
    """frames [T,3,H,W] in [-1,1] -> through the encoder and the temporal decoder (else the image
    decoder), clamped to [-1,1]: the blur a generated video gets from the decoder."""
    z = ae.encode(frames).mode()
    return (td.decode_chunked(z[None])[0] if td is not None else ae.decode(z)).clamp(-1, 1)
