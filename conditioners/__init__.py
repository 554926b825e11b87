"""Condition encoders: scene (time of day, crowdedness), box tokens, condition dropout (CFG)."""

from conditioners.boxes import BoxEncoder
from conditioners.dropout import ConditionDropout
from conditioners.scene import SceneEmbedding

__all__ = ["BoxEncoder", "ConditionDropout", "SceneEmbedding"]
