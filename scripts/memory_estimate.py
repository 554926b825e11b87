"""Parameters and estimated GPU memory of every cascade stage, tiny or paper profile.

Usage: .venv/bin/python scripts/memory_estimate.py [--profile paper|tiny] [--check-tiny]

Models are built under FakeTensorMode (shapes without storage), so the paper profile costs no
memory and seconds of CPU. Batches and shapes come from the train configs (drivesim/configs)
and the cascade's defaults (RolloutConfig, UpsampleSettings, the streaming decoder's window).
- Training: fp32 weights (+ an fp32 EMA copy where the loop keeps one; the temporal-decoder stage
  also holds the image autoencoder) + fp32 grads and two Adam(W) moments of the trainable
  parameters + every tensor autograd saves for backward in one forward under bf16 autocast
  (CPU autocast's op lists: conv, linear, matmul and attention run in bf16). The backward's own
  transient buffers and the allocator's slack come on top.
- Sampling: bf16 weights + the peak of live tensors in one forward (no grad, bf16 autocast).
--check-tiny measures the tiny image-LDM training forward on this CPU (peak RSS in a fresh process)
next to its estimate.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.data import default_collate

from conditioners.context import Context
from drivesim.bench.memory import ISOLATED_ENV, peak_rss_kib, reset_peak_rss
from drivesim.config import load_config
from drivesim.data.conditions import clip_conditions
from drivesim.models.autoencoder import AutoencoderConfig, AutoencoderKL
from drivesim.models.temporal_decoder import TemporalDecoder
from drivesim.models.temporal_layers import is_temporal
from drivesim.models.unet import VideoUNet, unet_config
from drivesim.models.upsampler import UpsamplerUNet, upsampler_config
from drivesim.pipelines.generate import GenerateOptions
from drivesim.pipelines.rollout import FACTOR, RolloutConfig
from drivesim.pipelines.upsample import UpsampleSettings

GiB = 2**30


class LiveBytes(TorchDispatchMode):
    """Peak bytes of tensor storages created by ops and still referenced (params/inputs excluded)."""

    def __init__(self, exclude: list[torch.Tensor]):
        super().__init__()
        self.exclude = {StorageWeakRef(t.untyped_storage()) for t in exclude}
        self.refs: dict[StorageWeakRef, list[int]] = {}  # storage -> [bytes, live tensors on it]
        self.live = self.peak = 0

    def _release(self, key: StorageWeakRef) -> None:
        entry = self.refs[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self.refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            key = StorageWeakRef(t.untyped_storage())
            if key in self.exclude:
                continue
            if key not in self.refs:
                self.refs[key] = [t.untyped_storage().nbytes(), 0]
                self.live += self.refs[key][0]
                self.peak = max(self.peak, self.live)
            self.refs[key][1] += 1
            weakref.finalize(t, self._release, key)
        return out


def saved_bytes(model: torch.nn.Module, forward: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward in forward() (parameters not counted)."""
    params = {StorageWeakRef(p.untyped_storage()) for p in model.parameters()}
    seen: dict[StorageWeakRef, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = StorageWeakRef(t.untyped_storage())
        if key not in params:
            seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", torch.bfloat16):
        forward().float().mean()
    return sum(seen.values())


def peak_live_bytes(model: torch.nn.Module, forward: Callable[[], torch.Tensor], inputs: list) -> int:
    """Peak bytes of live activations in one no-grad forward under bf16 autocast."""
    model.requires_grad_(False)  # no autocast weight cache: bf16 weights are counted apart
    tracker = LiveBytes([*model.parameters(), *model.buffers(), *inputs])
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16), tracker:
        forward()
    return tracker.peak


def conditions(batch: int, frames: int) -> dict[str, torch.Tensor]:
    """A batch of condition dicts with the dataset's padded box tensors [B,T,32,4]."""
    one = clip_conditions(None, (128, 256), "day", "light", 7.5, num_frames=frames)
    return default_collate([one] * batch)


@dataclass
class Estimate:
    stage: str
    params: int
    trainable: int
    held: int  # parameters held in fp32 besides the model's own (EMA copy, frozen encoder)
    batch: str
    saved: int
    sample_batch: str
    sample_live: int | None

    @property
    def train_state(self) -> int:
        return 4 * (self.params + self.held) + (4 + 8) * self.trainable

    @property
    def sample_total(self) -> int | None:
        return None if self.sample_live is None else 2 * self.params + self.sample_live


def ldm_call(
    model: VideoUNet, mode: FakeTensorMode, image_only: bool, batch: int, frames: int, latent: tuple[int, int]
) -> tuple[Callable[[], torch.Tensor], list]:
    """(forward on fake inputs [B,T,4,h,w] with conditions and, for a context model, context; its inputs)."""
    x, steps = torch.randn(batch, frames, 4, *latent), torch.full((batch,), 500)
    cond = {k: mode.from_tensor(v) for k, v in conditions(batch, frames).items()}
    ctx = None
    if model.cfg.context_channels:
        ctx = Context(
            torch.randn(batch, frames, 4, *latent),
            torch.ones(batch, frames),
            torch.zeros(batch, dtype=torch.long),
        )
    return functools.partial(model, x, steps, cond, image_only, ctx), [x, steps, *cond.values()]


def ldm_estimates(profile: str) -> list[Estimate]:
    """Image, video, prediction and interpolation LDM: training at the config batch, sampling
    at the cascade's CFG batch."""
    out = []
    rollout = RolloutConfig()
    latent = rollout.latent_size
    sampling = {
        "image LDM": (3, 1),
        "video LDM": (3, GenerateOptions().max_frames),  # 3 CFG branches
        "prediction": (4, rollout.context_frames + rollout.new_frames),  # + context guidance
        "interpolation": (rollout.new_frames, FACTOR + 1),
    }  # one window per key-frame pair
    for stage, config_name in (
        ("image LDM", "train_image_ldm"),
        ("video LDM", "train_video_ldm"),
        ("prediction", "train_prediction"),
        ("interpolation", "train_interpolation"),
    ):
        cfg = load_config([f"unet={profile}"], config_name)
        ucfg = dataclasses.replace(unet_config(cfg["unet"]), context_channels=cfg.get("context_channels", 0))
        image_only = stage == "image LDM"
        b = cfg["batch_size"]
        t = 1 if image_only else FACTOR + 1 if stage == "interpolation" else cfg["latents"]["num_frames"]
        sb, st = sampling[stage]
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            model = VideoUNet(ucfg)
            for name, p in model.named_parameters():
                p.requires_grad_(is_temporal(name) != image_only)
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            saved = saved_bytes(model, ldm_call(model, mode, image_only, b, t, latent)[0])
            live = peak_live_bytes(model, *ldm_call(model, mode, image_only, sb, st, latent))
        params = sum(p.numel() for p in model.parameters())
        out.append(
            Estimate(
                stage,
                params,
                trainable,
                params,
                f"{b} x {t} latents {latent[0]}x{latent[1]}",
                saved,
                f"{sb} x {st} latents",
                live,
            )
        )
    return out


def autoencoder_estimates(profile: str) -> list[Estimate]:
    """Image autoencoder and temporal decoder at the train config's crops; sampling decodes one
    streaming window (chunk 7 + 2 x receptive radius latents) of 128x256 frames."""
    cfg = load_config([f"autoencoder={profile}"], "train_autoencoder")
    acfg = AutoencoderConfig.from_dict(cfg["autoencoder"])
    ch, cw = cfg["crop"]
    f = acfg.downsample_factor
    with FakeTensorMode(allow_non_fake_inputs=True):
        ae = AutoencoderKL(acfg)
        x = torch.randn(cfg["batch_size"], 3, ch, cw)
        ae_saved = saved_bytes(ae, lambda: ae(x)[0])
        td = TemporalDecoder(acfg)
        for name, p in td.named_parameters():
            p.requires_grad_(is_temporal(name))
        trainable = sum(p.numel() for p in td.parameters() if p.requires_grad)
        z = torch.randn(cfg["batch_size"], cfg["num_frames"], 4, ch // f, cw // f)
        td_saved = saved_bytes(td, lambda: td(z))
        window = 7 + 2 * td.receptive_radius
        zs = torch.randn(1, window, 4, 16, 32)
        td_live = peak_live_bytes(td, lambda: td(zs), [zs])
    n_ae, n_td = (sum(p.numel() for p in m.parameters()) for m in (ae, td))
    b = cfg["batch_size"]
    return [
        Estimate("autoencoder", n_ae, n_ae, 0, f"{b} crops {ch}x{cw}", ae_saved, "-", None),
        Estimate(
            "temporal decoder",
            n_td,
            trainable,
            n_ae,
            f"{b} x {cfg['num_frames']} crops {ch}x{cw}",
            td_saved,
            f"{window} latents 16x32",
            td_live,
        ),
    ]


def upsampler_estimates(profile: str) -> list[Estimate]:
    """Image and video stage at the train config's crops; sampling (the video stage, as the cascade
    runs it) one 512x512 tile of a streaming window (chunk + 2 x temporal radius x steps frames)."""
    cfg = load_config([f"upsampler={profile}"], "train_upsampler")
    ucfg = upsampler_config(cfg["upsampler"])
    settings = UpsampleSettings()
    s, (ch, cw), b = ucfg.scale, cfg["crop"], cfg["batch_size"]
    out = []
    for stage, t in (("upsampler (image)", 1), ("upsampler (video)", cfg["num_frames"])):
        video = t > 1
        with FakeTensorMode(allow_non_fake_inputs=True):
            model = UpsamplerUNet(ucfg)
            for name, p in model.named_parameters():
                p.requires_grad_(not video or is_temporal(name))
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            batch = [
                torch.randn(b, t, 3, ch, cw),
                torch.randn(b, t, 3, ch // s, cw // s),
                torch.full((b,), 500),
                torch.full((b,), 10),
            ]
            saved = saved_bytes(model, functools.partial(model, *batch, image_only=not video))
            frames, tile = settings.chunk + 2 * ucfg.temporal_radius * settings.steps, settings.tile
            inputs = [
                torch.randn(1, frames, 3, tile, tile),
                torch.randn(1, frames, 3, tile // s, tile // s),
                torch.full((1,), 500),
                torch.full((1,), settings.noise_level),
            ]
            live = peak_live_bytes(model, functools.partial(model, *inputs), inputs) if video else None
        params = sum(p.numel() for p in model.parameters())
        out.append(
            Estimate(
                stage,
                params,
                trainable,
                params,
                f"{b} x {t} crops {ch}x{cw}",
                saved,
                f"1 x {frames} tile {tile}x{tile}" if video else "-",
                live,
            )
        )
    return out


def check_tiny() -> dict:
    """Peak RSS of one tiny image-LDM training forward on this CPU (fp32, config batch) vs the
    saved-tensor count of the same forward."""
    cfg = load_config(["unet=tiny"], "train_image_ldm")
    model = VideoUNet(unet_config(cfg["unet"]))
    for name, p in model.named_parameters():
        p.requires_grad_(not is_temporal(name))
    b = cfg["batch_size"]
    x, steps, cond = torch.randn(b, 1, 4, 16, 32), torch.full((b,), 500), conditions(b, 1)
    params = {StorageWeakRef(p.untyped_storage()) for p in model.parameters()}
    seen: dict[StorageWeakRef, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if StorageWeakRef(t.untyped_storage()) not in params:
            seen[StorageWeakRef(t.untyped_storage())] = t.untyped_storage().nbytes()
        return t

    start = reset_peak_rss()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(x, steps, cond, True).mean()
    held = peak_rss_kib() - start
    del loss
    return {"rss_above_start_mib": held / 1024, "saved_fp32_mib": sum(seen.values()) / 2**20}


def table(rows: list[Estimate]) -> str:
    """Markdown: parameters, training memory (state + saved activations) and sampling memory."""
    lines = [
        "| stage | parameters | trainable | training batch | weights + EMA + grads + Adam | "
        "activations | training total | sampling batch | sampling total (bf16 weights + activations) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sample = (
            "-"
            if r.sample_total is None
            else f"{r.sample_total / GiB:.2f} GiB ({2 * r.params / GiB:.2f} + {r.sample_live / GiB:.2f})"
        )
        lines.append(
            f"| {r.stage} | {r.params / 1e6:.1f} M | {r.trainable / 1e6:.1f} M | {r.batch} | "
            f"{r.train_state / GiB:.2f} GiB | {r.saved / GiB:.2f} GiB | "
            f"{(r.train_state + r.saved) / GiB:.2f} GiB | {r.sample_batch} | {sample} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", choices=["paper", "tiny"])
    parser.add_argument("--check-tiny", action="store_true", help="measure the tiny image LDM on this CPU")
    parser.add_argument("--measure-tiny", action="store_true", help=argparse.SUPPRESS)  # --check-tiny's child
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.measure_tiny:
        print(json.dumps(check_tiny()))
        return
    rows = [
        *autoencoder_estimates(args.profile),
        *ldm_estimates(args.profile),
        *upsampler_estimates(args.profile),
    ]
    print(table(rows))
    if args.check_tiny:  # a fresh process whose allocator returns freed blocks, so RSS tracks tensors
        proc = subprocess.run(
            [sys.executable, __file__, "--measure-tiny"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **ISOLATED_ENV},
        )
        measured = json.loads(proc.stdout.splitlines()[-1])
        print(
            f"tiny image LDM, one training forward on this CPU (fp32): peak RSS "
            f"{measured['rss_above_start_mib']:.0f} MiB above the start; tensors saved for backward "
            f"{measured['saved_fp32_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
