"""Clip metrics, in one place: flicker, flow-warp error, segment seams, drift of one video, and
reconstruction PSNR / flicker against a reference (autoencoder reports).

Videos are float tensors [T,3,H,W] in [-1,1]; the single-video metrics are reported on the
0-255 scale so numbers read the same for generated and real clips. Imports only drivesim.utils,
so pipelines, training and evaluation can all use it.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from drivesim.utils import to_uint8


def frame_differences(video: torch.Tensor) -> torch.Tensor:
    """[T,3,H,W] -> mean |x_{t+1} - x_t| per step on 0-255, [T-1]."""
    diff = (video[1:] - video[:-1]).abs() * 127.5
    return diff.flatten(1).mean(1)


def flicker(video: torch.Tensor) -> float:
    """Mean consecutive-frame residual (0-255); 0 for a static video."""
    if video.shape[0] < 2:
        raise ValueError(f"flicker needs >= 2 frames, got {video.shape[0]}")
    return float(frame_differences(video).mean())


def reference_flicker(video: torch.Tensor, reference: torch.Tensor) -> float:
    """[B,T,3,H,W] video and reference in [-1,1] -> mean |change of the residual video - reference
    from one frame to the next| (scale [0, 2]): 0 when the error is the same in every frame."""
    residual = video - reference
    return (residual[:, 1:] - residual[:, :-1]).abs().mean().item()


def psnr(recon: torch.Tensor, target: torch.Tensor) -> float:
    """Images [..., 3, H, W] in [-1,1] (recon clamped) -> PSNR in dB (inf when identical)."""
    mse = F.mse_loss((recon.clamp(-1, 1) + 1) / 2, (target + 1) / 2).item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def backward_flows(frames: np.ndarray) -> list[np.ndarray]:
    """uint8 [T,H,W,3] -> T-1 Farneback flows [H,W,2] from frame t+1 back to frame t."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    return [
        cv2.calcOpticalFlowFarneback(
            g_next,
            g_prev,
            None,
            pyr_scale=0.5,
            levels=3,
            winsize=15,
            iterations=3,
            poly_n=5,
            poly_sigma=1.2,
            flags=0,
        )
        for g_prev, g_next in itertools.pairwise(gray)
    ]


def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """image [H,W,C] sampled at (x + flow_x, y + flow_y): frame t seen from frame t+1."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def warp_error(video: torch.Tensor, border: int = 4) -> float:
    """Mean |x_{t+1} - warp(x_t)| (0-255) with OpenCV Farneback flow from t+1 back to t.

    Low for smooth motion (the flow explains it), high for shuffled or popping frames.
    A `border` of pixels is ignored where the warp samples outside the frame.
    """
    frames = to_uint8(video)
    if len(frames) < 2:
        raise ValueError(f"warp_error needs >= 2 frames, got {len(frames)}")
    h, w = frames.shape[1:3]
    errors = [
        np.abs(_warp(prev, flow).astype(np.float32) - nxt.astype(np.float32))[
            border : h - border, border : w - border
        ].mean()
        for prev, nxt, flow in zip(frames[:-1], frames[1:], backward_flows(frames))
    ]
    return float(np.mean(errors))


def warped_reference_flicker(
    videos: list[torch.Tensor], reference: torch.Tensor, border: int = 4
) -> list[float]:
    """Videos [T,3,H,W] and their reference in [-1,1] -> per video, mean |r_{t+1} - warp(r_t)|
    (0-255) of its residual r = video - reference, warped with the reference's own flow (computed
    once for all videos): an error that moves with the scene is not flicker, one that changes in
    place is. 0 for any error carried along by motion."""
    if reference.shape[0] < 2 or any(v.shape != reference.shape for v in videos):
        raise ValueError(
            f"need [T>=2,3,H,W] videos shaped like the reference {list(reference.shape)}, "
            f"got {[list(v.shape) for v in videos]}"
        )
    flows = backward_flows(to_uint8(reference))
    h, w = reference.shape[-2:]
    out = []
    for video in videos:
        residual = ((video.clamp(-1, 1) - reference) * 127.5).permute(0, 2, 3, 1).numpy().astype(np.float32)
        errors = [
            np.abs(residual[t + 1] - _warp(residual[t], flow))[
                border : h - border, border : w - border
            ].mean()
            for t, flow in enumerate(flows)
        ]
        out.append(float(np.mean(errors)))
    return out


def mean_luma(frames: torch.Tensor) -> float:
    """[...,3,H,W] in [-1,1] -> mean Rec.601 luma on 0-255."""
    rgb = (frames.clamp(-1, 1) + 1) * 127.5
    return float((0.299 * rgb[..., 0, :, :] + 0.587 * rgb[..., 1, :, :] + 0.114 * rgb[..., 2, :, :]).mean())


def seam_ratio(video: torch.Tensor, segment_starts: list[int]) -> dict:
    """Frame difference across segment borders vs inside segments.

    segment_starts: index of the first new frame of every segment after the first; the seam
    step is (start-1 -> start). ratio ~1 means seams are invisible; >1 means jumps at seams.
    """
    steps = frame_differences(video)
    seam_idx = [s - 1 for s in segment_starts if 1 <= s < video.shape[0]]
    if not seam_idx:
        raise ValueError("seam_ratio needs at least one segment start inside the video")
    inside = torch.ones_like(steps, dtype=torch.bool)
    inside[seam_idx] = False
    seam, within = float(steps[seam_idx].mean()), float(steps[inside].mean())
    return {"seam": seam, "within": within, "ratio": seam / max(within, 1e-8)}


def drift(video: torch.Tensor, fps: float) -> dict:
    """Brightness and colour drift: per-channel means over time, their linear slope per second
    and the range (max - min) of mean brightness, all on 0-255."""
    means = ((video.clamp(-1, 1) + 1) * 127.5).mean(dim=(2, 3)).double()  # [T,3]
    brightness = means.mean(1)
    t = torch.arange(len(brightness), dtype=torch.float64) / fps
    slope = [_slope(t, means[:, c]) for c in range(3)]
    return {
        "brightness_start": float(brightness[0]),
        "brightness_end": float(brightness[-1]),
        "brightness_range": float(brightness.max() - brightness.min()),
        "brightness_slope_per_s": _slope(t, brightness),
        "rgb_slope_per_s": slope,
    }


def _slope(t: torch.Tensor, y: torch.Tensor) -> float:
    if len(t) < 2:
        return 0.0
    tc = t - t.mean()
    return float((tc * (y - y.mean())).sum() / (tc * tc).sum())


def temporal_report(video: torch.Tensor, fps: float) -> dict:
    """All single-video metrics: flicker, warp error and drift."""
    return {"flicker": flicker(video), "warp_error": warp_error(video), **drift(video, fps)}


def rollout_diagnostics(path: str, fps: float, segment_starts: list[int]) -> dict:
    """Seam metric and drift of a (long) mp4, streamed frame by frame in constant memory:
    mean |frame step| across segment borders vs inside segments, per-segment mean brightness
    and RGB, brightness slope over time (all 0-255)."""
    import av

    starts = sorted(segment_starts)
    seam_steps, within_steps, brightness, rgb = [], [], [], []
    prev = None
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            x = frame.to_ndarray(format="rgb24").astype(np.float32)
            brightness.append(float(x.mean()))
            rgb.append(x.mean(axis=(0, 1)).tolist())
            if prev is not None:
                (seam_steps if i in starts else within_steps).append(float(np.abs(x - prev).mean()))
            prev = x
    bounds = [0, *starts, len(brightness)]
    segments = [
        {
            "first_frame": a,
            "frames": b - a,
            "brightness": float(np.mean(brightness[a:b])),
            "rgb": np.mean(rgb[a:b], axis=0).round(2).tolist(),
        }
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    t = torch.arange(len(brightness), dtype=torch.float64) / fps
    seam, within = (float(np.mean(v)) if v else None for v in (seam_steps, within_steps))
    return {
        "frames": len(brightness),
        "seconds": len(brightness) / fps,
        "seam": seam,
        "within": within,
        "seam_ratio": seam / within if seam is not None and within else None,
        "brightness_slope_per_min": 60 * _slope(t, torch.tensor(brightness, dtype=torch.float64)),
        "brightness_first_segment": segments[0]["brightness"] if segments else None,
        "brightness_last_segment": segments[-1]["brightness"] if segments else None,
        "segments": segments,
    }
