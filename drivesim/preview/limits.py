"""Hard limits per preview request: frames, resolution and denoising steps.

A server shared by several people must not let one request exhaust memory or hold the CPU for
minutes; every limit is checked before any work starts and names itself, the value asked for
and the fix when it is hit.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivesim.pipelines.rollout import RolloutConfig, clip_frames, for_seconds
from drivesim.scenario import Scenario


class LimitError(ValueError):
    """A request over one of the server's limits; the message names the limit and the fix."""


@dataclass(frozen=True)
class PreviewLimits:
    max_frames: int = 150  # output frames of a full render (whole segments: a 4 s clip makes 141)
    max_key_frames: int = 16  # key frames of the fast preview (one key-frame segment, 2.1 s at 7.5 fps)
    max_steps: int = 50  # denoising steps of any stage, per request
    max_pixels: int = 512 * 1024  # output height x width of a full render
    max_queue: int = 8  # requests waiting in the queue; more are turned away
    concurrency: int = 1  # model requests running at once (each uses every CPU core)

    def __post_init__(self):
        bad = [
            f"{name}={getattr(self, name)}"
            for name in (
                "max_frames",
                "max_key_frames",
                "max_steps",
                "max_pixels",
                "max_queue",
                "concurrency",
            )
            if getattr(self, name) < 1
        ]
        if bad:
            raise ValueError(f"preview limits {', '.join(bad)}: each limit must be 1 or more")


def full_render_frames(scenario: Scenario, cfg: RolloutConfig) -> tuple[int, int]:
    """(output frames, segments) the full cascade makes for a scenario: whole segments of
    cfg.new_frames key frames, interpolated 4x, cut to its duration (batch.clip_config)."""
    cfg = for_seconds(cfg, scenario.duration)
    return clip_frames(cfg), cfg.segments


def check_steps(limits: PreviewLimits, **steps: int) -> None:
    """Each named step count (e.g. steps=20) must be 1..max_steps; raises LimitError."""
    for name, value in steps.items():
        if value < 1:
            raise LimitError(f"{name}={value}: use 1 or more denoising steps")
        if value > limits.max_steps:
            raise LimitError(
                f"{name}={value} is over this server's limit of {limits.max_steps} steps per "
                f"request: lower {name} (the limit is `drivesim preview --max-steps`)"
            )


def check_full_render(scenario: Scenario, cfg: RolloutConfig, limits: PreviewLimits) -> None:
    """A full render's frames and output resolution must be within the limits; raises LimitError."""
    frames, segments = full_render_frames(scenario, cfg)
    if frames > limits.max_frames:
        raise LimitError(
            f"duration {scenario.duration:g} s makes {frames} frames at {cfg.out_fps:g} fps "
            f"({segments} whole segments), over this server's limit of {limits.max_frames} "
            "frames per request: shorten duration_s, or render it with `drivesim generate "
            "--catalog` (the limit is `drivesim preview --max-frames`)"
        )
    h, w = scenario.output.resolution
    if h * w > limits.max_pixels:
        raise LimitError(
            f"output.resolution {h}x{w} = {h * w} pixels is over this server's limit of "
            f"{limits.max_pixels} pixels per frame: choose a smaller resolution (the limit is "
            "`drivesim preview --max-pixels`)"
        )
