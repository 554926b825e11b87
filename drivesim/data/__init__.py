"""Datasets (procedural world, real video folders) and label formats. Depends on no model."""
