"""Autoencoder losses: L1 + SSIM reconstruction, KL, hinge GAN with the adaptive weight.

The feature loss is SSIM (pytorch_msssim): it needs no downloaded weights (LPIPS needs an
ImageNet VGG/AlexNet we may not fetch) and it scores local structure (means, contrast,
covariance), which pushes the decoder towards sharp edges where plain L1 settles for blur.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from pytorch_msssim import ssim


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """[N,3,H,W] in [-1,1] -> L1 + ssim_weight * (1 - SSIM)."""
    l1 = F.l1_loss(recon, target)
    s = ssim((recon + 1) / 2, (target + 1) / 2, data_range=1.0, size_average=True, win_size=7)
    return l1 + ssim_weight * (1 - s)


def motion_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[B,T,3,H,W]: L1 between consecutive-frame differences of recon and target."""
    return F.l1_loss(recon[:, 1:] - recon[:, :-1], target[:, 1:] - target[:, :-1])


def reference_flows(target: torch.Tensor) -> torch.Tensor:
    """[B,T,3,H,W] in [-1,1] -> [B,T-1,H,W,2] Farneback flows from frame t+1 back to t (the ones
    `drivesim eval autoencoder` warps with), computed on the CPU without gradients."""
    from drivesim.metrics import backward_flows, to_uint8

    return torch.stack(
        [torch.from_numpy(np.stack(backward_flows(to_uint8(clip.detach().cpu())))) for clip in target]
    ).to(target.device)


def warped_motion_loss(recon: torch.Tensor, target: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
    """recon, target [B,T,3,H,W], flows [B,T-1,H,W,2] (reference_flows) -> mean |r_{t+1} - warp(r_t)|
    of the residual r = recon - target: the flicker left once the scene's motion is taken out."""
    residual = recon - target
    b, _, h, w, _ = flows.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flows.device), torch.arange(w, device=flows.device), indexing="ij"
    )
    x = (xs + flows[..., 0]) * (2 / max(w - 1, 1)) - 1  # sample r_t at (x + fx, y + fy)
    y = (ys + flows[..., 1]) * (2 / max(h - 1, 1)) - 1
    grid = rearrange(torch.stack([x, y], -1), "b t h w two -> (b t) h w two").to(residual.dtype)
    prev = rearrange(residual[:, :-1], "b t c h w -> (b t) c h w")
    warped = F.grid_sample(prev, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return F.l1_loss(rearrange(warped, "(b t) c h w -> b t c h w", b=b), residual[:, 1:])


def adaptive_gan_weight(
    rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor, max_weight: float = 1e4
) -> torch.Tensor:
    """||grad rec|| / ||grad gan|| at the decoder's last layer (Esser et al., taming-transformers)."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0, max_weight).detach()
