"""Procedural driving world: road, traffic, day/night rendering and exact box labels."""

from drivesim.world.scene import AgentTrack, Clip, World, WorldSpec, render_clip

__all__ = ["AgentTrack", "Clip", "World", "WorldSpec", "render_clip"]
