"""Datasets (procedural world, real video and frame folders, catalogs) and label formats. Depends on
no model.

    from drivesim.data import CatalogDataset, CatalogStream, collate_clips, mix
"""

from importlib import import_module

_EXPORTS = {
    "CatalogDataset": "catalog_dataset",
    "CatalogStream": "catalog_stream",
    "collate_clips": "collate",
    "mix": "mixing",
    "catalog_filter": "catalog_query",
    "VideoFolderDataset": "video_folder",
    "ProceduralClipDataset": "procedural",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Lazy exports: importing drivesim.data does not import torch, PyAV or pyarrow."""
    if name in _EXPORTS:
        return getattr(import_module(f"drivesim.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'drivesim.data' has no attribute {name!r}")
