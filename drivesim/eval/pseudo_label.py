"""`drivesim label`: pseudo-labels for real footage (videos, frame folders, BDD100K MOT layout).

Per processed frame (every `every`-th): YOLOX-nano detections (drivesim.eval.detector) of people,
bicycles, cars, motorcycles, buses and trucks, optionally plus the road-band tiles
(detect_road_band: small and night cars); track ids from ByteTrack; time of day from the frame's
mean Rec.601 luma (0-255): >= DAY_MIN_LUMA is 'daytime', below is 'night' (the Udacity highway
clip's frames lie at 88-129, the procedural world's day at ~133 and its night at ~39; dusk
counts as day like TIME_OF_DAY_FROM_BDD does); crowdedness from the frame's vehicle count
(car/bus/truck at >= min_score) via crowdedness_of_count.

Output, per clip, in DIR: `<stem>.json`, a Scalabel video label list (the same stem as the clip,
so it can sit beside a copy of the video or frame folder and be read by find_sources), and
`<stem>.meta.json` (detector path + sha256, settings). Both are written atomically. Pseudo-labels
are marked: frame attribute `"labels": "pseudo"`, and `"pseudo": true, "score": s` in each
label's attributes. Frames skipped by `every` are written without a "labels" key (boxes unknown,
not empty); their attributes are their last processed frame's (less its luma). Categories are written with
BDD100K's names (COCO's person -> pedestrian).

Tracker: supervision's ByteTrack, pinned to supervision 0.30.x. Compared (pip, May 2026):
- norfair 2.3.0 requires numpy<2 and rich<15: it would downgrade our numpy 2.x.
- motpy 0.0.10 (numpy, scipy, filterpy) installs cleanly but has had no release since 2021.
- supervision (Roboflow, maintained): ByteTrack, which also uses low-score detections to keep
  tracks alive (night footage). Up to 0.29 it requires opencv-python, which overwrites our
  opencv-python-headless's cv2; 0.30 dropped that (adds scipy, matplotlib, defusedxml,
  pydeprecate); 0.31 removed ByteTrack for the `trackers` package, which requires
  opencv-python again. Hence supervision>=0.30,<0.31 (ByteTrack is marked deprecated there;
  its warning is silenced). Move to `trackers` once it accepts headless OpenCV.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from drivesim.data.catalog import sha256_file
from drivesim.data.conditions import crowdedness_of_count
from drivesim.data.labels import Box, FrameLabel, to_scalabel
from drivesim.data.video_folder import find_sources, iter_frames
from drivesim.eval.detector import (
    MERGE_GROUPS,
    ROAD_BAND,
    VEHICLES,
    Detection,
    Detector,
    detect_road_band,
)
from drivesim.utils import write_json_atomic

DAY_MIN_LUMA = 60.0  # mean Rec.601 luma (0-255) of a daytime frame
TRACK_MIN_SCORE = 0.1  # detections the tracker sees (ByteTrack re-finds tracks with 0.1-0.25 ones)
TRACK_HIGH_SCORE = 0.5  # what a label's least score (min_score) is scaled to for ByteTrack
LOST_TRACK_S = 1.0  # a track unmatched this long ends
CATEGORY_NAMES = {"person": "pedestrian"}  # COCO -> BDD100K names (others are the same)


class PseudoLabelError(ValueError):
    """Labelling cannot go ahead (e.g. it would overwrite labels it did not write)."""


def time_of_day_of(frame_rgb: np.ndarray) -> tuple[str, float]:
    """uint8 RGB [H,W,3] -> ('daytime' | 'night', mean Rec.601 luma on 0-255)."""
    luma = float(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY).mean())
    return ("daytime" if luma >= DAY_MIN_LUMA else "night"), luma


class TrackIds:
    """ByteTrack per MERGE_GROUPS group (a car never continues a pedestrian's track), with one id
    space per clip. update(detections of a frame) -> an id per detection; a detection no track
    took gets a fresh id of its own (ids are unique, never -1).

    Labels are written after the whole clip, so a track is named from its first frame on: ids come
    from ByteTrack's internal track ids, including the not yet confirmed tracks that its online
    output leaves out (a track it never confirms keeps its id for one frame only).

    ByteTrack's gates (new track at score >= 0.35; a match needs IoU x score above 0.2, a new
    track's confirmation above 0.3) assume real objects score near 1; YOLOX-nano's cars score
    0.3-0.9, so the tracker sees scores x `score_scale` (capped at 1). On the Udacity clip (every
    frame, labels at >= 0.3) a scale of 0.5 / 0.3 cut one-box tracks from 264 to 117 of 1,963 boxes."""

    def __init__(self, fps: float, score_scale: float = 1.0):
        import supervision as sv

        with warnings.catch_warnings():  # ByteTrack is deprecated in supervision 0.30: see the module doc
            warnings.simplefilter("ignore")
            self.trackers = {
                group: sv.ByteTrack(frame_rate=fps, lost_track_buffer=round(30 * LOST_TRACK_S))
                for group in sorted(set(MERGE_GROUPS.values()))
            }
        self._iou = sv.box_iou_batch
        self.score_scale = score_scale
        self.ids: dict[tuple[str, int], int] = {}
        self.next_id = 1

    def update(self, detections: list[Detection]) -> list[int]:
        """One frame's detections (in any order) -> their track ids. Call once per processed frame."""
        ids = [0] * len(detections)
        for group, tracker in self.trackers.items():
            picked = [i for i, d in enumerate(detections) if MERGE_GROUPS.get(d.category) == group]
            boxes = np.array(
                [
                    [
                        detections[i].x1,
                        detections[i].y1,
                        detections[i].x2,
                        detections[i].y2,
                        min(1.0, detections[i].score * self.score_scale),
                    ]
                    for i in picked
                ],
                np.float32,
            ).reshape(-1, 5)
            tracker.update_with_tensors(boxes)  # every group steps every frame: lost tracks age
            live = [t for t in tracker.tracked_tracks if t.frame_id == tracker.frame_id]
            if not picked or not live:
                continue
            overlap = self._iou(boxes[:, :4], np.array([t.tlbr for t in live]).reshape(-1, 4))
            taken = set()  # greedy one-to-one, best overlap first
            for d, t in sorted(np.argwhere(overlap >= 0.5), key=lambda dt: -overlap[dt[0], dt[1]]):
                if ids[picked[d]] == 0 and t not in taken:
                    taken.add(t)
                    ids[picked[d]] = self._global(group, live[t].internal_track_id)
        return [i or self._fresh() for i in ids]

    def _global(self, group: str, track: int) -> int:
        if (group, track) not in self.ids:
            self.ids[(group, track)] = self._fresh()
        return self.ids[(group, track)]

    def _fresh(self) -> int:
        self.next_id += 1
        return self.next_id - 1


@dataclass
class ClipSummary:
    """What labelling one clip wrote."""

    labels: Path
    frames: int  # frames in the clip
    processed: int  # frames detected on (the others have unknown boxes)
    frames_with_car: int  # processed frames with >= 1 car box
    boxes: int
    tracks: int
    per_class: dict[str, int] = field(default_factory=dict)  # boxes per BDD100K category


def touches_frame_edge(d: Detection, height: int, width: int) -> bool:
    """Whether a (frame-clipped) detection reaches the frame's border, within max(2 px, 0.5 %) of
    the side (a detector's box edge wanders by that much): Scalabel's `truncated`."""
    mx, my = max(2.0, 0.005 * width), max(2.0, 0.005 * height)
    return d.x1 <= mx or d.y1 <= my or d.x2 >= width - mx or d.y2 >= height - my


def label_frames(
    source,
    detector: Detector,
    every: int = 1,
    road_band: bool = False,
    min_score: float = 0.3,
    bar: tqdm | None = None,
) -> tuple[list[FrameLabel], dict]:
    """One clip (VideoInfo / FrameSequence) -> (a FrameLabel per frame, scores {frame: [score per
    box]}); frames not processed have boxes None."""
    tracks = TrackIds(source.fps / every, score_scale=TRACK_HIGH_SCORE / min_score)
    indices = list(range(0, source.num_frames, every))
    known = {int(i): lab for i, lab in (source.labels or {}).items()}
    out: dict[int, FrameLabel] = {}
    scores: dict[int, list[float]] = {}
    for index, frame in iter_frames(source, indices):
        found = detect_road_band(detector, frame) if road_band else detector.detect(frame)
        found = [d for d in found if d.score >= TRACK_MIN_SCORE]
        ids = tracks.update(found)
        kept = [(d, i) for d, i in zip(found, ids) if d.score >= min_score]
        tod, luma = time_of_day_of(frame)
        vehicles = sum(d.category in VEHICLES for d, _ in kept)
        attributes = {
            **(known[index].attributes if index in known else {}),
            "timeofday": tod,
            "crowdedness": crowdedness_of_count(vehicles),
            "labels": "pseudo",
            "luma": f"{luma:.1f}",
        }
        height, width = frame.shape[:2]
        boxes = [
            Box(
                round(d.x1, 2),
                round(d.y1, 2),
                round(d.x2, 2),
                round(d.y2, 2),
                CATEGORY_NAMES.get(d.category, d.category),
                i,
                truncated=touches_frame_edge(d, height, width),
            )
            for d, i in kept
        ]
        out[index] = FrameLabel(index, boxes, attributes)
        scores[index] = [round(d.score, 4) for d, _ in kept]
        if bar is not None:
            bar.update(1)
    frames, last = [], None
    for index in range(source.num_frames):
        last = out.get(index, last)
        assert last is not None  # frame 0 is always processed
        carried = {k: v for k, v in last.attributes.items() if k != "luma"}  # luma was not measured
        frames.append(out[index] if index in out else FrameLabel(index, None, carried))
    return frames, scores


def scalabel_entries(source, frames: list[FrameLabel], scores: dict[int, list[float]]) -> list[dict]:
    """FrameLabels -> Scalabel entries with the pseudo marks, timestamps (ms) and, for frame folders,
    each frame's own file name."""
    stem = clip_stem(source)
    entries = to_scalabel(frames, stem)
    files = getattr(source, "files", None)
    for entry in entries:
        index = entry["frameIndex"]
        entry["timestamp"] = round(index * 1000 / source.fps, 3)
        if files is not None:
            entry["name"] = f"{stem}/{files[index].name}"
        for label, score in zip(entry.get("labels", []), scores.get(index, [])):
            label["attributes"].update(pseudo=True, score=score)
    return entries


def clip_stem(source) -> str:
    """The label file stem find_sources pairs with this clip (video stem / folder name)."""
    return source.path.with_suffix("").name


def check_writable(target: Path) -> None:
    """Refuse to replace a label file that is not a pseudo-label file (e.g. human labels)."""
    if not target.exists():
        return
    try:
        entries = json.loads(target.read_text())
        ours = all((e.get("attributes") or {}).get("labels") == "pseudo" for e in entries)
    except (json.JSONDecodeError, AttributeError, TypeError):
        ours = False
    if not ours:
        raise PseudoLabelError(
            f"{target} exists and is not a pseudo-label file; pick another --out "
            "(drivesim label never overwrites other labels)"
        )


def label_sources(
    input: str | Path,
    out: str | Path,
    every: int = 1,
    road_band: bool = False,
    source_fps: float | None = None,
    detector: str | Path | None = None,
    min_score: float = 0.3,
    progress: bool = True,
) -> list[ClipSummary]:
    """Pseudo-label every clip under `input` (a video, a folder of videos / frame folders, BDD100K
    MOT) into `out`/<stem>.json + <stem>.meta.json; returns what was written per clip."""
    from importlib.metadata import version

    if every < 1 or not 0 < min_score <= 1:
        raise PseudoLabelError(f"every={every}, min_score={min_score}: use every >= 1 and 0 < min_score <= 1")
    sources = find_sources(input, source_fps)
    out = Path(out)
    by_stem: dict[str, Path] = {}
    for source in sources:
        stem = clip_stem(source)
        if stem in by_stem:
            raise PseudoLabelError(
                f"{by_stem[stem]} and {source.path} would both write {out / stem}.json; "
                "label them into different --out folders"
            )
        by_stem[stem] = source.path
        check_writable(out / f"{stem}.json")
    net = Detector(detector, conf=min(TRACK_MIN_SCORE, min_score))
    out.mkdir(parents=True, exist_ok=True)
    weights = {
        "path": str(net.path.resolve()),
        "sha256": sha256_file(net.path),
        "conf": net.conf,
        "nms_iou": net.nms_iou,
    }
    meta = {
        "pseudo_labels": True,
        "detector": weights,
        "tracker": f"supervision {version('supervision')} ByteTrack",
        "every": every,
        "min_score": min_score,
        "road_band": list(ROAD_BAND) if road_band else None,
        "timeofday": f"mean Rec.601 luma >= {DAY_MIN_LUMA:g} (0-255): daytime, else night",
        "crowdedness": "crowdedness_of_count(car/bus/truck boxes of the frame)",
    }
    summaries = []
    total = sum(len(range(0, s.num_frames, every)) for s in sources)
    with tqdm(total=total, unit="frame", desc="label", disable=not progress) as bar:
        for source in sources:
            frames, scores = label_frames(source, net, every, road_band, min_score, bar)
            stem = clip_stem(source)
            entries = scalabel_entries(source, frames, scores)
            processed = [f.boxes for f in frames if f.boxes is not None]  # the boxes of each processed frame
            summary = ClipSummary(
                out / f"{stem}.json",
                len(frames),
                len(processed),
                sum(any(b.category == "car" for b in boxes) for boxes in processed),
                sum(len(boxes) for boxes in processed),
                len({b.track_id for boxes in processed for b in boxes}),
                dict(sorted(Counter(b.category for boxes in processed for b in boxes).items())),
            )
            write_json_atomic(
                {
                    **meta,
                    "source": str(Path(source.path).resolve()),
                    "fps": source.fps,
                    "frames": summary.frames,
                    "processed_frames": summary.processed,
                },
                out / f"{stem}.meta.json",
                indent=2,
            )
            write_json_atomic(entries, summary.labels)
            summaries.append(summary)
    return summaries
