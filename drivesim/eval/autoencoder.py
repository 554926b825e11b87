"""Autoencoder report: reconstruction PSNR and flicker, image vs temporal decoder, on held-out
procedural clips (seeds never used in training)."""

from __future__ import annotations

import torch
from tqdm import tqdm

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.metrics import psnr, reference_flicker
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
    sums = {"psnr_image": 0.0, "flicker_image": 0.0, "psnr_temporal": 0.0, "flicker_temporal": 0.0}
    for i in tqdm(range(clips), desc="eval autoencoder", disable=not progress):
        frames = data[i][0].to(device)
        z = ae.encode(frames).mode()
        image = ae.decode(z)[None]
        sums["psnr_image"] += psnr(image, frames[None])
        sums["flicker_image"] += reference_flicker(image, frames[None])
        if td is not None:
            video = td.decode_chunked(z[None])
            sums["psnr_temporal"] += psnr(video, frames[None])
            sums["flicker_temporal"] += reference_flicker(video, frames[None])
    report = {k: v / clips for k, v in sums.items() if td is not None or "image" in k}
    report.update(clips=clips, num_frames=num_frames, fps=fps, seed=HELD_OUT_SEED)
    return report
