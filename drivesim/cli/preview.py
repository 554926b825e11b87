"""`drivesim preview`: the Gradio scene preview (editor, fast key frames, full cascade, catalog)."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

from drivesim.cli.common import add_device, add_model, field_default
from drivesim.preview.limits import PreviewLimits
from drivesim.utils import DEFAULT_MODEL_DIR

logger = logging.getLogger("drivesim.cli.preview")
LIMIT_FLAGS = {
    "max_frames": "output frames per full render (its duration at 30 fps)",
    "max_key_frames": "key frames per fast preview (7.5 fps)",
    "max_steps": "denoising steps per stage and request",
    "max_pixels": "pixels (height x width) per frame of a full render",
    "max_queue": "requests waiting in the queue (more are turned away)",
    "concurrency": "model requests running at once",
}
PARTS = ("unet", "temporal_decoder", "prediction", "interpolation")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_preview(args) -> int:
    if importlib.util.find_spec("gradio") is None:
        print("drivesim preview needs gradio: pip install -e '.[preview]'", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    from drivesim.export.catalog import CatalogWriter
    from drivesim.models.model_index import has_part
    from drivesim.preview.app import launch
    from drivesim.preview.runs import Previewer

    try:
        limits = PreviewLimits(**{name: getattr(args, name) for name in LIMIT_FLAGS})
    except ValueError as e:
        print(f"drivesim preview: {e}", file=sys.stderr)
        return 2
    if args.catalog:
        CatalogWriter(args.catalog)  # a CatalogError (exit 2) now rather than at the first "Add to catalog"
    model_dir = args.model or DEFAULT_MODEL_DIR
    missing = [name for name in PARTS if not has_part(model_dir, name)]
    if missing:
        logger.warning(
            "%s lacks the model part(s) %s: requests that need them will show an error",
            model_dir,
            ", ".join(missing),
        )
    if args.host not in LOOPBACK:
        logger.warning(
            "serving on %s: anyone who reaches it can run the models and add clips to the "
            "catalog; bind to 127.0.0.1 unless you trust that network",
            args.host,
        )
    previewer = Previewer(model_dir, args.device, limits, args.catalog)
    try:
        launch(previewer, args.host, args.port)
    except KeyboardInterrupt:
        print("preview stopped", file=sys.stderr)
    finally:
        previewer.close()
    return 0


def register(subparsers) -> None:
    """`preview` (limit defaults: PreviewLimits)."""
    pre = subparsers.add_parser(
        "preview",
        help="a web page to edit a scene, preview it in seconds, render "
        "it fully and add it to a catalog (Gradio)",
    )
    pre.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    pre.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    pre.add_argument("--catalog", default=None, help="Parquet catalog that 'Add to catalog' writes to")
    for name, doc in LIMIT_FLAGS.items():
        default = field_default(PreviewLimits, name)
        pre.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=default,
            help=f"at most this many {doc} (default {default})",
        )
    add_model(pre)
    add_device(pre)
    pre.set_defaults(func=cmd_preview)
