"""Atomic H.264 mp4 writing with PyAV: frames stream in, the file appears only when complete."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Self

import av
import numpy as np


class Mp4Writer:
    """Context manager: `write(frame)` uint8 RGB [H,W,3]; renamed into place on clean exit."""

    def __init__(self, path: str | Path, fps: float, crf: int = 18):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp.mp4",
                                        dir=self.path.parent)
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
                os.replace(self.tmp, self.path)
        finally:
            Path(self.tmp).unlink(missing_ok=True)


def write_mp4(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Write uint8 RGB frames [T,H,W,3] to an H.264 mp4, atomically."""
    with Mp4Writer(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
