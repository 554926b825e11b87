"""`drivesim data inspect`: build a dataset from the hydra config (+ overrides), print samples."""

from __future__ import annotations

import time
from collections.abc import Sized
from typing import cast


def cmd_data_inspect(args) -> int:
    from drivesim.config import load_config
    from drivesim.data.build import build_dataset, data_config

    cfg = data_config(load_config(args.overrides)["data"])
    dataset = build_dataset(cfg)
    items = len(cast(Sized, dataset))
    print(f"{type(dataset).__name__}: {items} items  ({cfg})")
    for i in range(min(args.samples, items)):
        start = time.perf_counter()
        frames, cond = dataset[i]
        ms = (time.perf_counter() - start) * 1000
        n_boxes = int(cond["box_mask"].sum())
        print(
            f"[{i}] frames {tuple(frames.shape)} {frames.dtype} range "
            f"[{frames.min():.2f}, {frames.max():.2f}]  time_of_day={int(cond['time_of_day'])} "
            f"crowdedness={int(cond['crowdedness'])} boxes_known={bool(cond['boxes_known'])} "
            f"boxes={n_boxes}  {ms:.0f} ms"
        )
    return 0


def register(subparsers) -> None:
    """`data inspect` (hydra overrides)."""
    data = subparsers.add_parser("data", help="datasets")
    sub = data.add_subparsers(dest="data_command", required=True)
    inspect = sub.add_parser("inspect", help="build a dataset from hydra config, print samples")
    inspect.add_argument("overrides", nargs="*", help="hydra overrides, e.g. data=udacity data.fps=7.5")
    inspect.add_argument("--samples", type=int, default=2)
    inspect.set_defaults(func=cmd_data_inspect)
