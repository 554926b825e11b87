import numpy as np
import pytest

from drivesim.world import World, WorldSpec, render_clip


def test_same_seed_same_bytes_and_labels():
    spec = WorldSpec(time_of_day="night", crowdedness="moderate", num_frames=12, seed=42)
    a, b = render_clip(spec), render_clip(spec)
    assert a.frames.tobytes() == b.frames.tobytes()
    assert a.labels == b.labels
    c = render_clip(WorldSpec(time_of_day="night", crowdedness="moderate", num_frames=12, seed=43))
    assert a.frames.tobytes() != c.frames.tobytes()


@pytest.mark.parametrize("size", [(128, 256), (96, 320)])
def test_labels_inside_frame(size):
    h, w = size
    for seed in range(4):
        clip = render_clip(WorldSpec(crowdedness="crowded", num_frames=20, seed=seed, height=h, width=w))
        assert clip.frames.shape == (20, h, w, 3) and clip.frames.dtype == np.uint8
        for label in clip.labels:
            for b in label.boxes:
                assert 0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h
                assert 0 < b.visibility <= 1
                inside = b.x1 >= 1 and b.y1 >= 1 and b.x2 <= w - 1 and b.y2 <= h - 1
                assert not (inside and b.truncated), b  # the frame's edge cuts nothing of it


def test_boxes_are_tight_around_rendered_cars():
    world = World(WorldSpec(crowdedness="crowded", num_frames=15, seed=7, height=256, width=512))
    checked = 0
    for _, label in world.frames():
        instance = world.painter.instance
        cars = world.traffic.cars + [a.car for a in world.agents]
        index_of = {c.track_id: i for i, c in enumerate(cars)}
        for b in label.boxes:
            mask = instance == index_of[b.track_id] + 1
            assert mask.any()
            ys, xs = np.nonzero(mask)
            xs, ys = xs + 0.5, ys + 0.5  # pixel centres
            # Visible pixels lie in the (amodal) box, with 1 px of rasteriser slack.
            assert xs.min() >= b.x1 - 1 and xs.max() <= b.x2 + 1
            assert ys.min() >= b.y1 - 1 and ys.max() <= b.y2 + 1
            if b.visibility == 1.0:  # unoccluded: the box is tight around the silhouette
                assert abs(xs.min() - b.x1) <= 1.5 and abs(xs.max() - b.x2) <= 1.5
                assert abs(ys.min() - b.y1) <= 1.5 and abs(ys.max() - b.y2) <= 1.5
                checked += 1
    assert checked > 20


def test_a_car_cut_by_the_frame_edge_is_truncated_not_occluded():
    from drivesim.world.traffic import Car

    world = World(WorldSpec(crowdedness="empty", num_frames=1, seed=0, height=128, width=256))

    def car(track_id, lateral, ahead):
        return Car(track_id, "scripted", lateral, ahead, 0.0, (200, 200, 200), camera_lateral=True)

    def boxes(*cars):
        return {b.track_id: b for b in world.painter.boxes_only(world.s_ego, world.ego_lateral, list(cars))}

    # Visibility compares two rasterisations of the silhouette: a few edge pixels of slack.
    edge = boxes(car(1, -3.5, 5.0))[1]  # near, on the left: part of it outside the frame
    assert edge.x1 == 0 and edge.truncated and not edge.occluded and edge.visibility < 0.9
    whole = boxes(car(2, 0.0, 20.0))[2]
    assert not whole.truncated and not whole.occluded and whole.visibility > 0.99
    behind = boxes(car(2, 0.0, 20.0), car(3, 1.2, 10.0))[2]
    assert behind.occluded and not behind.truncated and behind.visibility < 0.9  # the nearer car hides part


def test_car_pixels_change_the_image():
    spec = WorldSpec(crowdedness="light", num_frames=1, seed=3, height=128, width=256)
    world = World(spec)
    cars = world.traffic.cars
    with_cars, boxes = world.painter.paint(world.s_ego, world.ego_lateral, cars)
    mask = world.painter.instance > 0
    empty, none = world.painter.paint(world.s_ego, world.ego_lateral, [])
    assert boxes and none == []
    diff = np.abs(with_cars.astype(int) - empty.astype(int)).sum(-1)
    assert diff[mask].mean() > 20


def test_night_is_darker_than_day():
    for seed in range(3):
        day = render_clip(WorldSpec(time_of_day="day", num_frames=4, seed=seed)).frames.mean()
        night = render_clip(WorldSpec(time_of_day="night", num_frames=4, seed=seed)).frames.mean()
        assert night < 0.5 * day, (seed, day, night)


def test_car_count_follows_crowdedness():
    mean_visible = {}
    for crowd in ("empty", "light", "moderate", "crowded"):
        counts = [
            len(lab.boxes)
            for seed in range(6)
            for lab in render_clip(WorldSpec(crowdedness=crowd, num_frames=10, seed=seed)).labels
        ]
        mean_visible[crowd] = float(np.mean(counts))
    assert mean_visible["empty"] == 0
    assert 0 < mean_visible["light"] < mean_visible["moderate"] < mean_visible["crowded"]


def test_scene_is_resolution_independent():
    small = render_clip(WorldSpec(crowdedness="moderate", num_frames=3, seed=9, height=128, width=256))
    large = render_clip(WorldSpec(crowdedness="moderate", num_frames=3, seed=9, height=512, width=1024))
    assert large.frames.shape == (3, 512, 1024, 3)
    for ls, ll in zip(small.labels, large.labels):
        big = {b.track_id: b for b in ll.boxes}
        for b in ls.boxes:
            if b.track_id in big and b.visibility == 1.0 and b.x2 - b.x1 > 3:
                B = big[b.track_id]
                assert abs((B.x1 + B.x2) / 8 - (b.x1 + b.x2) / 2) < 1.0
                assert abs(B.y2 / 4 - b.y2) < 1.0


def test_night_has_lights_and_lit_lane_marks():
    clip = render_clip(
        WorldSpec(time_of_day="night", crowdedness="crowded", num_frames=2, seed=1, height=256, width=512)
    )
    frame = clip.frames[0].astype(int)
    sky = frame[:60].mean()
    assert sky < 30  # dark sky
    red = (frame[..., 0] > 180) & (frame[..., 1] < 120)  # taillights
    assert red.sum() > 5
    road_rows = frame[200:]
    assert road_rows.max() > 200  # headlight-lit marks in the lower image
