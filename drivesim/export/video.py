"""Atomic H.264 mp4 writing with PyAV: frames stream in, the file appears only when complete."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Self

import av
import numpy as np

from drivesim.utils import publish


class Mp4Writer:
    """Context manager: `write(frame)` uint8 RGB [H,W,3]; renamed into place on clean exit."""

    def __init__(self, path: str | Path, fps: float, crf: int = 18):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp.mp4", dir=self.path.parent)
        os.close(fd)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.crf = crf
        self.container = av.open(self.tmp, mode="w", format="mp4")
        self.stream = None
        self.frames_written = 0

    def _open_stream(self, height: int, width: int) -> None:
        if height % 2 or width % 2:
            raise ValueError(f"H.264 (yuv420p) needs even frame sizes, got {height}x{width}")
        self.stream = self.container.add_stream("libx264", rate=self.fps)
        self.stream.height, self.stream.width = height, width
        self.stream.pix_fmt = "yuv420p"
        # One thread keeps the bitstream identical across machines and runs.
        self.stream.options = {"crf": str(self.crf), "preset": "medium", "threads": "1"}

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 RGB frame [H,W,3]."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected uint8 [H,W,3] RGB, got {frame.dtype} {frame.shape}")
        if self.stream is None:
            self._open_stream(*frame.shape[:2])
        assert self.stream is not None  # opened just above for the first frame
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self.container.mux(packet)
        self.frames_written += 1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self.stream is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
            self.container.close()
            if exc_type is None:
                if self.frames_written == 0:
                    raise ValueError(f"{self.path}: no frames were written")
                publish(self.tmp, self.path)
        finally:
            Path(self.tmp).unlink(missing_ok=True)


def write_mp4(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Write uint8 RGB frames [T,H,W,3] to an H.264 mp4, atomically."""
    with Mp4Writer(path, fps) as writer:
        for frame in frames:
            writer.write(frame)


def concat_mp4(parts: list[Path], path: str | Path) -> int:
    """Join mp4 parts of one stream into `path` without re-encoding (packet remux), atomically;
    returns the number of video packets (frames) written."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.mp4", dir=path.parent)
    os.close(fd)
    frames = 0
    try:
        with av.open(tmp, mode="w", format="mp4") as dst:
            out_stream, next_dts = None, None
            for part in parts:
                with av.open(str(part)) as src:
                    stream = src.streams.video[0]
                    if out_stream is None:
                        out_stream = dst.add_stream_from_template(stream)
                    shift = None
                    for packet in src.demux(stream):
                        if packet.dts is None:  # the demuxer's final flush packet
                            continue
                        if shift is None:  # this part's first decode time follows the last one
                            shift = 0 if next_dts is None else next_dts - packet.dts
                        assert (
                            packet.pts is not None and packet.duration is not None
                        )  # mp4 packets carry both
                        packet.pts += shift
                        packet.dts += shift
                        next_dts = packet.dts + packet.duration
                        packet.stream = out_stream
                        dst.mux(packet)
                        frames += 1
        publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return frames
