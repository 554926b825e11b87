"""The generation cascade; every stage usable alone."""

from drivesim.pipelines.video_ldm import VideoLDMOutput, VideoLDMPipeline

__all__ = ["VideoLDMOutput", "VideoLDMPipeline"]
