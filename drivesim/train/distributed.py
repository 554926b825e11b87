"""torchrun + DDP for every `drivesim train` command: gloo on the CPU, nccl on CUDA.

`torchrun --nproc_per_node N -m drivesim.cli train MODEL ...` starts N ranks; without torchrun a
run is one process and nothing here changes it. `batch_size` is always the GLOBAL batch of one
optimizer step, split over world_size ranks x grad_accum micro-batches.

A run does not depend on its world size: each rank loads only its own rows of every global batch
(RankBatches) and all-gathers them, every rank then draws the random numbers of the whole global
batch from the same generator (noise, timesteps, condition drops, crops), exactly as one process
would, and forward/backward runs on this rank's rows of each micro-batch. (The upsampler needs
no gather: its crops come from an in-memory cache, so a rank draws every crop's position and
cuts only its own.) Each rank's random numbers are thus its own rows of one global draw. So losses match a
single-process run to float rounding, and a run resumes at another world size on the same path.
The gather moves one batch per step; DDP's gradient all-reduce moves the whole model.
Rank 0 alone writes checkpoints, logs and progress bars.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

from drivesim.train.common import seed_everything
from drivesim.utils import resolve_device

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Ranks:
    """This process's place in the run: rank of world, local rank on its node, micro-batches per step."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    grad_accum: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shards(self) -> int:
        """Micro-batch shards per optimizer step, over all ranks."""
        return self.world * self.grad_accum

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.shards:
            raise ValueError(
                f"batch_size={batch_size} is not divisible by world_size x grad_accum = "
                f"{self.world} x {self.grad_accum}: batch_size is the global batch of one "
                f"optimizer step; make it a multiple of {self.shards}"
            )

    def load_rows(self, n: int) -> slice:
        """Rows of a global batch of n that this rank loads."""
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def micro_rows(self, micro: int, n: int) -> slice:
        """Rows of a global batch of n that this rank computes in micro-batch `micro` (uneven n
        allowed); for n = batch_size they lie inside load_rows."""
        shard = self.rank * self.grad_accum + micro
        return slice(n * shard // self.shards, n * (shard + 1) // self.shards)


def init_ranks(device: str, grad_accum: int = 1) -> tuple[Ranks, str]:
    """Join the torchrun process group if launched by torchrun -> (Ranks, this rank's device).
    gloo for cpu, nccl for cuda (one GPU per rank: cuda:LOCAL_RANK)."""
    if grad_accum < 1:
        raise ValueError(f"grad_accum={grad_accum}: must be >= 1")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks(grad_accum=grad_accum), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.device(device).type == "cuda"
    if cuda:
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
    if dist.get_world_size() != world:
        raise RuntimeError(f"WORLD_SIZE={world} but the process group has {dist.get_world_size()} ranks")
    return Ranks(rank, world, local_rank, grad_accum), device


def start_run(cfg) -> tuple[Path, Ranks, torch.device, torch.Generator]:
    """A trainer's first steps from its config (out_dir, device, grad_accum, batch_size, seed):
    out_dir made, the ranks joined (batch_size checked against them), this rank's device, and the
    seeded CPU generator (the same draws on any device and rank)."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ranks, device = init_ranks(cfg.device, cfg.grad_accum)
    ranks.check_batch(cfg.batch_size)
    generator = seed_everything(cfg.seed)
    return out, ranks, resolve_device(device), generator


def close_ranks(ranks: Ranks) -> None:
    """Wait for every rank, then leave the process group. gloo's group is left to process exit:
    its destroy_process_group sometimes hung a rank after the others had gone (pytorch#75097)."""
    if ranks.world > 1 and dist.is_initialized():
        dist.barrier()
        if dist.get_backend() == "nccl":
            dist.destroy_process_group()


def barrier(ranks: Ranks) -> None:
    if ranks.world > 1:
        dist.barrier()


def main_first(ranks: Ranks, make: Callable[[], T]) -> T:
    """make() on rank 0 first (it may build a cache file), then on the other ranks once rank 0 is
    done -> make()'s result on every rank; each rank calls it once."""
    if ranks.is_main:
        result = make()
        barrier(ranks)
    else:
        barrier(ranks)
        result = make()
    return result


def wrap(model: nn.Module, ranks: Ranks, find_unused: bool = False) -> nn.Module:
    """DDP around a model for world > 1 (gradients averaged over ranks); the model itself otherwise."""
    if ranks.world == 1:
        return model
    device = next(model.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def sync_gradients(model: nn.Module, ranks: Ranks, micro: int) -> contextlib.AbstractContextManager:
    """Inside: backward all-reduces gradients only on the last micro-batch of a step."""
    if isinstance(model, DistributedDataParallel) and micro < ranks.grad_accum - 1:
        return model.no_sync()
    return contextlib.nullcontext()


def average_gradients(module: nn.Module, ranks: Ranks) -> None:
    """All-reduce a module's gradients to their mean over ranks (a model not wrapped in DDP)."""
    if ranks.world == 1:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ranks.world


class RankBatches(Sampler[list[int]]):
    """This rank's rows of each global index batch of `batches` (a BatchSampler or any iterable)."""

    def __init__(self, batches, ranks: Ranks):
        self.batches, self.ranks = batches, ranks

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield list(batch)[self.ranks.load_rows(len(batch))]


def shuffled_batches(n: int, batch_size: int, seed: int, start: int = 0) -> Iterator[list[int]]:
    """Endless global index batches of an n-item dataset, whole batches only: epoch e is the
    permutation seeded by seed + e. Starting at batch `start` gives what an uninterrupted run
    would see from there (so a resumed run repeats no batch and skips none)."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"{n} items are fewer than batch_size={batch_size}: lower batch_size or add data")
    epoch, position = divmod(start, per_epoch)
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        for i in range(position, per_epoch):
            yield order[i * batch_size : (i + 1) * batch_size]
        epoch, position = epoch + 1, 0


def sequential_batches(n: int, batch_size: int, start: int = 0) -> Iterator[list[int]]:
    """Endless index batches start, start+1, ... (modulo n) of batch_size each."""
    index = start
    while True:
        yield [(index + j) % n for j in range(batch_size)]
        index += batch_size


def gather_rows(batch: T, ranks: Ranks) -> T:
    """Concatenate every rank's rows of a (nested dict / tuple / list of) [b,...] tensors in rank order
    -> the global batch on every rank."""
    if ranks.world == 1:
        return batch
    if isinstance(batch, torch.Tensor):
        send = batch.to(torch.uint8) if batch.dtype == torch.bool else batch  # gloo has no bool
        if dist.get_backend() == "nccl":
            send = send.cuda()
        parts = [torch.empty_like(send) for _ in range(ranks.world)]
        dist.all_gather(parts, send.contiguous())
        return cast(T, torch.cat(parts).to(batch.device, batch.dtype))  # the data pipeline stays where it was
    if isinstance(batch, dict):
        return cast(T, {k: gather_rows(v, ranks) for k, v in batch.items()})
    if isinstance(batch, (tuple, list)):
        return cast(T, type(batch)(gather_rows(v, ranks) for v in batch))
    raise TypeError(f"cannot gather a batch item of type {type(batch).__name__}")


def take_rows(batch: T, rows: slice) -> T:
    """The same rows of every [B,...] tensor of a (nested dict / tuple / list) batch."""
    if isinstance(batch, torch.Tensor):
        return cast(T, batch[rows])
    if dataclasses.is_dataclass(batch):  # e.g. a Context: every field has the batch axis first
        return cast(
            T,
            dataclasses.replace(
                cast("DataclassInstance", batch),
                **{f.name: take_rows(getattr(batch, f.name), rows) for f in dataclasses.fields(batch)},
            ),
        )
    if isinstance(batch, dict):
        return cast(T, {k: take_rows(v, rows) for k, v in batch.items()})
    if isinstance(batch, (tuple, list)):
        return cast(T, type(batch)(take_rows(v, rows) for v in batch))
    if batch is None:
        return batch
    raise TypeError(f"cannot take rows of a batch item of type {type(batch).__name__}")


def mean_over_ranks(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """A tensor of logged values averaged over ranks in one all-reduce (a float CPU copy)."""
    value = value.detach().float().cpu().clone()
    if ranks.world > 1:
        dist.all_reduce(value)
        value /= ranks.world
    return value
