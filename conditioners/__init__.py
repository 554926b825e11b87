"""Condition encoders: scene (time of day, crowdedness), box tokens, context frames, condition
dropout (CFG)."""

from conditioners.boxes import BoxEncoder
from conditioners.context import Context, ContextEncoder
from conditioners.dropout import ConditionDropout
from conditioners.scene import SceneEmbedding

__all__ = ["BoxEncoder", "ConditionDropout", "Context", "ContextEncoder", "SceneEmbedding"]
