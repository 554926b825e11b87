"""The rollout's writer thread: parts and states in order, the state saved being the one of its
segment (the live state has moved on), errors raised in the main thread, a bounded queue."""

import threading

import numpy as np
import pytest
import torch

from drivesim.pipelines.rollout import RolloutState
from drivesim.pipelines.segment_writer import SegmentJob, SegmentWriter, snapshot


def frames(value: int) -> np.ndarray:
    return np.full((2, 16, 32, 3), value, np.uint8)


def test_parts_and_the_state_of_each_segment_are_written_in_order(tmp_path):
    saved = []
    live = RolloutState(0, torch.zeros(1), {"decoder_x": torch.zeros(2)})

    go = threading.Event()

    def save(state):
        go.wait(10)  # every segment is made before the first state is saved
        saved.append((state.next_segment, state.context.item(), state.decoder["decoder_x"][0].item()))

    with SegmentWriter(tmp_path, 30.0, save, depth=3) as writer:
        for index in range(3):
            live.next_segment, live.context = index + 1, live.context + 1  # what a segment does
            live.decoder["decoder_x"] += 1  # in place: the snapshot must not see later segments
            writer.put(SegmentJob(index, frames(10 * index), None, snapshot(live)))
        go.set()
    assert saved == [(1, 1.0, 1.0), (2, 2.0, 2.0), (3, 3.0, 3.0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"part-{i:05d}.mp4" for i in range(3)]
    assert writer.done() == [0, 1, 2] and writer.seconds > 0


def test_an_error_in_the_writer_is_raised_in_the_main_thread_and_nothing_after_it_is_written(tmp_path):
    def save(state):
        if state.next_segment == 2:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), SegmentWriter(tmp_path, 30.0, save) as writer:
        for index in range(4):
            writer.put(SegmentJob(index, frames(0), None, RolloutState(index + 1)))
            writer.wait()
    assert writer.done() == [0]  # segment 1's part is on disk but its state is not: a resume redoes it


def test_at_most_one_segment_waits_while_one_is_written(tmp_path):
    release, started = threading.Event(), threading.Event()

    def slow_save(state):
        started.set()
        release.wait(10)

    with SegmentWriter(tmp_path, 30.0, slow_save, depth=1) as writer:
        writer.put(SegmentJob(0, frames(0), None, RolloutState(1)))
        assert started.wait(10)  # segment 0 is being written
        writer.put(SegmentJob(1, frames(0), None, RolloutState(2)))  # one waits in the queue
        third = threading.Thread(target=writer.put, args=(SegmentJob(2, frames(0), None, RolloutState(3)),))
        third.start()
        third.join(0.5)
        assert third.is_alive()  # the third blocks: the queue is bounded
        release.set()
        third.join(10)
    assert writer.done() == [0, 1, 2]
