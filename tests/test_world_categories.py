"""Road users beyond cars: trucks, buses, two-wheelers with riders and pedestrians, by their
BDD100K names, in scenarios, the world's renders and its exact boxes."""

import numpy as np
import pytest
import yaml

from drivesim.data.labels import Box, read_scalabel, to_scalabel
from drivesim.scenario import ScenarioError, load_scenario, parse_scenario
from drivesim.world import render_clip
from drivesim.world.categories import CATEGORIES, check_category, size_of, solids_for
from drivesim.world.scene import World, WorldSpec

CROSSING = "day_pedestrian_crossing.yaml"


def test_an_unknown_category_names_the_field_and_the_allowed_names(repo):
    data = yaml.safe_load((repo / "scenarios" / CROSSING).read_text())
    data["agents"][1]["category"] = "horse"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "crossing.yaml")
    message = str(info.value)
    assert "agents[1].category" in message and "horse" in message
    assert all(name in message for name in CATEGORIES)
    with pytest.raises(ValueError, match="use one of"):
        check_category("train")


def test_the_crossing_scenario_labels_each_road_user_with_its_category(repo):
    scenario = load_scenario(repo / "scenarios" / CROSSING)
    spec = scenario.to_world_spec()
    clip = render_clip(WorldSpec(**{**spec.__dict__, "num_frames": 40, "height": 128, "width": 256}))
    by_track = {}
    for label in clip.labels:
        for box in label.boxes or []:
            by_track.setdefault(box.track_id, set()).add(box.category)
    assert by_track[1] == {"car"} and by_track[2] == {"pedestrian"}
    assert by_track[3] == {"truck"} and by_track[4] == {"bus"}
    widest = {}
    for label in clip.labels:
        for box in label.boxes or []:
            widest[box.category] = max(
                widest.get(box.category, 0.0), (box.y2 - box.y1) / max(box.x2 - box.x1, 1)
            )
    assert widest["pedestrian"] > 1.5  # people are upright boxes


def test_labels_round_trip_their_categories(tmp_path):
    world = World(WorldSpec(num_frames=30, height=64, width=128, seed=11, crowdedness="crowded"))
    labels = list(world.labels())
    path = tmp_path / "labels.json"
    path.write_text(__import__("json").dumps(to_scalabel(labels, "clip")))
    back = read_scalabel(path)

    def flags(frames):
        return [[(b.category, b.occluded, b.truncated) for b in lab.boxes or []] for lab in frames]

    assert flags(back) == flags(labels)
    seen = {flag for frame in flags(labels) for flag in frame}
    assert {(o, t) for _, o, t in seen} >= {(True, False), (False, True), (False, False)}


def test_a_crop_that_cuts_a_box_marks_it_truncated_and_less_visible():
    from drivesim.data.clips import transform_box

    box = Box(10, 20, 50, 60, visibility=0.8)
    inside = transform_box(box, (0, 100, 0, 200), (50, 100))
    assert inside == Box(5, 10, 25, 30, visibility=0.8)
    cut = transform_box(box, (0, 100, 30, 230), (50, 100))  # keeps half the box
    assert cut == Box(0, 10, 10, 30, visibility=pytest.approx(0.4), truncated=True)
    edge = transform_box(Box(0, 0, 147, 10), (0, 50, 0, 147), (50, 320))  # 147 * (320 / 147) > 320
    assert edge is not None and not edge.truncated and edge.visibility == 1.0


def test_random_traffic_mixes_in_trucks_and_buses_without_moving_the_cars():
    seen = set()
    for seed in range(12):
        world = World(WorldSpec(num_frames=2, height=64, width=128, seed=seed, crowdedness="crowded"))
        seen |= {car.category for car in world.traffic.cars}
        for car in world.traffic.cars:
            if car.category != "car":
                assert car.length > 6.5 and car.height > 2.9  # a truck or bus has its own size
    assert {"car", "truck", "bus"} <= seen


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_has_solids_that_stand_on_the_road(category):
    length, width, height = size_of(category)
    for front in (True, False):
        solids = solids_for(category, length, width, height, front)
        corners = np.concatenate([s.corners() for s in solids.values()])
        assert corners[:, 1].min() == pytest.approx(0.0)  # on the road
        assert corners[:, 1].max() == pytest.approx(height, rel=0.15)
        assert corners[:, 2].min() >= -1e-6 and corners[:, 2].max() <= length + 1e-6


def test_changing_only_a_box_class_changes_the_unet_input():
    """A class-aware UNet (box_classes = 6, UNTRAINED) sees a box's class in its layout raster (one
    channel per class) and its box tokens; a 1-class UNet (the shipped models) sees every box as a car."""
    import dataclasses

    import torch
    from conftest import TINY_UNET

    from drivesim.data.conditions import BOX_CLASSES
    from drivesim.models.unet import PREPARED_LAYOUT, PREPARED_TOKENS, VideoUNet

    def cond(category: str) -> dict:
        return {
            "time_of_day": torch.tensor([0]),
            "crowdedness": torch.tensor([1]),
            "boxes": torch.tensor([[[[0.4, 0.5, 0.6, 0.8]]]]),
            "box_class": torch.tensor([[[BOX_CLASSES.index(category)]]]),
            "box_mask": torch.ones(1, 1, 1, dtype=torch.bool),
        }

    torch.manual_seed(0)
    aware = VideoUNet(dataclasses.replace(TINY_UNET, box_classes=len(CATEGORIES))).eval()
    plain = VideoUNet(TINY_UNET).eval()
    assert aware.cfg.input_channels == plain.cfg.input_channels + len(CATEGORIES) - 1
    with torch.no_grad():
        car, walker = (aware.prepare_conditions(cond(c), 1, (4, 8)) for c in ("car", "pedestrian"))
        assert not torch.equal(car[PREPARED_LAYOUT], walker[PREPARED_LAYOUT])
        assert not torch.equal(car[PREPARED_TOKENS], walker[PREPARED_TOKENS])
        channel = BOX_CLASSES.index("pedestrian")
        assert walker[PREPARED_LAYOUT][:, channel].sum() > 0 and car[PREPARED_LAYOUT][:, channel].sum() == 0
        car, walker = (plain.prepare_conditions(cond(c), 1, (4, 8)) for c in ("car", "pedestrian"))
        assert torch.equal(car[PREPARED_LAYOUT], walker[PREPARED_LAYOUT])


def _agent_crop(category: str, oncoming: bool, lane: int, ahead_m: float) -> np.ndarray:
    """The box crop (RGB) of one scripted road user in a 256x512 day frame."""
    from drivesim.world.scene import AgentTrack

    agent = AgentTrack(7, ((0.0, lane, ahead_m),), oncoming=oncoming, category=category)
    spec = WorldSpec(num_frames=1, height=256, width=512, seed=3, crowdedness="light", agents=(agent,))
    spec = WorldSpec(**{**spec.__dict__, "curvature": "straight", "lanes_forward": 2, "lanes_oncoming": 1})
    image, label = next(World(spec).frames())
    box = next(b for b in label.boxes if b.track_id == 7)
    return image[int(box.y1) : int(box.y2), int(box.x1) : int(box.x2)].astype(np.float32)


def test_a_box_truck_from_behind_shows_a_roll_up_door_over_a_dark_chassis():
    crop = _agent_crop("truck", oncoming=False, lane=0, ahead_m=10)
    h, w = crop.shape[:2]
    profile = crop[: int(0.6 * h), w // 5 : 2 * w // 5].mean((1, 2))  # down the door, beside its handle
    dips = np.sum((profile[1:-1] < profile[:-2] - 20) & (profile[1:-1] <= profile[2:]))
    assert dips >= 6  # the door's slats
    assert crop[int(0.75 * h) :].mean() < 0.45 * crop[: int(0.5 * h)].mean()  # the chassis under the box


def test_a_bus_shows_a_row_of_side_windows_and_a_destination_sign():
    crop = _agent_crop("bus", oncoming=True, lane=-1, ahead_m=14)
    r, g, b = crop[..., 0], crop[..., 1], crop[..., 2]
    assert ((r > 150) & (g > 80) & (g < r - 40) & (b < 0.5 * g)).sum() >= 4  # amber sign pixels
    luma = crop.mean(-1)
    row = luma[int(0.45 * luma.shape[0])]  # across the window band, front and side
    dark = row < 0.6 * np.median(luma)
    panes = np.sum(dark[1:] & ~dark[:-1]) + int(dark[0])
    assert panes >= 4  # windscreen, then panes between pillars


def test_walkers_keep_to_the_sidewalks_at_a_walking_pace_and_leave_the_cars_as_they_were():
    from drivesim.world.walkers import PACE_MS, WALKER_FIRST_ID

    base = WorldSpec(num_frames=20, height=128, width=256, seed=5, crowdedness="crowded", ego_speed=10.0)
    plain, walking = World(base), World(WorldSpec(**{**base.__dict__, "walkers": True}))
    assert plain.walkers is None
    plain_labels, walking_labels = list(plain.labels()), list(walking.labels())
    for a, b in zip(plain_labels, walking_labels):

        def places(boxes):  # visibility aside: a person may stand in front of a parked car
            return [
                (x.track_id, x.category, x.x1, x.y1, x.x2, x.y2) for x in boxes if x.category != "pedestrian"
            ]

        assert places(b.boxes) == places(a.boxes)  # the same cars in the same places
        assert all(x.track_id >= WALKER_FIRST_ID for x in b.boxes if x.category == "pedestrian")
    assert any(x.category == "pedestrian" for lab in walking_labels for x in lab.boxes)
    road = walking.road
    before = {p.track_id: p.ahead for p in walking.walkers.people}
    walking._step(0.5)
    for person in walking.walkers.people:
        if person.track_id in walking.walkers.crossing:  # still along the road, between the sidewalks
            assert road.left_edge_m - 4 < person.lateral < road.right_edge_m + 4 and person.speed == 0
            continue
        assert person.lateral > road.right_edge_m + 2 or person.lateral < road.left_edge_m - 2
        if person.track_id in before:  # relative to the ego: its pace minus the ego's speed
            pace = (person.ahead - before[person.track_id]) / 0.5 + 10.0
            assert PACE_MS[0] - 1e-6 <= abs(pace) <= PACE_MS[1] + 1e-6


def test_crossing_walkers_cross_ahead_and_wait_for_the_traffic():
    """At a slow ego speed people cross the road ahead; no car (nor the ego) ever drives through
    one, and those who reach the far sidewalk walk on along it."""
    walked_across = on_road = 0
    for seed in range(8):  # an ego creeping through a crowded street
        world = World(WorldSpec(num_frames=2, seed=seed, crowdedness="crowded", ego_speed=1.0, walkers=True))
        walkers, lane_at = world.walkers, world.walkers._lane_at
        crossers = set(walkers.crossing)
        for _ in range(900):  # 30 s: crossing three lanes and two sidewalks takes 12-20 s
            world._step(1 / 30)
            for person in walkers.people:
                lane = lane_at(person.lateral)
                if lane is None:
                    continue
                on_road += 1
                assert person.track_id in walkers.crossing
                for car in world.traffic.cars:  # people may wait on a lane line while cars pass
                    side = abs(car.lateral - person.lateral) < (car.width + person.width) / 2
                    assert not (side and abs(car.ahead - person.ahead) < (car.length + person.length) / 2)
                assert not (abs(world.ego_lateral - person.lateral) < 1.0 and abs(person.ahead) < 1.0)
        walked_across += sum(
            1 for p in walkers.people if p.track_id in crossers - set(walkers.crossing) and p.speed != 0
        )
    assert on_road > 0 and walked_across > 0


def test_sidewalks_are_paved_only_where_people_walk():
    """A verge pixel on the walkers' path is concrete with walkers, grass without; roads match."""
    from drivesim.world.palette import DAY
    from drivesim.world.traffic import SIDEWALK_M

    base = WorldSpec(num_frames=1, height=128, width=256, seed=3, curvature="straight")
    plain, walking = World(base), World(WorldSpec(**{**base.__dict__, "walkers": True}))
    assert not plain.painter.sidewalks and walking.painter.sidewalks
    painter = walking.painter
    x_road = (
        painter.x_cam
        + np.float32(walking.ego_lateral)
        - walking.road.bend(walking.s_ego, painter.z[:, 0])[:, None]
    )
    ground = {
        "plain": plain.painter._ground(plain.s_ego, plain.ego_lateral),
        "walking": painter._ground(walking.s_ego, walking.ego_lateral),
    }
    on_path = np.abs(x_road - (walking.road.right_edge_m + SIDEWALK_M)) < 0.3
    on_road = (x_road > walking.road.left_edge_m + 0.5) & (x_road < walking.road.right_edge_m - 0.5)
    near = painter.z[:, 0] < 25  # close rows: no fog mixing colours
    path = on_path & near[:, None]
    assert path.sum() > 10
    sidewalk, grass = np.asarray(DAY.sidewalk), np.asarray(DAY.grass)
    walk_px, grass_px = ground["walking"][path].mean(0), ground["plain"][path].mean(0)
    assert np.abs(walk_px - sidewalk).sum() < np.abs(walk_px - grass).sum()
    assert np.abs(grass_px - grass).sum() < np.abs(grass_px - sidewalk).sum()
    np.testing.assert_array_equal(ground["walking"][on_road], ground["plain"][on_road])
