"""`drivesim bench decode`: memory-bounded video decoding vs diffusers' SVD temporal decoder.

Ours: TemporalDecoder.decode_chunked (layer by layer, 16 frames at a time, each frame decoded
once, equal to a full decode). Peer: diffusers AutoencoderKLTemporalDecoder with the same channel widths,
decoded in 16-frame chunks the way the SVD pipeline does (no overlap, so chunk borders see
zero padding instead of their neighbours). Both also decode the whole clip at once for
short clips, to show how memory grows without chunking. Each run is a fresh process.
"""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, cast

import torch

from drivesim.bench.memory import peak_rss_kib, reset_peak_rss, run_isolated

if TYPE_CHECKING:
    from diffusers.models.autoencoders.autoencoder_kl_temporal_decoder import AutoencoderKLTemporalDecoder
    from diffusers.models.autoencoders.vae import DecoderOutput


def _ours():
    from drivesim.models.autoencoder import AutoencoderConfig
    from drivesim.models.temporal_decoder import TemporalDecoder

    return TemporalDecoder(AutoencoderConfig.tiny()).eval()


def _svd():
    from diffusers.models.autoencoders.autoencoder_kl_temporal_decoder import AutoencoderKLTemporalDecoder

    from drivesim.models.autoencoder import AutoencoderConfig

    cfg = AutoencoderConfig.tiny()
    n = len(cfg.block_out_channels)
    return AutoencoderKLTemporalDecoder(
        # diffusers annotates these as one-element tuples; it takes one entry per level
        down_block_types=cast("tuple[str]", ("DownEncoderBlock2D",) * n),
        block_out_channels=cast("tuple[int]", cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        latent_channels=cfg.latent_channels,
    ).eval()


def decoder_params() -> dict[str, int]:
    """Decoder-side parameter counts of both models."""
    svd = _svd()
    return {
        "ours": sum(p.numel() for p in _ours().parameters()),
        "svd": sum(
            p.numel() for n, p in svd.named_parameters() if not n.startswith(("encoder.", "quant_conv."))
        ),
    }


@torch.no_grad()
def measure(kind: str, frames: int, chunk: int, threads: int) -> dict:
    """Peak RSS above rest (MiB) and seconds/frame for one decode of `frames` 16x32 latents."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = _ours() if kind == "ours" else _svd()
    z = torch.randn(1, frames, 4, 16, 32)
    out = torch.empty(1, frames, 3, 128, 256)  # both write into a preallocated video
    gc.collect()
    rest = reset_peak_rss()
    start = time.perf_counter()
    if kind == "ours":
        model.decode_chunked(z, chunk=chunk, out=out)
    else:
        svd = cast("AutoencoderKLTemporalDecoder", model)
        for s in range(0, frames, chunk):
            part = z[0, s : s + chunk]
            out[0, s : s + chunk] = cast("DecoderOutput", svd.decode(part, num_frames=part.shape[0])).sample
    seconds = time.perf_counter() - start
    return {"peak_mib": (peak_rss_kib() - rest) / 1024, "s_per_frame": seconds / frames}


def bench_decode(
    lengths: tuple[int, ...] = (16, 64, 256), chunk: int = 16, threads: int = 2, full_up_to: int = 64
) -> list[dict]:
    """One row per (length, model, mode)."""
    rows = []
    for frames in lengths:
        for kind in ("ours", "svd"):
            modes = [("chunked", chunk)] + ([("full", frames)] if frames <= full_up_to else [])
            for mode, size in modes:
                res = run_isolated(
                    "drivesim.bench.decode", "measure", kind=kind, frames=frames, chunk=size, threads=threads
                )
                rows.append({"frames": frames, "model": kind, "mode": mode, **res})
    return rows


def format_rows(rows: list[dict], params: dict[str, int]) -> str:
    lines = [
        f"decoder params: ours {params['ours'] / 1e6:.2f} M, diffusers SVD temporal decoder "
        f"{params['svd'] / 1e6:.2f} M; latents 16x32 -> 128x256",
        f"{'frames':>6} {'model':>5} {'mode':>8} {'peak MiB':>9} {'s/frame':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r['frames']:>6} {r['model']:>5} {r['mode']:>8} {r['peak_mib']:>9.0f} {r['s_per_frame']:>8.3f}"
        )
    return "\n".join(lines)
