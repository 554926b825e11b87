import pytest
import yaml

from drivesim.scenario import ScenarioError, load_scenario, parse_scenario, scenario_files
from drivesim.world import render_clip

BASE = {"version": 1, "id": "t", "time_of_day": "day", "crowdedness": "light", "frames": 10}


def error_of(data) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "bad.yaml")
    return str(info.value)


def test_shipped_scenarios_are_valid(repo):
    files = scenario_files(repo / "scenarios")
    assert len(files) >= 3
    scenarios = [load_scenario(f) for f in files]
    assert any(s.time_of_day == "night" and s.crowdedness == "crowded" for s in scenarios)


def test_unknown_key_names_key_and_allowed_keys():
    msg = error_of({**BASE, "ego": {"speed_kmh": 50, "sped": 3}})
    assert "bad.yaml" in msg and "ego.sped" in msg and "unknown key" in msg
    assert "speed_kmh" in msg and "lane" in msg


def test_bad_enum_names_field_value_and_allowed():
    msg = error_of({**BASE, "crowdedness": "busy"})
    assert "crowdedness" in msg and "'busy'" in msg
    for allowed in ("empty", "light", "moderate", "crowded"):
        assert allowed in msg


def test_box_out_of_frame_is_rejected():
    agent = {"id": 1, "box_track": [{"t": 0, "box": [0.5, 0.5, 1.3, 0.7]}]}
    msg = error_of({**BASE, "agents": [agent]})
    assert "agents[0].box_track[0]" in msg and "[0, 1]" in msg


def test_lane_not_on_road_is_rejected():
    agent = {"id": 1, "waypoints": [{"t": 0, "lane": 5, "ahead_m": 20}]}
    msg = error_of({**BASE, "agents": [agent]})
    assert "lane=5" in msg and "relative to the ego lane" in msg


def test_keyframe_after_clip_end_and_both_lengths_rejected():
    agent = {"id": 1, "waypoints": [{"t": 9, "ahead_m": 20}]}
    assert "after the clip end" in error_of({**BASE, "agents": [agent]})
    assert "not both" in error_of({**BASE, "duration_s": 2})


def test_too_many_agents_for_crowdedness():
    agents = [{"id": i, "waypoints": [{"t": 0, "ahead_m": 10 * i}]} for i in range(1, 7)]
    msg = error_of({**BASE, "agents": agents})
    assert "at most 4" in msg and "crowdedness" in msg


def test_resolution_and_types():
    assert "multiples of 8" in error_of({**BASE, "output": {"resolution": [100, 250]}})
    assert "fps" in error_of({**BASE, "fps": "fast"})
    assert "YAML mapping" in error_of(["not", "a", "mapping"])


def test_yaml_syntax_error_names_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\n  time_of_day: [day\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not valid YAML"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="no such scenario"):
        load_scenario(tmp_path / "missing.yaml")


def test_waypoint_agent_is_rendered_where_scripted(tmp_path):
    data = {**BASE, "frames": 31, "fps": 30, "seed": 2,
            "agents": [{"id": 1, "waypoints": [{"t": 0, "lane": 0, "ahead_m": 20},
                                               {"t": 1, "lane": 0, "ahead_m": 10}]}]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    scenario = load_scenario(path)
    clip = render_clip(scenario.to_world_spec())
    first = next(b for b in clip.labels[0].boxes if b.track_id == 1)
    last = next(b for b in clip.labels[-1].boxes if b.track_id == 1)
    # Near face on the road at z metres: bottom row = horizon + f * camera_height / z.
    f, horizon, cam_h = 0.86 * 256, 0.42 * 128, 1.4
    assert abs(first.y2 - (horizon + f * cam_h / 20)) < 1.5
    assert abs(last.y2 - (horizon + f * cam_h / 10)) < 1.5
    assert (last.x2 - last.x1) > 1.8 * (first.x2 - first.x1)  # twice as near, twice as wide


def test_box_track_agent_follows_its_boxes():
    data = {**BASE, "frames": 30, "agents": [
        {"id": 3, "box_track": [{"t": 0, "box": [0.40, 0.45, 0.50, 0.55]},
                                {"t": 0.9, "box": [0.55, 0.48, 0.75, 0.68]}]}]}
    clip = render_clip(parse_scenario(data).to_world_spec())
    for label, target in ((clip.labels[0], [0.40, 0.45, 0.50, 0.55]),
                          (clip.labels[27], [0.55, 0.48, 0.75, 0.68])):
        b = next(b for b in label.boxes if b.track_id == 3)
        got = [b.x1 / 256, b.y1 / 128, b.x2 / 256, b.y2 / 128]
        assert max(abs(g - t) for g, t in zip(got, target)) < 0.04, (got, target)
