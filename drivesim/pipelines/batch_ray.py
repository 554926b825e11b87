"""The Ray backend of the catalog batch: one task per clip on Ray actors that each load the
models once. Workers render into a local temporary folder and send the mp4 and label bytes back;
the driver alone writes the catalog (same atomic commits as the local backend), so workers
need no shared filesystem, only the model folder at the same path. A task whose worker dies
is retried once on a restarted actor; a clip that raises is recorded as failed like locally.

Multi-node: `ray start --head` on one machine, `ray start --address=HEAD:6379` on the others,
then on the head `drivesim generate ... --catalog --backend ray --ray-address HEAD:6379
--workers N`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import cast

import torch
from tqdm import tqdm

from drivesim.export.catalog import CatalogWriter
from drivesim.pipelines.batch import (
    BatchOptions,
    ClipResult,
    RenderedClip,
    commit_clip,
    fail_clip,
    model_hashes,
    render_clip,
)
from drivesim.pipelines.rollout_job import render_settings, rollout_cascade
from drivesim.pipelines.rollout_meta import RolloutMeta
from drivesim.scenario_expand import ClipSpec


class ClipWorker:
    """A Ray actor's state: the cascade, loaded once; render(clip) -> (meta, labels, seconds, bytes)."""

    def __init__(self, model_dir: str, options: BatchOptions, device: str, sizes: list, threads: int):
        torch.set_num_threads(threads)  # the driver's count: the same arithmetic, the same frames
        self.options, self.device = options, device
        self.cascade = rollout_cascade(model_dir, options.rollout, render_settings(options, device), sizes)
        self.model_hashes = model_hashes(model_dir, self.cascade)

    def hashes(self) -> dict[str, str]:
        return self.model_hashes

    def render(self, clip: ClipSpec) -> tuple[RolloutMeta, list, float, bytes, bytes]:
        work = Path(tempfile.mkdtemp(prefix="drivesim-ray-"))
        try:
            out = render_clip(clip, self.cascade, self.options, work, self.device)
            return out.meta, out.labels, out.seconds, out.mp4.read_bytes(), out.label_file.read_bytes()
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _error(err: Exception) -> Exception:
    """The clip's own exception inside a RayTaskError (its message without Ray's traceback)."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, Exception) else err


def run_on_ray(
    todo: list[ClipSpec],
    writer: CatalogWriter,
    options: BatchOptions,
    model_dir: str | Path,
    device: str,
    work: Path,
    progress: bool,
    workers: int = 2,
    address: str | None = None,
) -> list[ClipResult]:
    """Every clip as a task on `workers` actors; committed by this process as each one returns."""
    import ray
    from ray.actor import ActorHandle

    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address,
            num_cpus=None if address else workers,
            include_dashboard=False,
            log_to_driver=False,
        )
    actor = ray.remote(num_cpus=1, max_restarts=1, max_task_retries=1)(ClipWorker)
    sizes = [tuple(c.scenario.output.resolution) for c in todo]
    actors = [
        actor.remote(str(model_dir), options, device, sizes, torch.get_num_threads())
        for _ in range(min(workers, len(todo)))
    ]
    try:
        hashes: dict[str, str] = ray.get(actors[0].hashes.remote())  # a model folder problem stops here
        queue, in_flight, results = list(todo), {}, []

        def submit(a) -> None:  # the next clip to a free actor
            clip = queue.pop(0)
            in_flight[a.render.remote(clip)] = (clip, a, time.perf_counter())

        for a in actors:
            submit(a)
        bar = tqdm(total=len(todo), desc="catalog (ray)", unit="clip", disable=not progress)
        while in_flight:
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            clip, a, start = in_flight.pop(ref)
            try:
                meta, labels, seconds, mp4, label_bytes = ray.get(ref)
                (work / f"{clip.clip_id}.mp4").write_bytes(mp4)
                (work / f"{clip.clip_id}.json").write_bytes(label_bytes)
                rendered = RenderedClip(
                    meta, labels, seconds, work / f"{clip.clip_id}.mp4", work / f"{clip.clip_id}.json"
                )
                results.append(commit_clip(writer, clip, rendered, hashes))
            except Exception as e:  # recorded and retried on the next run, as in the local backend
                results.append(fail_clip(writer, clip, _error(e), time.perf_counter() - start))
            bar.update(1)
            if queue:
                submit(a)
        bar.close()
        return results
    finally:
        for a in actors:
            ray.kill(cast(ActorHandle, a))
        if started:
            ray.shutdown()
