"""What the world's labels are made of: boxes, per-frame labels, the Scalabel time-of-day
names and the crowdedness buckets as car counts. drivesim.data reads and writes them."""

from __future__ import annotations

from dataclasses import dataclass, field

BDD_TIME_OF_DAY = {"day": "daytime", "night": "night"}  # drivesim -> Scalabel/BDD100K names
# Car count (cars spawned within view range) per crowdedness bucket, inclusive.
CROWDEDNESS_CARS = {"empty": (0, 0), "light": (1, 4), "moderate": (5, 10), "crowded": (11, 20)}


@dataclass(frozen=True)
class Box:
    """One 2D box in pixel coordinates (x2, y2 exclusive edges), with class and track id."""

    x1: float
    y1: float
    x2: float
    y2: float
    category: str = "car"
    track_id: int = -1
    visibility: float = 1.0  # share of the object's silhouette seen: not hidden, not outside the frame
    occluded: bool = False  # a nearer object hides part of it
    truncated: bool = False  # part of it lies outside the frame (or outside a crop of it)

    @staticmethod
    def occluded_by_visibility(visibility: float) -> bool:
        """What labels without an `occluded` flag meant by it (drivesim before catalog schema 4):
        any part unseen, hidden or outside the frame."""
        return visibility < 0.999

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)


@dataclass
class FrameLabel:
    """Labels of one frame. ``boxes is None`` means the boxes are unknown (not annotated)."""

    frame_index: int
    boxes: list[Box] | None
    attributes: dict[str, str] = field(default_factory=dict)
