"""Original CompVis / Stable Diffusion VAE key names -> diffusers AutoencoderKL key names.

Users often hold an SD VAE as an original-format file (`encoder.down.0.block.0.conv1.weight`,
`mid.attn_1.q.weight` as 1x1 convs); diffusers-format files load as they are.
"""

from __future__ import annotations

import re

import torch

_RULES = [
    (r"^(encoder|decoder)\.norm_out\.", r"\1.conv_norm_out."),
    (r"^encoder\.down\.(\d+)\.block\.(\d+)\.", r"encoder.down_blocks.\1.resnets.\2."),
    (r"^encoder\.down\.(\d+)\.downsample\.conv\.", r"encoder.down_blocks.\1.downsamplers.0.conv."),
    (r"^(encoder|decoder)\.mid\.block_(\d)\.", lambda m: f"{m[1]}.mid_block.resnets.{int(m[2]) - 1}."),
    (r"^(encoder|decoder)\.mid\.attn_1\.norm\.", r"\1.mid_block.attentions.0.group_norm."),
    (r"^(encoder|decoder)\.mid\.attn_1\.q\.", r"\1.mid_block.attentions.0.to_q."),
    (r"^(encoder|decoder)\.mid\.attn_1\.k\.", r"\1.mid_block.attentions.0.to_k."),
    (r"^(encoder|decoder)\.mid\.attn_1\.v\.", r"\1.mid_block.attentions.0.to_v."),
    (r"^(encoder|decoder)\.mid\.attn_1\.proj_out\.", r"\1.mid_block.attentions.0.to_out.0."),
    (r"\.nin_shortcut\.", ".conv_shortcut."),
]


def is_ldm_layout(state: dict[str, torch.Tensor]) -> bool:
    """True when keys use the original CompVis names (encoder.down.N.block.M...)."""
    return any(k.startswith(("encoder.down.", "decoder.up.")) for k in state)


def ldm_to_diffusers(state: dict[str, torch.Tensor], num_levels: int) -> dict[str, torch.Tensor]:
    """Rename original SD VAE keys to diffusers keys; 1x1 attention convs become linears."""
    out = {}
    for key, value in state.items():
        new = key
        # Decoder levels are stored low-res-first in LDM, high-res-first in diffusers.
        m = re.match(r"^decoder\.up\.(\d+)\.(block|upsample)\.(?:(\d+)\.)?(.*)$", key)
        if m:
            level = num_levels - 1 - int(m[1])
            if m[2] == "block":
                new = f"decoder.up_blocks.{level}.resnets.{m[3]}.{m[4]}"
            else:
                new = f"decoder.up_blocks.{level}.upsamplers.0.{m[4] if m[3] is None else m[3] + '.' + m[4]}"
        for pattern, repl in _RULES:
            new = re.sub(pattern, repl, new)
        if ".mid_block.attentions.0.to_" in new and new.endswith("weight") and value.dim() == 4:
            value = value[:, :, 0, 0]
        out[new] = value
    return out


def load_vae_weights(model, path) -> None:
    """Load a diffusers- or original-layout SD VAE .safetensors file into our AutoencoderKL."""
    from drivesim.models.weights import load_state_checked, read_tensors

    state = read_tensors(path)
    # A VAE cut out of a full SD checkpoint keeps its prefix.
    for prefix in ("first_stage_model.", "vae."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    if is_ldm_layout(state):
        state = ldm_to_diffusers(state, len(model.cfg.block_out_channels))
    # Some SD VAE files carry a loss module (LPIPS / discriminator): not part of the model.
    state = {k: v for k, v in state.items() if not k.startswith("loss.")}
    load_state_checked(model, state, str(path))
