"""Write a rollout's segments on a thread of their own while the next segment is made.

H.264 encoding (one libx264 thread, so files are identical across machines) and the state save
run beside the models instead of after them: `make demo` spends 0.02 of its 0.50 s/frame writing
on this CPU, and on a GPU, where the models are ~10x faster, writing would be a fifth of the time.
At most `depth` segments wait in the queue, so memory stays flat. The state saved after a part is
a snapshot taken when its segment was made: a resumed run starts after the last part on disk.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from drivesim.export.video import write_mp4
from drivesim.pipelines.rollout import RolloutState


@dataclasses.dataclass(frozen=True)
class SegmentJob:
    """One segment to write: its uint8 frames [T,H,W,3] (and base frames) and the state after it."""

    index: int
    frames: np.ndarray | None
    base: np.ndarray | None
    state: RolloutState


def snapshot(state: RolloutState) -> RolloutState:
    """A copy of the state that the next segment's work cannot change."""
    copy = {k: v.clone() for k, v in (state.decoder or {}).items()}
    upsampler = {k: v.clone() for k, v in state.upsampler.items()} if state.upsampler else state.upsampler
    context = state.context.clone() if state.context is not None else None
    return dataclasses.replace(state, context=context, decoder=copy or state.decoder, upsampler=upsampler)


class SegmentWriter:
    """Context manager: `put(job)` queues a segment; a thread writes parts/part-NNNNN.mp4 (and
    base-NNNNN.mp4), then `save_state(job.state)`; `done()` -> indices written since the last call.
    An error in the thread is raised by the next put() or on exit; on exit the queue is drained."""

    def __init__(self, parts: Path, fps: float, save_state: Callable[[RolloutState], None], depth: int = 1):
        if depth < 1:
            raise ValueError(f"depth={depth}: queue at least one segment")
        self.parts, self.fps, self.save_state = parts, fps, save_state
        self.jobs: queue.Queue[SegmentJob | None] = queue.Queue(maxsize=depth)
        self.written: queue.Queue[int] = queue.Queue()
        self.error: BaseException | None = None
        self.seconds = 0.0  # wall time spent writing (in the thread)
        self.thread = threading.Thread(target=self._run, name="segment-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.error is None:  # else drain: nothing after a failed part may be written
                self._write(job)
            self.jobs.task_done()
        self.jobs.task_done()

    def _write(self, job: SegmentJob) -> None:
        start = time.perf_counter()
        try:
            if job.frames is not None:
                write_mp4(self.parts / f"part-{job.index:05d}.mp4", job.frames, self.fps)
            if job.base is not None:
                write_mp4(self.parts / f"base-{job.index:05d}.mp4", job.base, self.fps)
            self.save_state(job.state)
            self.written.put(job.index)
        except BaseException as e:  # handed to the main thread
            self.error = e
        self.seconds += time.perf_counter() - start

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, job: SegmentJob) -> None:
        """Queue one segment (waits while `depth` segments are queued)."""
        self._raise()
        self.jobs.put(job)

    def wait(self) -> None:
        """Until every queued segment is written (the eager reference path writes in turn)."""
        self.jobs.join()
        self._raise()

    def done(self) -> list[int]:
        """Indices of the segments written since the last call, in order."""
        out = []
        while not self.written.empty():
            out.append(self.written.get())
        return out

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.jobs.put(None)  # what was queued is written, even when the main thread failed
        self.thread.join()
        if exc_type is None:
            self._raise()
