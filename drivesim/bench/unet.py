"""`drivesim bench unet`: our VideoUNet vs diffusers UNetSpatioTemporalConditionModel (SVD).

Both get the same latent clip [B,T,4,h,w] and timestep; the SVD UNet is configured with the
same block layout and the channel width whose parameter count is closest to ours. Each
measurement runs in its own process so peak RSS is not polluted by the other model.
"""

from __future__ import annotations

import gc
import time

import torch
from torch.utils.data import default_collate

from drivesim.bench.memory import peak_rss_kib, reset_peak_rss, run_isolated

# Per-level widths to search; GroupNorm(32) in the SVD blocks needs multiples of 32.
SVD_WIDTHS = tuple(
    (a, b, c)
    for a in (32, 64, 96)
    for b in (32, 64, 96, 128, 160)
    for c in (64, 96, 128, 160, 192)
    if a <= b <= c
)


def _svd(chans: tuple[int, ...], cross_dim: int, frames: int):
    from diffusers.models.unets.unet_spatio_temporal_condition import UNetSpatioTemporalConditionModel

    return UNetSpatioTemporalConditionModel(
        in_channels=4,
        out_channels=4,
        down_block_types=(
            "DownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
        ),
        up_block_types=(
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "UpBlockSpatioTemporal",
        ),
        block_out_channels=chans,
        addition_time_embed_dim=32,
        projection_class_embeddings_input_dim=96,
        layers_per_block=1,
        cross_attention_dim=cross_dim,
        num_attention_heads=tuple(c // 32 for c in chans),
        num_frames=frames,
    )


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _ours(channels: list[int] | None = None):
    from drivesim.models.unet import UNetConfig, VideoUNet

    cfg = UNetConfig.tiny()
    if channels:
        cfg = UNetConfig(**{**cfg.to_dict(), "block_out_channels": tuple(channels)})
    return VideoUNet(cfg)


def _conditions(batch: int, frames: int):
    from drivesim.data.conditions import clip_conditions
    from drivesim.data.labels import Box

    boxes = [[Box(10 + i, 40, 40 + i, 70, track_id=i) for i in range(6)]] * frames
    return default_collate([clip_conditions(boxes, (128, 256), "day", "light", 30.0)] * batch)


def matched_svd_width(
    frames: int = 8, channels: list[int] | None = None
) -> tuple[tuple[int, int, int], int, int]:
    """(svd channel widths, svd params, our params) with the closest parameter count."""
    ours = _count(_ours(channels))
    with torch.device("meta"):
        counts = {w: _count(_svd(w, 128, frames)) for w in SVD_WIDTHS}
    best = min(counts, key=lambda w: abs(counts[w] - ours))
    return best, counts[best], ours


def measure(
    kind: str,
    mode: str,
    batch: int,
    frames: int,
    height: int,
    width: int,
    svd_width: list[int],
    repeats: int,
    threads: int,
    channels: list[int] | None = None,
) -> dict:
    """Seconds per call and peak RSS above the model's resting RSS (MiB), in this process."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = _ours(channels) if kind == "drivesim" else _svd(tuple(svd_width), 128, frames)
    model.train(mode == "train")
    x = torch.randn(batch, frames, 4, height, width)
    t = torch.full((batch,), 500)
    if kind == "drivesim":
        cond = _conditions(batch, frames)
        call = lambda: model(x, t, cond)
    else:
        tokens = torch.randn(batch, 33, 128)  # as many tokens as our 32 boxes + null
        added = torch.zeros(batch, 3)
        call = lambda: model(x, t, tokens, added, return_dict=False)[0]

    def step():
        if mode == "train":
            call().pow(2).mean().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                call()

    step()  # warm-up
    gc.collect()
    rest = reset_peak_rss()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    seconds = (time.perf_counter() - start) / repeats
    return {
        "seconds": seconds,
        "peak_mib": (peak_rss_kib() - rest) / 1024,
        "params": sum(p.numel() for p in model.parameters()),
    }


def bench_unet(
    batch: int = 2,
    frames: int = 8,
    height: int = 16,
    width: int = 32,
    repeats: int = 3,
    threads: int = 2,
    channels: list[int] | None = None,
) -> list[dict]:
    """Rows (mode, model, seconds, peak MiB, params) and the ratio ours / SVD."""
    svd_width, _, _ = matched_svd_width(frames, channels)
    rows = []
    for mode in ("forward", "train"):
        res = {
            kind: run_isolated(
                "drivesim.bench.unet",
                "measure",
                kind=kind,
                mode=mode,
                batch=batch,
                frames=frames,
                height=height,
                width=width,
                svd_width=svd_width,
                repeats=repeats,
                threads=threads,
                channels=channels,
            )
            for kind in ("drivesim", "svd")
        }
        rows.append(
            {
                "mode": mode,
                "svd_channels": svd_width,
                "ours": res["drivesim"],
                "svd": res["svd"],
                "time_ratio": res["drivesim"]["seconds"] / res["svd"]["seconds"],
                "memory_ratio": res["drivesim"]["peak_mib"] / max(res["svd"]["peak_mib"], 1e-9),
            }
        )
    return rows


def format_rows(rows: list[dict], shape: str) -> str:
    lines = [
        f"input {shape}; SVD UNet widths chosen to match our parameter count",
        f"{'mode':>8} {'model':>9} {'params':>9} {'s/call':>8} {'peak MiB':>9}",
    ]
    for r in rows:
        for kind in ("ours", "svd"):
            m = r[kind]
            lines.append(
                f"{r['mode']:>8} {kind:>9} {m['params'] / 1e6:>8.2f}M {m['seconds']:>8.3f} "
                f"{m['peak_mib']:>9.1f}"
            )
        lines.append(
            f"{r['mode']:>8} {'ratio':>9} {'':>9} {r['time_ratio']:>7.2f}x {r['memory_ratio']:>8.2f}x"
        )
    return "\n".join(lines)
