"""The FID Inception-v3: the TensorFlow 2015-12-05 graph as ported by pytorch-fid, in plain torch.

Module and parameter names match the public state dict `pt_inception-2015-12-05-6726825d.pth`
(pytorch-fid GitHub release `fid_weights`), so that file loads strictly. The FID graph differs
from torchvision's Inception-v3 in its pooling: the average pools of the A/C/E blocks ignore
padded zeros (`count_include_pad=False`, as TensorFlow does) and the last E block (Mixed_7c)
max-pools its pool branch. 1008 classes, no aux head. drivesim never downloads weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F
from einops import reduce
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)
FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_INCEPTION_ORIGIN = "the pytorch-fid GitHub release 'fid_weights' (github.com/mseitzer/pytorch-fid)"


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm(eps=1e-3) -> ReLU; submodules named `conv`, `bn`."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 3x3 average pool does not count the padded zeros.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35x35 block (Mixed_5b/c/d)."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_tf(x))], 1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (Mixed_6a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..e)."""

    def __init__(self, cin: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            d = layer(d)
        d = self.branch7x7dbl_5(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool_tf(x))], 1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (Mixed_7a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs (Mixed_7b/c); `max_pool` picks the pool branch."""

    max_pool = False

    def __init__(self, cin: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_tf(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionE_1(FIDInceptionE):
    """Mixed_7b: average pool (padding excluded)."""


class FIDInceptionE_2(FIDInceptionE):
    """Mixed_7c: max pool in the pool branch (a quirk of the TF graph that FID keeps)."""

    max_pool = True


_MIXED = tuple(f"Mixed_{name}" for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"))


class FIDInceptionV3(nn.Module):
    """images [N,3,H,W] in [-1,1] -> pool3 features [N,2048] (bilinear resize to 299x299 inside).

    Always in eval mode (BatchNorm uses its running statistics), parameters frozen. `fc` (1008
    classes) is kept so the public state dict loads strictly; features are taken before it.
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FIDInceptionV3:
        return super().train(False)  # a feature extractor: never switch BatchNorm to batch stats

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [N,3,H,W], got shape {tuple(images.shape)}")
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in _MIXED:
            x = getattr(self, name)(x)
        return reduce(x, "n c h w -> n c", "mean")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A .safetensors or torch-saved (.pth/.pt, loaded with weights_only=True) file -> state dict."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_weights_strict(model: ModuleT, path, needed: str, origin: str) -> ModuleT:
    """Strictly load a local weights file into `model` -> model in eval mode (drivesim never downloads)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: weights file not found. It must be {needed} from {origin} (or the same state dict "
            f"as .safetensors); drivesim never downloads weights, fetch the file yourself and pass its path."
        )
    state = read_state_dict(path)
    if not isinstance(state, dict):
        raise TypeError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    # Checkpoints from old torch versions lack BatchNorm's num_batches_tracked (unused in eval mode).
    for name, buf in model.named_buffers():
        if name.endswith("num_batches_tracked") and name not in state:
            state[name] = torch.zeros_like(buf)
    expected, found = set(model.state_dict()), set(state)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:

        def listing(keys: list[str]) -> str:
            return ", ".join(keys[:20]) + (f", ... ({len(keys)} in all)" if len(keys) > 20 else "")

        raise RuntimeError(
            f"{path} does not match {type(model).__name__} (expected {needed}): "
            f"missing keys [{listing(missing)}]; unexpected keys [{listing(unexpected)}]"
        )
    model.load_state_dict(state, strict=True)  # also reports shape mismatches
    return model.eval()


def load_fid_inception(path) -> FIDInceptionV3:
    """path to pt_inception-2015-12-05-6726825d.pth (or .safetensors) -> FIDInceptionV3 in eval mode."""
    return load_weights_strict(FIDInceptionV3(), path, FID_INCEPTION_FILE, FID_INCEPTION_ORIGIN)
