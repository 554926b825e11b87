"""Upsampler report on held-out procedural clips whose ground truth is rendered at 512x1024:
PSNR / SSIM against it and flicker, for bicubic, the image upsampler and the video upsampler.

The low-resolution input is the ground truth area-downsampled 4x (`low_res=area`), or that
through the model folder's autoencoder and temporal decoder (`low_res=decoded`), the blur the
cascade hands the upsampler. The image upsampler is the video checkpoint without its temporal
layers (the video stage froze every spatial weight). Flicker is measured two ways, both against
the ground truth: `flicker` is the mean change of the residual from frame to frame,
`warped_flicker` warps the residual along the true optical flow first (only errors that change
in place count).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim
from tqdm import tqdm

from drivesim.data.procedural import ProceduralClipDataset
from drivesim.metrics import psnr, reference_flicker, warped_reference_flicker
from drivesim.models.model_index import load_reconstructor
from drivesim.models.temporal_decoder import reconstruct_frames
from drivesim.pipelines.upsample import Upsampler, UpsampleSettings, bicubic_upsample, upsample_video
from drivesim.utils import HELD_OUT_SEED, resolve_device

if TYPE_CHECKING:
    from drivesim.models.autoencoder import AutoencoderKL
    from drivesim.models.temporal_decoder import TemporalDecoder

    Reconstructor = tuple[
        AutoencoderKL, TemporalDecoder | None
    ]  # what reconstruct_frames sends frames through

LOW_RES = ("area", "decoded")


def video_ssim(video: torch.Tensor, target: torch.Tensor) -> float:
    """[T,3,H,W] in [-1,1] -> mean SSIM (11-px Gaussian window)."""
    return float(ssim((video.clamp(-1, 1) + 1) / 2, (target + 1) / 2, data_range=1.0, size_average=True))


@torch.no_grad()
def low_res_input(
    frames: torch.Tensor, kind: str, model_dir: str, scale: int, parts: dict[str, Reconstructor]
) -> torch.Tensor:
    """Ground truth [T,3,H,W] -> the upsampler's input [T,3,H/s,W/s] of kind `area` or `decoded`."""
    low = F.avg_pool2d(frames, scale)
    if kind == "area":
        return low
    if "pair" not in parts:
        parts["pair"] = load_reconstructor(model_dir)
    return reconstruct_frames(*parts["pair"], low)


@torch.no_grad()
def evaluate_upsampler(
    model_dir: str,
    clips: int = 8,
    num_frames: int = 16,
    fps: float = 30.0,
    low_res: str = "area",
    settings: UpsampleSettings | None = None,
    size: tuple[int, int] = (512, 1024),
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> dict:
    """Mean PSNR (dB), SSIM, flicker and warped flicker (both 0-255) per method over held-out clips."""
    if low_res not in LOW_RES:
        raise ValueError(f"low_res={low_res!r}: use one of {LOW_RES}")
    device = resolve_device(device)
    settings = settings or UpsampleSettings()
    video = Upsampler.from_pretrained(model_dir, settings).to(device)
    image = copy.copy(video)  # shares the model; runs without the temporal layers
    image.image_only = True
    data = ProceduralClipDataset(length=clips, num_frames=num_frames, fps=fps, size=size, seed=HELD_OUT_SEED)
    parts: dict[str, Reconstructor] = {}
    sums: dict[str, float] = {}
    for i in tqdm(range(clips), desc="eval upsampler", disable=not progress):
        target = data[i][0]
        low = low_res_input(target, low_res, model_dir, video.scale, parts).to(device)[None]
        outputs = {
            "bicubic": bicubic_upsample(low, video.scale),
            "image": upsample_video(low, "model", image, seed=i),
            "video": upsample_video(low, "model", video, seed=i),
        }
        outputs = {k: v[0].cpu() for k, v in outputs.items()}
        warped = warped_reference_flicker(list(outputs.values()), target)
        for (name, out), warped_flicker in zip(outputs.items(), warped):
            for metric, value in (
                ("psnr", psnr(out, target)),
                ("ssim", video_ssim(out, target)),
                ("flicker", reference_flicker(out[None], target[None]) * 127.5),
                ("warped_flicker", warped_flicker),
            ):
                sums[f"{metric}_{name}"] = sums.get(f"{metric}_{name}", 0.0) + value
    report: dict[str, object] = {k: v / clips for k, v in sums.items()}
    report.update(
        clips=clips,
        num_frames=num_frames,
        fps=fps,
        low_res=low_res,
        seed=HELD_OUT_SEED,
        size=list(size),
        upsampler=video.version,
        settings=dataclasses.asdict(settings),
    )
    return report
