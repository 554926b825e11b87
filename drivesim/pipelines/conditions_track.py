"""Conditions along a rollout: per-frame boxes from a world's tracks at the output frame rate,
scene conditions per segment (time of day and crowdedness may change along a scenario)."""

from __future__ import annotations

import dataclasses

from torch.utils.data import default_collate

from drivesim.data.conditions import Conditions, clip_conditions
from drivesim.data.labels import FrameLabel
from drivesim.pipelines.scenario_conditions import scenario_layout
from drivesim.scenario import Scenario
from drivesim.world.labels import BDD_TIME_OF_DAY


class RolloutConditions:
    """labels: one FrameLabel per output frame (output frame f = key frame f / factor)."""

    def __init__(
        self,
        labels: list[FrameLabel],
        size: tuple[int, int],
        time_of_day: str | list[str],
        crowdedness: str | list[str],
        key_fps: float,
        factor: int = 4,
        keys_per_segment: int = 6,
        ego_speed: float | None = None,
    ):
        self.labels, self.size = labels, (size[0], size[1])
        self.time_of_day = [time_of_day] if isinstance(time_of_day, str) else list(time_of_day)
        self.crowdedness = [crowdedness] if isinstance(crowdedness, str) else list(crowdedness)
        self.key_fps, self.factor, self.keys_per_segment = key_fps, factor, keys_per_segment
        self.ego_speed = ego_speed

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        key_frames: int,
        key_fps: float = 7.5,
        factor: int = 4,
        keys_per_segment: int = 6,
        crowdedness: list[str] | None = None,
        size: tuple[int, int] | None = None,
        time_of_day: list[str] | None = None,
    ) -> RolloutConditions:
        """The scenario's world laid out for key_frames key frames (boxes at key_fps * factor), in
        pixels of `size` (H,W): the video actually written (default: the scenario's resolution).
        crowdedness / time_of_day: per segment (the last repeats); the labels' attributes follow them."""
        hw = size or scenario.output.resolution
        size = (hw[0], hw[1])
        labels = scenario_layout(scenario, key_frames * factor + 1, key_fps * factor, size)
        track = cls(
            labels,
            size,
            time_of_day or scenario.time_of_day,
            crowdedness or scenario.crowdedness,
            key_fps,
            factor,
            keys_per_segment,
            scenario.ego.speed_kmh / 3.6,
        )
        for frame, label in enumerate(track.labels):
            key = frame // factor
            label.attributes.update(
                timeofday=BDD_TIME_OF_DAY[track.time_of_day_at(key)], crowdedness=track.crowdedness_at(key)
            )
        return track

    def at_size(self, size: tuple[int, int]) -> RolloutConditions:
        """The same track with its boxes scaled to pixels of `size` (H,W)."""
        sy, sx = size[0] / self.size[0], size[1] / self.size[1]
        scale = lambda b: dataclasses.replace(b, x1=b.x1 * sx, y1=b.y1 * sy, x2=b.x2 * sx, y2=b.y2 * sy)
        labels = [
            FrameLabel(
                lab.frame_index,
                None if lab.boxes is None else [scale(b) for b in lab.boxes],
                dict(lab.attributes),
            )
            for lab in self.labels
        ]
        return RolloutConditions(
            labels,
            size,
            self.time_of_day,
            self.crowdedness,
            self.key_fps,
            self.factor,
            self.keys_per_segment,
            self.ego_speed,
        )

    def _segment_value(self, values: list[str], key: int) -> str:
        return values[min(key // self.keys_per_segment, len(values) - 1)]

    def crowdedness_at(self, key: int) -> str:
        """Crowdedness of the segment holding key frame `key` (the last entry repeats)."""
        return self._segment_value(self.crowdedness, key)

    def time_of_day_at(self, key: int) -> str:
        """Time of day of the segment holding key frame `key` (the last entry repeats)."""
        return self._segment_value(self.time_of_day, key)

    def _clip(self, out_frames: list[int], fps: float, key: int) -> Conditions:
        if out_frames[-1] >= len(self.labels):
            raise ValueError(f"frame {out_frames[-1]} is past the laid-out track ({len(self.labels)} frames)")
        frame_boxes = [self.labels[f].boxes for f in out_frames]
        # unknown boxes (an unannotated source): the boxes-free branch
        boxes = None if any(b is None for b in frame_boxes) else [b for b in frame_boxes if b is not None]
        return clip_conditions(
            boxes,
            self.size,
            self.time_of_day_at(key),
            self.crowdedness_at(key),
            fps,
            self.ego_speed,
            num_frames=len(out_frames),
        )

    def key_conditions(self, keys: list[int]) -> Conditions:
        """Batched (B=1) conditions of key frames `keys`."""
        return default_collate([self._clip([k * self.factor for k in keys], self.key_fps, keys[-1])])

    def fine_conditions(self, windows: list[list[int]]) -> Conditions:
        """Batched (B=len(windows)) conditions of output-frame windows."""
        fps = self.key_fps * self.factor
        return default_collate([self._clip(w, fps, w[-1] // self.factor) for w in windows])
