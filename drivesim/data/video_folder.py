"""Real driving videos with BDD100K/Scalabel labels as a streaming clip dataset.

A folder (searched recursively) of videos, each with a same-stem `.json` Scalabel video
label file beside it (optional), and of image sequences (one folder of frames per clip, or the
BDD100K MOT layout: drivesim.data.frame_folders), sampled the same way. Clips are indexed from
container metadata only; a clip is decoded by seeking to the keyframe before it and decoding
forward just far enough, so a long video is never read into memory. Frames are resampled to the
target fps (nearest source frame), centre-cropped to 1:2 (H:W) and resized. A clip that runs
past the end of the video repeats its last decoded frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.error
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from drivesim.data.clips import center_crop_to_aspect, num_clips, resample_indices, transform_box
from drivesim.data.conditions import (
    CROWDEDNESS,
    MAX_BOXES,
    Conditions,
    clip_conditions,
    crowdedness_of_count,
    to_image_conditions,
)
from drivesim.data.frame_folders import FrameSequence, find_frame_folders, probe_frame_folder
from drivesim.data.labels import TIME_OF_DAY_FROM_BDD, Box, FrameLabel, read_scalabel
from drivesim.data.procedural import frames_to_tensor

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")


class VideoReadError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    num_frames: int
    labels: dict[int, FrameLabel] | None  # by frame index; None when there is no label file

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def read_frames(self, indices: list[int]) -> list[np.ndarray]:
        """RGB uint8 frames at the given indices (decoding from the seek point only)."""
        return decode_frames(self.path, indices, self.fps)


def probe_video(path: Path) -> VideoInfo:
    """Frame rate and frame count from container metadata (no decoding)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(cast(Fraction, stream.average_rate or stream.guessed_rate))
            frames = stream.frames
            if not frames and stream.duration is not None:
                assert stream.time_base is not None  # every stream of an opened container has one
                frames = int(stream.duration * stream.time_base * fps)
    except (av.error.FFmpegError, IndexError, OSError) as e:
        raise VideoReadError(f"{path}: cannot read video ({e}); is the file complete?") from e
    if not fps or not frames:
        raise VideoReadError(f"{path}: no frame rate / frame count in the container")
    label_path = path.with_suffix(".json")
    labels = None
    if label_path.exists():
        labels = {f.frame_index: f for f in read_scalabel(label_path)}
    return VideoInfo(path, fps, int(frames), labels)


def decode_frames(path: Path, indices: list[int], fps: float) -> list[np.ndarray]:
    """RGB uint8 frames at the given (sorted) indices, decoding only from the seek point."""
    wanted = sorted(set(indices))
    got: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.time_base is not None  # every stream of an opened container has one
            start = stream.start_time or 0
            target = start + int(wanted[0] / fps / stream.time_base)
            container.seek(target, stream=stream, backward=True, any_frame=False)
            last = None
            for frame in container.decode(stream):
                assert frame.pts is not None  # frames decoded from a container carry their timestamp
                index = round(float((frame.pts - start) * stream.time_base) * fps)
                if index > wanted[-1]:
                    break
                last = frame
                if index in wanted:
                    got[index] = frame.to_ndarray(format="rgb24")
            if last is not None and len(got) < len(wanted):  # ran past the end: repeat last
                tail = last.to_ndarray(format="rgb24")
                for index in wanted:
                    got.setdefault(index, tail)
    except av.error.FFmpegError as e:
        raise VideoReadError(f"{path}: decoding failed ({e})") from e
    if len(got) < len(wanted):
        raise VideoReadError(f"{path}: frames {wanted} not found")
    return [got[i] for i in indices]


def iter_frames(
    source: VideoInfo | FrameSequence, indices: list[int], chunk: int = 32
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, uint8 RGB [H,W,3]) of a clip's frames at `indices`, decoded `chunk` at a time so a long
    video never sits in memory whole."""
    for start in range(0, len(indices), chunk):
        part = indices[start : start + chunk]
        yield from zip(part, source.read_frames(part))


def find_sources(root: str | Path, source_fps: float | None = None) -> list[VideoInfo | FrameSequence]:
    """Every clip under root: video files (+ same-stem labels) and image-sequence folders (frame rate
    source_fps, else from their labels); root may also be one video file or one frame folder."""
    root = Path(root)
    if root.is_file():
        return [probe_video(root)]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such video folder or file")
    videos = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    sources = [probe_video(p) for p in videos]
    sources += [probe_frame_folder(f, source_fps) for f in find_frame_folders(root, VIDEO_SUFFIXES)]
    if not sources:
        raise FileNotFoundError(
            f"{root}: no videos ({', '.join(VIDEO_SUFFIXES)}) and no folders of frame "
            "images (.jpg/.png) in this folder"
        )
    return sources


class VideoFolderDataset(Dataset):
    """Clips [T,3,H,W] in [-1,1] (image mode: [3,H,W]) + conditions from real videos or frame folders."""

    def __init__(
        self,
        root: str | Path,
        num_frames: int = 8,
        fps: float = 30.0,
        size: tuple[int, int] = (128, 256),
        stride_s: float = 1.0,
        image_mode: bool = False,
        max_boxes: int = MAX_BOXES,
        crowdedness: str | None = None,
        source_fps: float | None = None,
    ):
        if crowdedness not in (None, *CROWDEDNESS):
            raise ValueError(f"crowdedness={crowdedness!r}: use one of {CROWDEDNESS} or None")
        self.num_frames = 1 if image_mode else num_frames
        self.fps, self.size, self.image_mode = fps, (size[0], size[1]), image_mode
        self.max_boxes, self.crowdedness = max_boxes, crowdedness
        self.videos = find_sources(root, source_fps)
        self.index: list[tuple[int, float]] = []
        for v, info in enumerate(self.videos):
            n = num_clips(info.duration_s, self.num_frames, fps, stride_s)
            self.index += [(v, k * stride_s) for k in range(n)]

    def __len__(self) -> int:
        return len(self.index)

    def _crowdedness(self, label: FrameLabel | None) -> str | None:
        value = (label.attributes.get("crowdedness") if label else None) or self.crowdedness
        if value is None or value in CROWDEDNESS:
            return value
        return crowdedness_of_count(int(value))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Conditions]:
        """-> frames [T,3,H,W] float in [-1,1] and the condition dict."""
        if not 0 <= i < len(self.index):
            raise IndexError(f"index {i} out of range for {len(self.index)} clips")
        v, start_s = self.index[i]
        info = self.videos[v]
        indices = [
            min(j, info.num_frames - 1)
            for j in resample_indices(info.fps, self.fps, start_s, self.num_frames)
        ]
        raw = info.read_frames(indices)
        crop = center_crop_to_aspect(*raw[0].shape[:2], aspect_w_over_h=self.size[1] / self.size[0])
        y0, y1, x0, x1 = crop
        out = np.stack(
            [
                cv2.resize(f[y0:y1, x0:x1], (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
                for f in raw
            ]
        )
        labels = [info.labels.get(j) if info.labels else None for j in indices]
        known = all(lab is not None and lab.boxes is not None for lab in labels)
        boxes = None
        if known:
            boxes = [
                [b for b in (transform_box(b, crop, self.size) for b in cast("list[Box]", lab.boxes)) if b]
                for lab in cast("list[FrameLabel]", labels)  # all there, with boxes (known)
            ]
        first = labels[0]
        tod = TIME_OF_DAY_FROM_BDD.get(first.attributes.get("timeofday", "")) if first else None
        cond = clip_conditions(
            boxes,
            self.size,
            tod,
            self._crowdedness(first),
            self.fps,
            max_boxes=self.max_boxes,
            num_frames=self.num_frames,
        )
        frames = frames_to_tensor(out)
        if self.image_mode:
            return frames[0], to_image_conditions(cond)
        return frames, cond
