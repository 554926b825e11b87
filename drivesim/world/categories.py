"""The road users the world renders, by their BDD100K category names, with their sizes and solids.

Cars, trucks and buses are vehicles (tyres, a body whose face carries the lamps, a glass cabin,
trucks a cargo box); bicycles and motorcycles carry their rider, and their box covers both (one
box per road user: BDD100K's separate `rider` box is not drawn); pedestrians are legs, a torso,
arms and a head. Every part is a Solid (vehicle.py); parts named `tyre*`, `body` and `cabin` are
painted as a vehicle's, any other part in its own colour (`Solid.color`) or the user's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from drivesim.world.vehicle import Solid, car_solids

CATEGORIES = ("car", "truck", "bus", "motorcycle", "bicycle", "pedestrian")
VEHICLES = ("car", "truck", "bus")
# (length, width, height) ranges in metres, drawn uniformly per road user
SIZES = {
    "car": ((4.0, 5.0), (1.7, 1.95), (1.4, 1.8)),
    "truck": ((7.0, 9.5), (2.3, 2.5), (3.2, 3.7)),
    "bus": ((10.5, 12.0), (2.45, 2.55), (3.0, 3.3)),
    "motorcycle": ((2.0, 2.2), (0.7, 0.8), (1.5, 1.65)),
    "bicycle": ((1.7, 1.8), (0.55, 0.65), (1.6, 1.8)),
    "pedestrian": ((0.3, 0.4), (0.5, 0.6), (1.6, 1.85)),
}
# the COCO class of the real-photo detector (eval/detector.py) that finds each category
DETECTOR_CLASS = {
    "car": "car",
    "truck": "truck",
    "bus": "bus",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
    "pedestrian": "person",
}
SKIN = (176, 132, 104)
TROUSERS = (46, 50, 62)
SHOES = (28, 26, 26)
HAIR = (40, 30, 24)
CLOTHES = [(34, 64, 120), (150, 40, 40), (60, 60, 64), (210, 205, 190), (40, 96, 60), (180, 140, 60)]
METAL = (70, 72, 78)
# most box trucks' cargo boxes are white or silver, whatever colour their cab
CARGO_COLORS = [(232, 232, 228), (226, 224, 214), (205, 208, 212), (236, 236, 236)]


def check_category(category: str) -> str:
    """category, or a ValueError that lists the allowed names."""
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} is not one the world renders: use one of {list(CATEGORIES)}")
    return category


def draw_size(category: str, rng: np.random.Generator) -> tuple[float, float, float]:
    """(length, width, height) of a new road user of `category`."""
    return tuple(float(rng.uniform(*r)) for r in SIZES[check_category(category)])  # type: ignore[return-value]


def size_of(category: str) -> tuple[float, float, float]:
    """The middle of the category's size ranges (scripted agents)."""
    return tuple(sum(r) / 2 for r in SIZES[check_category(category)])  # type: ignore[return-value]


def solids_for(
    category: str, length: float, width: float, height: float, front_to_camera: bool, clothes=CLOTHES[0]
) -> dict[str, Solid]:
    """The parts of one road user, depth measured from the face the camera sees; painted in order.
    `clothes` is the colour of a person's clothes; for a truck, its cab's (it picks the cargo box's)."""
    if category == "car":
        return car_solids(length, width, height, front_to_camera)
    if category in ("truck", "bus"):
        return _big_vehicle(category, length, width, height, front_to_camera, clothes)
    if category == "pedestrian":
        return _person(0.0, 0.0, height, length, clothes)
    if category in ("bicycle", "motorcycle"):
        return _two_wheeler(category, length, width, height, clothes)
    raise ValueError(check_category(category))


def _tyres(width: float, depths: tuple[float, ...], radius: float, tyre_w: float) -> dict[str, Solid]:
    hw = width / 2
    out = {}
    for i, d in enumerate(depths):
        for j, x in enumerate((-hw + tyre_w / 2 + 0.05, hw - tyre_w / 2 - 0.05)):
            out[f"tyre{i}{j}"] = Solid(
                tyre_w / 2, tyre_w / 2, 0.0, 2 * radius, d - radius, d + radius, d - radius, d + radius, x
            )
    return out


def _big_vehicle(
    category: str, length: float, width: float, height: float, front: bool, body_rgb
) -> dict[str, Solid]:
    """A truck (a cab in the body colour + a light cargo box) or a bus (a long body with a band of
    windows)."""
    box = CARGO_COLORS[int(sum(body_rgb)) % len(CARGO_COLORS)]
    hw, r = width / 2, 0.5
    solids = _tyres(
        width, (1.4, length - 2.2, length - 1.0) if category == "truck" else (2.5, length - 2.8), r, 0.3
    )
    if category == "bus":
        solids["body"] = Solid(hw, hw, 0.35, 1.25, 0.0, length, 0.0, length)
        solids["cabin"] = Solid(
            hw * 0.99, hw * 0.97, 1.25, height - 0.25, 0.0, length, 0.05, length - 0.05, style="bus"
        )
        solids["roof"] = Solid(
            hw * 0.97, hw * 0.9, height - 0.25, height, 0.05, length - 0.05, 0.3, length - 0.3
        )
        return solids
    cab = 2.3
    if front:  # the cab faces the camera, the cargo box behind it
        solids["cargo"] = Solid(hw, hw, 1.0, height, cab + 0.2, length, cab + 0.2, length, 0.0, box, "cargo")
        solids["body"] = Solid(hw * 0.98, hw * 0.98, 0.45, 1.5, 0.0, cab, 0.05, cab)
        solids["cabin"] = Solid(hw * 0.96, hw * 0.9, 1.5, height - 0.55, 0.1, cab, 0.35, cab - 0.05)
    else:  # the cargo box's rear door faces the camera; lamps on the chassis beneath it
        solids["cabin"] = Solid(
            hw * 0.96, hw * 0.9, 1.5, height - 0.55, length - cab, length, length - cab + 0.3, length
        )
        solids["body"] = Solid(hw, hw, 0.5, 1.05, 0.0, length, 0.0, length, style="chassis")
        solids["cargo"] = Solid(
            hw, hw, 1.05, height, 0.0, length - cab - 0.2, 0.0, length - cab - 0.2, 0.0, box, "cargo"
        )
    return solids


def _person(
    x: float, y0: float, height: float, depth: float, clothes, seated: bool = False
) -> dict[str, Solid]:
    """Legs, torso, arms with hands, and a head with hair of a person standing at y0 (seated: legs
    forward, shorter). Arms hang apart from a waist narrower than the chest, so the silhouette
    keeps the gaps a person's has."""
    s = height / 1.75
    leg, torso, head = 0.82 * s, 0.56 * s, 0.26 * s
    d0, d1 = 0.0, depth
    hip = y0 + (0.45 * leg if seated else leg)
    neck = hip + torso
    parts = {}
    for side, sign in (("left", -1), ("right", 1)):
        parts[f"leg_{side}"] = _prism(0.065 * s, 0.06 * s, y0, hip, d0 + 0.05, d1 - 0.05, x + sign * 0.08 * s)
        parts[f"shoe_{side}"] = _prism(0.07 * s, 0.065 * s, y0, y0 + 0.05 * s, d0, d1, x + sign * 0.08 * s)
    for side, sign in (("left", -1), ("right", 1)):
        at = x + sign * 0.235 * s
        parts[f"arm_{side}"] = _prism(
            0.045 * s, 0.05 * s, hip - 0.02 * s, neck - 0.04 * s, d0 + 0.06, d1 - 0.06, at
        )
        parts[f"hand_{side}"] = _prism(
            0.04 * s, 0.04 * s, hip - 0.1 * s, hip - 0.02 * s, d0 + 0.08, d1 - 0.08, at
        )
    parts["torso"] = _prism(0.15 * s, 0.19 * s, hip, neck, d0, d1, x)
    parts["head"] = _prism(0.085 * s, 0.085 * s, neck, neck + head * 0.8, d0 + 0.02, d1 - 0.02, x)
    parts["hair"] = _prism(0.09 * s, 0.08 * s, neck + head * 0.72, neck + head, d0 + 0.01, d1 - 0.01, x)
    colours = {
        "leg": TROUSERS,
        "shoe": SHOES,
        "arm": tuple(int(c * 0.85) for c in clothes),  # sleeves, a shade darker than the chest
        "hand": SKIN,
        "torso": clothes,
        "head": SKIN,
        "hair": HAIR,
    }
    return {name: _coloured(solid, colours[name.split("_")[0]]) for name, solid in parts.items()}


def _two_wheeler(category: str, length: float, width: float, height: float, clothes) -> dict[str, Solid]:
    """Two wheels in line, a frame (a motorcycle: an engine block and a tank) and the rider."""
    r = 0.34 if category == "bicycle" else 0.32
    tyre_w = 0.05 if category == "bicycle" else 0.14
    solids = {
        "tyre0": Solid(tyre_w, tyre_w, 0.0, 2 * r, 0.0, 2 * r, 0.0, 2 * r),
        "tyre1": Solid(tyre_w, tyre_w, 0.0, 2 * r, length - 2 * r, length, length - 2 * r, length),
    }
    if category == "motorcycle":
        solids["engine"] = _coloured(
            Solid(0.22, 0.2, 0.3, 0.85, 0.5, length - 0.5, 0.45, length - 0.6), METAL
        )
    else:
        solids["frame"] = _coloured(Solid(0.04, 0.04, r, r + 0.45, r, length - r, r, length - r), METAL)
    seat = r + (0.55 if category == "motorcycle" else 0.5)
    hip = seat - 0.45  # where a seated person's shortened legs start
    seated_over_standing = (0.45 * 0.82 + 0.58 + 0.24) / 1.75  # _person's proportions
    rider = _person(0.0, hip, (height - hip) / seated_over_standing, 0.35, clothes, seated=True)
    mid = length / 2 - 0.2
    return solids | {k: _shift(v, mid) for k, v in rider.items()}


def _prism(w0: float, w1: float, y0: float, y1: float, d0: float, d1: float, x: float) -> Solid:
    """A part whose top spans the same depth as its bottom."""
    return Solid(w0, w1, y0, y1, d0, d1, d0, d1, x)


def _coloured(solid: Solid, rgb) -> Solid:
    return dataclasses.replace(solid, color=tuple(rgb))


def _shift(solid: Solid, dd: float) -> Solid:
    s = solid
    return dataclasses.replace(s, d0=s.d0 + dd, d1=s.d1 + dd, e0=s.e0 + dd, e1=s.e1 + dd)
