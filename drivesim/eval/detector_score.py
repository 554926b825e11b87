"""`drivesim eval detector`: does a real-photo detector agree with a clip set's box labels?

Per time of day: the box hit rate (labelled boxes >= 24 px high and >= half visible, matched by
a car/bus/truck detection with IoU >= 0.5 at confidence >= 0.3), AP50 of the detector against
those labels (the "YOLO score" of layout-conditioned generators; smaller or hidden labelled
boxes are ignored, neither true nor false), the share of frames with a vehicle, and a Frechet
distance to a reference set on the detector's own backbone features (frames centre-cropped
to 1:2, so 16:9 footage and 1:2 clips are compared alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from drivesim.data.clips import center_crop_to_aspect
from drivesim.data.conditions import BOX_CLASSES
from drivesim.data.labels import TIME_OF_DAY_FROM_BDD, Box
from drivesim.data.video_folder import find_sources, iter_frames
from drivesim.eval.detector import MERGE_GROUPS, VEHICLES, Detection, Detector, detect_road_band, iou
from drivesim.eval.frechet import FeatureStats, frechet_from_stats
from drivesim.utils import to_uint8

MIN_BOX_HEIGHT_PX = 24
MIN_VISIBILITY = 0.5
HIT_IOU = 0.5
HIT_CONF = 0.3
AP_CONF = 0.05  # detections kept for the precision-recall curve


def eligible(box: Box, categories=VEHICLES) -> bool:
    """A labelled box of `categories` the detector is expected to find (large and visible enough)."""
    return (
        box.category in categories
        and box.y2 - box.y1 >= MIN_BOX_HEIGHT_PX
        and box.visibility >= MIN_VISIBILITY
    )


# A label's category -> the detector's merge group (MERGE_GROUPS) whose detections hit it: a truck
# found as a car is found (what the vehicle figures always counted), a pedestrian needs a person.
LABEL_GROUPS = {
    "car": "vehicle",
    "truck": "vehicle",
    "bus": "vehicle",
    "bicycle": "two-wheeler",
    "motorcycle": "two-wheeler",
    "pedestrian": "person",
    "rider": "person",
}


def average_precision(scored: list[tuple[float, bool]], positives: int) -> float | None:
    """All-point interpolated AP from (score, is_true_positive) pairs over `positives` labels."""
    if positives == 0:
        return None
    ranked = sorted(scored, key=lambda s: -s[0])
    tp = np.cumsum([t for _, t in ranked], dtype=np.float64)
    fp = np.cumsum([not t for _, t in ranked], dtype=np.float64)
    recall = np.concatenate([[0.0], tp / positives, [1.0]]) if ranked else np.array([0.0, 1.0])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1), [0.0]]) if ranked else np.zeros(2)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * precision[1:]))


@dataclass
class DetectorTally:
    """Running counts of one group of frames (a time of day)."""

    frames: int = 0
    frames_with_vehicle: int = 0
    labelled_frames: int = 0
    eligible: int = 0
    hits: int = 0
    scored: list[tuple[float, bool]] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)  # backbone features [C] per frame
    per_class: dict[str, list[int]] = field(default_factory=dict)  # label category -> [boxes, hits]

    def add(self, detections: list[Detection], boxes: list[Box] | None) -> None:
        """One frame: its detections (conf >= AP_CONF) and labels (None = boxes unknown)."""
        vehicles = [d for d in detections if d.category in VEHICLES]
        self.frames += 1
        self.frames_with_vehicle += any(d.score >= HIT_CONF for d in vehicles)
        if boxes is None:
            return
        self.labelled_frames += 1
        for b in boxes:  # a hit: a detection of the label's group (for a vehicle: any vehicle class)
            if eligible(b, tuple(LABEL_GROUPS)):
                group = LABEL_GROUPS[b.category]
                hit = any(
                    d.score >= HIT_CONF and MERGE_GROUPS.get(d.category) == group and iou(d, b) >= HIT_IOU
                    for d in detections
                )
                self.count(b.category, 1, int(hit))
                self.hits += hit and b.category in VEHICLES
        targets = [b for b in boxes if eligible(b)]
        ignored = [b for b in boxes if not eligible(b)]
        self.eligible += len(targets)
        matched = set()
        for d in sorted(vehicles, key=lambda d: -d.score):  # greedy VOC matching
            best = max(range(len(targets)), key=lambda i: iou(d, targets[i]), default=None)
            if best is not None and best not in matched and iou(d, targets[best]) >= HIT_IOU:
                matched.add(best)
                self.scored.append((d.score, True))
            elif not any(iou(d, b) >= HIT_IOU for b in ignored):
                self.scored.append((d.score, False))

    def count(self, category: str, boxes: int, hits: int) -> None:
        """Add boxes and hits of one label category."""
        counts = self.per_class.setdefault(category, [0, 0])
        counts[0], counts[1] = counts[0] + boxes, counts[1] + hits

    def summary(self) -> dict:
        return {
            "frames": self.frames,
            "vehicle_frame_share": self.frames_with_vehicle / self.frames if self.frames else None,
            "labelled_frames": self.labelled_frames,
            "eligible_boxes": self.eligible if self.labelled_frames else None,  # None: no labelled frame
            "box_hits": self.hits if self.labelled_frames else None,
            "box_hit_rate": self.hits / self.eligible if self.eligible else None,
            "ap50": average_precision(self.scored, self.eligible),
            "per_class": {
                c: {"boxes": n, "hits": h, "hit_rate": h / n} for c, (n, h) in sorted(self.per_class.items())
            },
        }


def time_of_day(attributes: dict | None) -> str:
    """'day' | 'night' from a frame's Scalabel attributes ('unknown' when absent)."""
    return TIME_OF_DAY_FROM_BDD.get((attributes or {}).get("timeofday", ""), "unknown")


def crop_for_features(frame: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] -> its centre 1:2 (H:W) crop."""
    y0, y1, x0, x1 = center_crop_to_aspect(*frame.shape[:2])
    return frame[y0:y1, x0:x1]


def clip_sources(path: str | Path) -> list:
    """The clips (videos / frame folders + labels) of a folder, one video, or a catalog's media/."""
    path = Path(path)
    if (path / "meta" / "info.json").exists():
        path = path / "media"
    return find_sources(path)


def tally_set(
    path: str | Path,
    detector: Detector,
    every: int = 5,
    from_s: float = 0.0,
    features: bool = False,
    progress: bool = True,
    road_band: bool = False,
) -> dict[str, DetectorTally]:
    """Detect on every `every`-th frame (from `from_s` s on) of each clip -> tallies by time of day;
    road_band: also on tiles of the road band (detect_road_band: small and night cars)."""
    sources = clip_sources(path)
    tallies: dict[str, DetectorTally] = {}
    total = sum(len(range(int(from_s * s.fps), s.num_frames, every)) for s in sources)
    with tqdm(total=total, unit="frame", desc=f"detect {Path(path).name}", disable=not progress) as bar:
        for source in sources:
            indices = list(range(int(from_s * source.fps), source.num_frames, every))
            for index, frame in iter_frames(source, indices):
                label = (source.labels or {}).get(index)
                group = time_of_day(label.attributes if label else None)
                tally = tallies.setdefault(group, DetectorTally())
                detections = None
                if features:
                    crop = crop_for_features(frame)
                    found, feature = detector.detect_with_features(crop)
                    tally.features.append(feature)
                    if crop.shape == frame.shape and not road_band:  # a 1:2 frame is its own crop
                        detections = found
                if road_band:
                    detections = detect_road_band(detector, frame)
                elif detections is None:  # labels are of the full frame, so detect on it
                    detections = detector.detect(frame)
                tally.add(detections, label.boxes if label else None)
                bar.update(1)
    return tallies


def detector_report(
    path: str | Path,
    detector: Detector | None = None,
    reference: str | Path | None = None,
    reference_from_s: float = 0.0,
    every: int = 5,
    progress: bool = True,
    road_band: bool = False,
) -> dict:
    """Detector agreement of a clip set by time of day (+ 'all'), and its Frechet distance on the
    detector's backbone features to a reference set (real footage or world renders); road_band:
    the clip set's detections also come from tiles of the road band."""
    detector = detector or Detector(conf=AP_CONF)
    tallies = tally_set(
        path, detector, every, features=reference is not None, progress=progress, road_band=road_band
    )
    report = {"set": str(path), "detector": str(detector.path), "every": every, "groups": {}}
    report |= {"road_band": True} if road_band else {}
    groups = {**dict(sorted(tallies.items())), "all": merged(tallies.values())}
    for group, tally in groups.items():
        report["groups"][group] = tally.summary()
    if reference is not None:
        ref = merged(tally_set(reference, detector, every, reference_from_s, True, progress).values())
        report["reference"] = {"set": str(reference), "from_s": reference_from_s, **ref.summary()}
        for group, tally in groups.items():
            report["groups"][group]["frechet_to_reference"] = frechet(tally.features, ref.features)
    return report


def frechet(a: list[np.ndarray], b: list[np.ndarray]) -> float | None:
    """Frechet distance of two sets of features [C] (None when either has under 2)."""
    if len(a) < 2 or len(b) < 2:
        return None
    return frechet_from_stats(feature_stats(a), feature_stats(b))


def tally_clips(clips: list, detector: Detector) -> DetectorTally:
    """In-memory clips [(frames [T,3,H,W] in [-1,1], condition dict)] -> one tally; the labels are
    the conditions' boxes (normalised, class BOX_CLASSES, visibility unknown = 1)."""
    tally = DetectorTally()
    for frames, cond in clips:
        images = to_uint8(frames)
        h, w = images.shape[1:3]
        known = bool(cond["boxes_known"])
        for t, image in enumerate(images):
            boxes = None
            if known:
                boxes = [
                    Box(float(x1) * w, float(y1) * h, float(x2) * w, float(y2) * h, BOX_CLASSES[int(c)])
                    for (x1, y1, x2, y2), c, m in zip(
                        cond["boxes"][t], cond["box_class"][t], cond["box_mask"][t]
                    )
                    if m
                ]
            tally.add(detector.detect(image), boxes)
    return tally


def merged(tallies) -> DetectorTally:
    """One tally of several groups' counts and features."""
    out = DetectorTally()
    for t in tallies:
        out.frames += t.frames
        out.frames_with_vehicle += t.frames_with_vehicle
        out.labelled_frames += t.labelled_frames
        out.eligible += t.eligible
        out.hits += t.hits
        out.scored += t.scored
        out.features += t.features
        for c, (n, h) in t.per_class.items():
            out.count(c, n, h)
    return out


def feature_stats(features: list[np.ndarray]) -> FeatureStats:
    """Features [C] per frame -> their streaming Gaussian fit."""
    stats = FeatureStats()
    stats.update(torch.from_numpy(np.stack(features)))
    return stats
