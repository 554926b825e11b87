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
from drivesim.models.autoencoder import AutoencoderKL
from drivesim.models.model_index import load_part
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.utils import HELD_OUT_SEED, resolve_device


def load_decoders(
    autoencoder: str, temporal_decoder: str | None, device: torch.device
) -> tuple[AutoencoderKL, TemporalDecoder | None]:
    """The image autoencoder and (if given) the temporal decoder, on `device`, in eval mode."""
    ae = load_part(autoencoder, "autoencoder", AutoencoderKL).to(device).eval()
    if not temporal_decoder:
        return ae, None
    return ae, load_part(temporal_decoder, "temporal_decoder", TemporalDecoder).to(device).eval()


@torch.no_grad()
def evaluate_autoencoder(
    autoencoder: str,
    temporal_decoder: str | None,
    clips: int = 16,
    num_frames: int = 16,
    fps: float = 30.0,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> dict:
    """Mean PSNR (dB) and flicker of both decoders over `clips` held-out clips."""
    device = resolve_device(device)
    ae, td = load_decoders(autoencoder, temporal_decoder, device)
    data = ProceduralClipDataset(length=clips, num_frames=num_frames, fps=fps, seed=HELD_OUT_SEED)
    sums: dict[str, float] = {}
    for i in tqdm(range(clips), desc="eval autoencoder", disable=not progress):
        frames = data[i][0].to(device)
        z = ae.encode(frames).mode()
        decoded = {"image": ae.decode(z)[None]}
        if td is not None:
            decoded["temporal"] = td.decode_chunked(z[None])
        warped = warped_reference_flicker([v[0].cpu() for v in decoded.values()], frames.cpu())
        for (name, video), warped_flicker in zip(decoded.items(), warped):
            for metric, value in (
                ("psnr", psnr(video, frames[None])),
                ("flicker", reference_flicker(video, frames[None])),
                ("warped_flicker", warped_flicker),
            ):
                sums[f"{metric}_{name}"] = sums.get(f"{metric}_{name}", 0.0) + value
    report = {k: v / clips for k, v in sums.items()}
    report.update(clips=clips, num_frames=num_frames, fps=fps, seed=HELD_OUT_SEED)
    return report
