"""Autoencoder report: reconstruction PSNR and flicker, image vs temporal decoder, on held-out
procedural clips (seeds never used in training).

Two flicker measures, both against the real frames: `flicker_*` is the mean change of the
residual (reconstruction - real) from one frame to the next, which also counts an error that
merely moves with the scene; `warped_flicker_*` first warps the residual along the real frames'
optical flow, so only errors that change in place count (what the eye sees as flicker)."""

from __future__ import annotations

import torch
from tqdm import tqdm

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.metrics import psnr, reference_flicker, warped_reference_flicker
from drivesim.models.model_index import load_part
from drivesim.utils import HELD_OUT_SEED, resolve_device


@torch.no_grad()
def evaluate_autoencoder(autoencoder: str, temporal_decoder: str | None, clips: int = 16,
                         num_frames: int = 16, fps: float = 30.0, progress: bool = True,
                         device: str = "cpu") -> dict:
    """Mean PSNR (dB) and flicker of both decoders over `clips` held-out clips."""
    device = resolve_device(device)
    ae = load_part(autoencoder, "autoencoder").to(device).eval()
    td = load_part(temporal_decoder, "temporal_decoder").to(device).eval() if temporal_decoder else None
    data = ProceduralClipDataset(length=clips, num_frames=num_frames, fps=fps, seed=HELD_OUT_SEED)
    sums = {f"{m}_{d}": (0.0 if d == "image" or td is not None else None) for d in ("image", "temporal")
            for m in ("psnr", "flicker", "warped_flicker")}
    for i in tqdm(range(clips), desc="eval autoencoder", disable=not progress):
        frames = data[i][0].to(device)
        z = ae.encode(frames).mode()
        image = ae.decode(z)[None]
        sums["psnr_image"] += psnr(image, frames[None])
        sums["flicker_image"] += reference_flicker(image, frames[None])
        sums["warped_flicker_image"] += warped_reference_flicker(image[0].cpu(), frames.cpu())
        if td is not None:
            video = td.decode_chunked(z[None])
            sums["psnr_temporal"] += psnr(video, frames[None])
            sums["flicker_temporal"] += reference_flicker(video, frames[None])
            sums["warped_flicker_temporal"] += warped_reference_flicker(video[0].cpu(), frames.cpu())
    report = {k: v / clips for k, v in sums.items() if v is not None}
    report.update(clips=clips, num_frames=num_frames, fps=fps, seed=HELD_OUT_SEED)
    return report
