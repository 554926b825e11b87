"""Video UNet: an SD-layout image UNet (diffusers blocks) with temporal layers after each block.

The spatial network is a diffusers `UNet2DConditionModel` held as `self.unet`, so its
state-dict keys are the Stable Diffusion (diffusers) UNet keys under `unet.`. Time of day
and crowdedness are embeddings added to the timestep embedding, which every resnet applies
as scale-shift after its GroupNorm (AdaGN: an embedding added before a per-channel norm is
removed by it), and two cross-attention tokens. Boxes are per-frame token sets read by the
spatial cross-attention and a rasterised layout concatenated to the input (the spatial
path: at coarse levels a car is a pixel or less). Temporal layers (names start with `temporal`)
follow every spatial resnet (3D-conv block) and every spatial transformer (temporal
attention). `VideoUNet.from_image_unet` inflates a trained image model.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, cast

import torch
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from einops import rearrange, repeat
from torch import nn
from torch.utils.checkpoint import checkpoint

from conditioners import BoxEncoder, SceneEmbedding
from conditioners.context import Context, ContextEncoder
from conditioners.layout import layout_channels, rasterize_boxes
from drivesim.data.conditions import Conditions
from drivesim.models.temporal_layers import TemporalAttention, TemporalConvBlock


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 4
    out_channels: int = 4
    block_out_channels: tuple[int, ...] = (32, 64, 128)
    # Per resolution level. The finest level has no transformer in the tiny profile: even without
    # self-attention (only_cross_attention) it doubles a CPU training step (0.97 vs 0.52 s for 16
    # image latents); boxes reach that level through the rasterised layout instead.
    cross_attention: tuple[bool, ...] = (False, True, True)
    only_cross_attention: bool | tuple[bool, ...] = False  # (per level) self-attn -> 2nd cross-attn
    layers_per_block: int = 1
    cross_attention_dim: int = 128
    attention_head_dim: int = 32
    norm_num_groups: int = 32
    temporal_heads: int = 4
    box_fourier_freqs: int = 8
    context_channels: int = 0  # >0: prediction/interpolation model (context features per level)
    context_hidden: int = 64
    resnet_time_scale_shift: str = "scale_shift"  # AdaGN; "default" adds the embedding before the norm
    scene_tokens: bool = True  # time of day + crowdedness also as cross-attention tokens
    box_layout: bool = True  # rasterised box layout concatenated to the input
    # box categories told apart by a layout channel each and a class embedding in the box tokens
    # (data.conditions.BOX_CLASSES[:n], car first); 1 = every box is a car (the shipped models)
    box_classes: int = 1

    @classmethod
    def tiny(cls) -> UNetConfig:
        """CPU profile for 16x32 latents."""
        return cls()

    @classmethod
    def paper(cls) -> UNetConfig:
        """Paper-sized (SD 1.x channel widths) for 16x32 latents of 128x256 frames."""
        return cls(
            block_out_channels=(320, 640, 1280, 1280),
            cross_attention=(True, True, True, False),
            layers_per_block=2,
            cross_attention_dim=1024,
            attention_head_dim=64,
            temporal_heads=8,
        )

    def __post_init__(self):
        if isinstance(self.only_cross_attention, bool):  # one flag per level, so configs compare equal
            object.__setattr__(
                self, "only_cross_attention", (self.only_cross_attention,) * len(self.block_out_channels)
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def input_channels(self) -> int:
        """Channels of the spatial UNet's conv_in: latents (+ box layout)."""
        return self.in_channels + (layout_channels(self.box_classes) if self.box_layout else 0)


# Fields written by checkpoints from before these keys existed take these values.
# keys prepare_conditions adds to a condition dict
PREPARED_TOKENS: Final = "prepared_tokens"  # Final: literal keys of the Conditions TypedDict
PREPARED_LAYOUT: Final = "prepared_layout"
LEGACY_UNET = {"resnet_time_scale_shift": "default", "scene_tokens": False, "box_layout": False}


def unet_config(values: dict) -> UNetConfig:
    """UNetConfig from a JSON/YAML mapping (lists become tuples; keys it lacks take their values
    from before they existed)."""
    values = {**LEGACY_UNET, **values}
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return UNetConfig(**kwargs)


def build_image_unet(cfg: UNetConfig) -> UNet2DConditionModel:
    """The spatial SD-layout UNet; class embeddings arrive as ready vectors ('identity')."""
    only_cross = cfg.only_cross_attention
    assert not isinstance(only_cross, bool)  # __post_init__ made it one flag per level
    if not len(cfg.cross_attention) == len(only_cross) == len(cfg.block_out_channels):
        raise ValueError(
            f"cross_attention {cfg.cross_attention} and only_cross_attention {only_cross} "
            f"need one entry per level of block_out_channels {cfg.block_out_channels}"
        )
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in cfg.cross_attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.cross_attention))
    return UNet2DConditionModel(
        in_channels=cfg.input_channels,
        out_channels=cfg.out_channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        cross_attention_dim=cfg.cross_attention_dim,
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=cfg.norm_num_groups,
        class_embed_type="identity",
        resnet_time_scale_shift=cfg.resnet_time_scale_shift,
        only_cross_attention=cast("tuple[bool]", list(only_cross)),  # stubs: one-flag tuple; takes a list
    )


class TemporalMixer(nn.Module):
    """The temporal layers that follow one spatial resnet (+ its transformer, if any)."""

    def __init__(self, channels: int, with_attention: bool, cfg: UNetConfig):
        super().__init__()
        self.conv = TemporalConvBlock(channels, cfg.norm_num_groups, extra_channels=cfg.context_channels)
        self.attn = TemporalAttention(channels, cfg.temporal_heads) if with_attention else None


class VideoUNet(nn.Module):
    """x [B,T,C,h,w], timesteps [B], cond dict -> prediction [B,T,C,h,w]."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        self.unet = build_image_unet(cfg)
        time_dim = self.unet.time_embedding.linear_2.out_features
        self.scene = SceneEmbedding(time_dim)
        self.boxes = BoxEncoder(cfg.cross_attention_dim, cfg.box_classes, num_freqs=cfg.box_fourier_freqs)
        self.scene_tokens = SceneEmbedding(cfg.cross_attention_dim) if cfg.scene_tokens else None
        self.gradient_checkpointing = False
        chans = cfg.block_out_channels
        self.temporal_down = nn.ModuleList(
            nn.ModuleList(TemporalMixer(chans[i], has_attn, cfg) for _ in range(cfg.layers_per_block))
            for i, has_attn in enumerate(cfg.cross_attention)
        )
        # SD mid block order: resnet 0 -> attention -> resnet 1.
        self.temporal_mid = nn.ModuleList(
            [
                TemporalMixer(chans[-1], True, cfg),  # resnet 0 + attn
                TemporalMixer(chans[-1], False, cfg),
            ]
        )  # resnet 1
        self.temporal_up = nn.ModuleList(
            nn.ModuleList(
                TemporalMixer(chans[-1 - i], has_attn, cfg) for _ in range(cfg.layers_per_block + 1)
            )
            for i, has_attn in enumerate(reversed(cfg.cross_attention))
        )
        if cfg.context_channels:
            self.temporal_context = ContextEncoder(
                cfg.in_channels, len(chans), cfg.context_channels, cfg.context_hidden
            )

    @classmethod
    def from_image_unet(cls, image_model: VideoUNet) -> VideoUNet:
        """Inflate: copy every spatial weight of a trained image model; temporal layers fresh."""
        video = cls(image_model.cfg)
        missing, unexpected = video.load_state_dict(copy.deepcopy(image_model.state_dict()), strict=False)
        if unexpected or any(not k.startswith("temporal") for k in missing):
            raise ValueError(f"image model does not match: missing {missing}, unexpected {unexpected}")
        return video

    @classmethod
    def with_context(cls, video_model: VideoUNet, context_channels: int = 32) -> VideoUNet:
        """Prediction/interpolation model from a trained video model: same weights, a fresh context
        encoder, and temporal convs whose new context input channels start at zero (so at init
        it predicts exactly as the video model)."""
        cfg = dataclasses.replace(video_model.cfg, context_channels=context_channels)
        model = cls(cfg)
        own, old = model.state_dict(), video_model.state_dict()
        for key, value in old.items():
            if key not in own:
                raise ValueError(f"video model has a key the context model lacks: {key}")
            if own[key].shape != value.shape:  # temporal conv1 [out, in + context, k, 1, 1]
                value = torch.cat([value, own[key][:, value.shape[1] :]], dim=1)
            own[key] = value
        model.load_state_dict(own)
        return model

    def prepare_conditions(
        self, cond: Conditions, num_frames: int, latent_size: tuple[int, int]
    ) -> Conditions:
        """cond + its box tokens [(B T),N+1(+2),Dc] and layout [(B T),K,h,w], which depend on cond
        alone: a sampling loop computes them once instead of at every step (the layout raster
        cost a quarter of a key-frame step)."""
        tokens, layout = self._box_conditions(cond, num_frames, latent_size)
        out = cond.copy()
        out[PREPARED_TOKENS] = tokens
        if layout is not None:
            out[PREPARED_LAYOUT] = layout
        return out

    def _box_conditions(
        self, cond: Conditions, num_frames: int, latent_size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if PREPARED_TOKENS in cond:
            return cond[PREPARED_TOKENS], cond.get(PREPARED_LAYOUT)
        boxes, box_class, box_mask = cond["boxes"], cond["box_class"], cond["box_mask"]
        if boxes.dim() == 3:  # image batches: [B,N,4] -> [B,1,N,4]
            boxes, box_class, box_mask = boxes[:, None], box_class[:, None], box_mask[:, None]
        if boxes.shape[1] == 1 and num_frames > 1:  # one box set for the whole clip
            boxes, box_class, box_mask = (
                repeat(v, "b 1 ... -> b t ...", t=num_frames) for v in (boxes, box_class, box_mask)
            )
        box_class = box_class.clamp(max=self.cfg.box_classes - 1)  # a 1-class model: every box a car
        tokens = self.boxes(boxes, box_class, box_mask)
        if self.scene_tokens is not None:
            scene = self.scene_tokens.tokens(cond["time_of_day"], cond["crowdedness"]).to(tokens.dtype)
            tokens = torch.cat([tokens, repeat(scene, "b n d -> (b t) n d", t=num_frames)], dim=1)
        layout = None
        if self.cfg.box_layout:
            layout = rasterize_boxes(boxes, box_class, box_mask, latent_size, self.cfg.box_classes)
        return tokens, layout

    def _embed(
        self,
        timesteps: torch.Tensor,
        cond: Conditions,
        num_frames: int,
        latent_size: tuple[int, int],
    ):
        """-> time+scene embedding [(B T),D], tokens [(B T),N+1(+2),Dc] (boxes, scene) and the box
        layout [(B T),K,h,w] (None without the spatial path)."""
        t_emb = self.unet.time_proj(timesteps).to(self.unet.dtype)
        emb = self.unet.time_embedding(t_emb) + self.scene(cond["time_of_day"], cond["crowdedness"])
        emb = repeat(emb, "b d -> (b t) d", t=num_frames)  # one noise level per clip
        tokens, layout = self._box_conditions(cond, num_frames, latent_size)
        return emb, tokens, None if layout is None else layout.to(emb.dtype)

    def _step(self, fn, *args):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def _layer(
        self,
        h,
        emb,
        tokens,
        resnet,
        attn,
        mixer: TemporalMixer,
        t: int,
        image_only: bool,
        extra: torch.Tensor | None,
    ):
        def run(h, emb, tokens):
            h = mixer.conv(resnet(h, emb), t, image_only, extra)
            if attn is not None:
                h = attn(h, encoder_hidden_states=tokens, return_dict=False)[0]
                assert mixer.attn is not None  # a mixer has attention where its block has
                h = mixer.attn(h, t, image_only)
            return h

        return self._step(run, h, emb, tokens)

    def _context_features(self, x: torch.Tensor, context: Context | None) -> list:
        """Per-level context features (None entries for a plain video model)."""
        levels = len(self.cfg.block_out_channels)
        if not self.cfg.context_channels:
            if context is not None and bool(context.mask.any()):
                raise ValueError(
                    "this model has no context input (context_channels=0); "
                    "use a prediction/interpolation checkpoint for context frames"
                )
            return [None] * levels
        context = context if context is not None else Context.empty(x)
        return self.temporal_context(context.latents, context.mask, context.stage)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        cond: Conditions,
        image_only: bool = False,
        context: Context | None = None,
    ) -> torch.Tensor:
        """x [B,T,C,h,w], timesteps [B] (one level per clip), context frames (optional)
        -> [B,T,C_out,h,w]."""
        b, t = x.shape[:2]
        unet = self.unet
        emb, tokens, layout = self._embed(timesteps, cond, t, (x.shape[-2], x.shape[-1]))
        ctx = self._context_features(x, None if image_only else context)
        h = rearrange(x, "b t c h w -> (b t) c h w")
        if layout is not None:
            h = torch.cat([h, layout], dim=1)
        h = unet.conv_in(h)
        skips = [h]
        for level, (block, mixers) in enumerate(zip(unet.down_blocks, self.temporal_down)):
            resnets = cast(nn.ModuleList, block.resnets)
            attns = getattr(block, "attentions", [None] * len(resnets))
            for resnet, attn, mixer in zip(resnets, attns, cast("Iterable[TemporalMixer]", mixers)):
                h = self._layer(h, emb, tokens, resnet, attn, mixer, t, image_only, ctx[level])
                skips.append(h)
            for down in cast("nn.ModuleList | None", block.downsamplers) or []:
                h = down(h)
                skips.append(h)
        mid, mid_mixers = unet.mid_block, cast("Sequence[TemporalMixer]", self.temporal_mid)
        h = self._layer(
            h, emb, tokens, mid.resnets[0], mid.attentions[0], mid_mixers[0], t, image_only, ctx[-1]
        )
        h = self._layer(h, emb, tokens, mid.resnets[1], None, mid_mixers[1], t, image_only, ctx[-1])
        for i, (block, mixers) in enumerate(zip(unet.up_blocks, self.temporal_up)):
            resnets = cast(nn.ModuleList, block.resnets)
            attns = getattr(block, "attentions", [None] * len(resnets))
            for resnet, attn, mixer in zip(resnets, attns, cast("Iterable[TemporalMixer]", mixers)):
                h = torch.cat([h, skips.pop()], dim=1)
                h = self._layer(h, emb, tokens, resnet, attn, mixer, t, image_only, ctx[-1 - i])
            for up in cast("nn.ModuleList | None", block.upsamplers) or []:
                h = up(h, skips[-1].shape[-2:] if skips else None)
        assert unet.conv_norm_out is not None and unet.conv_act is not None  # norm_num_groups is set
        h = unet.conv_out(unet.conv_act(unet.conv_norm_out(h)))
        return rearrange(h, "(b t) c h w -> b t c h w", b=b)


def load_unet(prefix) -> VideoUNet:
    """A VideoUNet checkpoint (safetensors + JSON config with a 'unet' entry)."""
    from drivesim.models.weights import load_checkpoint

    return load_checkpoint(prefix, lambda c: VideoUNet(unet_config(c["unet"])))
