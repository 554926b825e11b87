"""The editor's box table: one row per scripted box-track agent, with a simple motion.

A row is `id, x1, y1, x2, y2, motion, end_x1, end_y1, end_x2, end_y2, category` (boxes
normalised to [0, 1] of the frame; category a BDD100K name the world renders, blank = car).
Motions: `static` (one key), `end` (the box moves linearly to the end box by the clip's end),
`left` / `right` (a lane change: the end box is the start box moved one lane sideways at the
depth of its bottom edge, through the procedural world's camera).
Boxes are drawn with clicks on the layout frame: two opposite corners, and two more for the end
box of an `end` motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivesim.scenario import ScenarioError
from drivesim.world.camera import Camera
from drivesim.world.categories import CATEGORIES
from drivesim.world.road import LANE_WIDTH_M

BOX_COLUMNS = ["id", "x1", "y1", "x2", "y2", "motion", "end_x1", "end_y1", "end_x2", "end_y2", "category"]
CATEGORY = BOX_COLUMNS.index("category")
MOTIONS = ("static", "end", "left", "right")
ASPECT = (128, 256)  # height, width of the frame the lane width is measured in (every profile is 1:2)

Box = tuple[float, float, float, float]


def _blank(cell) -> bool:
    return cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() == ""


def lane_change(box: Box, lanes: int, size: tuple[int, int] = ASPECT) -> Box:
    """Normalised xyxy -> the same box moved `lanes` lanes sideways (+ right) at its bottom edge's
    depth, clipped to the frame (a car may partly leave it)."""
    h, w = size
    camera = Camera.for_size(h, w)
    x1, y1, x2, y2 = box
    lateral, depth = camera.unproject_ground((x1 + x2) / 2 * w, y2 * h)
    u, _ = camera.project(lateral + lanes * LANE_WIDTH_M, 0.0, depth)
    shift = float(u) / w - (x1 + x2) / 2
    return (max(0.0, x1 + shift), y1, min(1.0, x2 + shift), y2)


@dataclass(frozen=True)
class BoxRow:
    number: int  # 1-based row of the table (for messages)
    id: int
    box: Box
    motion: str = "static"
    end: Box | None = None
    category: str = "car"

    def end_box(self) -> Box | None:
        """Where the box is at the clip's end (None when static)."""
        if self.motion == "end":
            return self.end
        if self.motion in ("left", "right"):
            return lane_change(self.box, -1 if self.motion == "left" else 1)
        return None

    def agent(self, duration: float) -> dict:
        """The scenario agent (box track, a second key at `duration` s when it moves)."""
        keys = [{"t": 0.0, "box": list(self.box)}]
        end = self.end_box()
        if end is not None:
            keys.append({"t": duration, "box": [round(v, 4) for v in end]})
        agent = {"id": self.id, "box_track": keys}
        return agent | ({"category": self.category} if self.category != "car" else {})

    def cells(self) -> list:
        """The table row: BOX_COLUMNS (end columns blank unless the motion is 'end')."""
        end = list(self.end) if self.motion == "end" and self.end else [None] * 4
        return [self.id, *[round(v, 4) for v in self.box], self.motion, *end, self.category]

    @classmethod
    def from_agent(cls, agent, number: int = 0) -> BoxRow:
        """A box-track agent of one or two keys -> its row ('end' motion with two keys)."""
        keys = agent.box_track
        end = tuple(keys[-1].box) if len(keys) > 1 else None
        motion = "end" if end else "static"
        return cls(number, agent.id, tuple(keys[0].box), motion, end, agent.category)


def parse_box_rows(rows: list[list] | None, source: str) -> list[BoxRow]:
    """Table rows (cells as the page gives them) -> BoxRows; blank rows are skipped. A ScenarioError
    names the row, the column, the value and the fix."""
    parsed = []
    for number, row in enumerate(rows or [], 1):
        cells = list(row) + [None] * (len(BOX_COLUMNS) - len(row))
        if all(_blank(c) for c in cells):
            continue
        where = f"{source}: boxes row {number}"
        values = {}
        for name, cell in zip(BOX_COLUMNS, cells):
            if name in ("motion", "category"):
                continue
            try:
                values[name] = None if _blank(cell) else float(cell)
            except (TypeError, ValueError):
                raise ScenarioError(f"{where}: {name}={cell!r} is not a number") from None
        motion = "static" if _blank(cells[5]) else str(cells[5]).strip().lower()
        if motion not in MOTIONS:
            raise ScenarioError(f"{where}: motion={cells[5]!r}; use one of {', '.join(MOTIONS)}")
        missing = [
            n
            for n in BOX_COLUMNS[1:5] + (BOX_COLUMNS[6:CATEGORY] if motion == "end" else [])
            if values[n] is None
        ]
        if missing:
            raise ScenarioError(
                f"{where}: {', '.join(missing)} missing"
                + (" (motion 'end' needs the end box)" if motion == "end" else "")
            )
        category = "car" if _blank(cells[CATEGORY]) else str(cells[CATEGORY]).strip().lower()
        if category not in CATEGORIES:
            raise ScenarioError(f"{where}: category={cells[CATEGORY]!r}; use one of {', '.join(CATEGORIES)}")
        box_id = values["id"]
        if box_id is None or box_id != int(box_id) or box_id < 1:
            raise ScenarioError(f"{where}: id={cells[0]!r}; give a whole number of 1 or more (the track id)")
        start = tuple(values[n] for n in BOX_COLUMNS[1:5])
        end = tuple(values[n] for n in BOX_COLUMNS[6:CATEGORY]) if motion == "end" else None
        parsed.append(BoxRow(number, int(box_id), start, motion, end, category))
    return parsed


def corners_box(p: tuple[float, float], q: tuple[float, float], size: tuple[int, int]) -> Box:
    """Two clicked corners in pixels (x, y) of a frame of `size` (H,W) -> normalised xyxy in [0, 1]."""
    h, w = size
    xs = sorted(min(max(v / w, 0.0), 1.0) for v in (p[0], q[0]))
    ys = sorted(min(max(v / h, 0.0), 1.0) for v in (p[1], q[1]))
    return (round(xs[0], 4), round(ys[0], 4), round(xs[1], 4), round(ys[1], 4))


def clicks_needed(motion: str) -> int:
    """Clicks that draw one box of this motion (corners of the start box, and of the end box)."""
    return 4 if motion == "end" else 2


def add_click(
    pending: list,
    point: tuple[float, float],
    size: tuple[int, int],
    motion: str,
    rows: list[list],
    taken_ids: list[int],
    category: str = "car",
) -> tuple[list, list[list], str]:
    """One click on the layout frame -> (pending clicks, table rows, what happened / what next)."""
    if motion not in MOTIONS:
        raise ScenarioError(f"motion {motion!r}: use one of {', '.join(MOTIONS)}")
    if category not in CATEGORIES:
        raise ScenarioError(f"category {category!r}: use one of {', '.join(CATEGORIES)}")
    pending = [*pending, [float(point[0]), float(point[1])]]
    need = clicks_needed(motion)
    if len(pending) < need:
        what = "the opposite corner" if len(pending) % 2 else "the first corner of the end box"
        x, y = point
        return pending, rows, f"click {len(pending)}/{need} at ({x:.0f}, {y:.0f}); now click {what}"
    start = corners_box(pending[0], pending[1], size)
    end = corners_box(pending[2], pending[3], size) if motion == "end" else None
    used = taken_ids + [int(r[0]) for r in rows if r and not _blank(r[0]) and str(r[0]).strip().isdigit()]
    new_id = max(used, default=0) + 1
    row = BoxRow(len(rows) + 1, new_id, start, motion, end, category)
    kept = [r for r in rows if not all(_blank(c) for c in r)]
    return [], [*kept, row.cells()], f"added box id {new_id} {list(start)} ({motion}, {category})"
