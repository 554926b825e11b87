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
    data = {
        **BASE,
        "frames": 31,
        "fps": 30,
        "seed": 2,
        "agents": [
            {"id": 1, "waypoints": [{"t": 0, "lane": 0, "ahead_m": 20}, {"t": 1, "lane": 0, "ahead_m": 10}]}
        ],
    }
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
    data = {
        **BASE,
        "frames": 30,
        "agents": [
            {
                "id": 3,
                "box_track": [
                    {"t": 0, "box": [0.40, 0.45, 0.50, 0.55]},
                    {"t": 0.9, "box": [0.55, 0.48, 0.75, 0.68]},
                ],
            }
        ],
    }
    clip = render_clip(parse_scenario(data).to_world_spec())
    for label, target in (
        (clip.labels[0], [0.40, 0.45, 0.50, 0.55]),
        (clip.labels[27], [0.55, 0.48, 0.75, 0.68]),
    ):
        b = next(b for b in label.boxes if b.track_id == 3)
        got = [b.x1 / 256, b.y1 / 128, b.x2 / 256, b.y2 / 128]
        assert max(abs(g - t) for g, t in zip(got, target)) < 0.04, (got, target)


# ---- schema v2: schedules, sweeps, variants, clip ids, bad input ----

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from drivesim.scenario import MAX_SIDE, Scenario  # noqa: E402
from drivesim.scenario_expand import expand, expand_paths, scenario_hash  # noqa: E402

SWEEP = {
    "version": 2,
    "id": "grid",
    "frames": 60,
    "sweep": {"time_of_day": ["day", "night"], "crowdedness": ["light", "crowded"], "seeds": [1, 2]},
}


def test_v1_files_load_unchanged_and_expand_like_their_v2_twin(repo, tmp_path):
    path = repo / "scenarios" / "day_cut_in.yaml"
    v1 = load_scenario(path)
    assert v1.version == 1 and v1.sweep is None and v1.schedule.time_of_day == []
    (clip,) = expand(v1, str(path))
    twin = tmp_path / "twin.yaml"
    twin.write_text(path.read_text().replace("version: 1", "version: 2"))
    assert expand(load_scenario(twin))[0].clip_id == clip.clip_id == f"{clip.scenario_hash}-5"
    assert clip.scenario.version == 2 and clip.scenario.model_dump(exclude={"version"}) == v1.model_dump(
        exclude={"version"}
    )


def test_v2_round_trip_through_yaml(tmp_path):
    data = {
        **SWEEP,
        "sweep": None,
        "duration_s": 4,
        "frames": None,
        "variants": 3,
        "schedule": {
            "time_of_day": [{"at": 2.5, "value": "night"}],
            "crowdedness": [{"at": 1, "value": "moderate"}, {"at": 3, "value": "crowded"}],
        },
    }
    scenario = parse_scenario(data)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario.model_dump(mode="json")))
    assert load_scenario(path) == scenario
    assert [scenario.time_of_day_at(t) for t in (0, 2.49, 2.5)] == ["day", "day", "night"]
    assert [scenario.crowdedness_at(t) for t in (0, 1, 3.9)] == ["light", "moderate", "crowded"]


def test_sweep_2x2x2_expands_to_8_clips_with_stable_ids():
    clips = expand(parse_scenario(SWEEP), "grid.yaml")
    assert len(clips) == 8 and len({c.clip_id for c in clips}) == 8
    got = {(c.scenario.time_of_day, c.scenario.crowdedness, c.seed) for c in clips}
    assert got == {(t, c, s) for t in ("day", "night") for c in ("light", "crowded") for s in (1, 2)}
    assert all(c.scenario.sweep is None and c.clip_id == f"{c.scenario_hash}-{c.seed}" for c in clips)
    again = expand(parse_scenario({**SWEEP, "description": "edited"}), "grid.yaml")
    assert [c.clip_id for c in again] == [c.clip_id for c in clips]  # description is not hashed
    more = expand(parse_scenario({**SWEEP, "sweep": {**SWEEP["sweep"], "seeds": [1, 2, 3]}}))
    assert {c.clip_id for c in clips} < {c.clip_id for c in more}  # a new seed keeps the old ids
    faster = parse_scenario({**SWEEP, "sweep": None, "ego": {"speed_kmh": 90}})
    assert scenario_hash(faster) != scenario_hash(parse_scenario({**SWEEP, "sweep": None}))


def test_variants_are_consecutive_seeds_and_cli_override():
    base = parse_scenario({"id": "v", "seed": 10, "variants": 3})
    assert [c.seed for c in expand(base)] == [10, 11, 12]
    assert [c.variant for c in expand(base, variants=2)] == [0, 1]
    with pytest.raises(ScenarioError, match=r"sweep\.seeds lists the seeds"):
        expand(parse_scenario(SWEEP), "grid.yaml", variants=2)


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"id": ".."}, ["id = '..'", "letter or digit"]),
        ({"id": "-rf"}, ["id = '-rf'", "letter or digit"]),
        ({"id": "a/b"}, ["only letters, digits and _ . -"]),
        ({"id": "a", "output": {"resolution": [4096, 8192]}}, ["4096x8192", f"32..{MAX_SIDE}"]),
        ({"version": 1, "id": "a", "sweep": {"seeds": [1]}}, ["sweep", "set version: 2"]),
        (
            {"id": "a", "frames": 30, "schedule": {"time_of_day": [{"at": 2, "value": "night"}]}},
            ["schedule.time_of_day[0].at=2", "0 < at < 1 s"],
        ),
        (
            {"id": "a", "schedule": {"crowdedness": [{"at": 1, "value": "busy"}]}},
            ["schedule.crowdedness[0].value", "'busy'", "moderate"],
        ),
        (
            {
                "id": "a",
                "duration_s": 4,
                "schedule": {"crowdedness": [{"at": 2, "value": "light"}, {"at": 1, "value": "crowded"}]},
            },
            ["strictly increasing"],
        ),
        (
            {
                "id": "a",
                "sweep": {"time_of_day": ["night"]},
                "duration_s": 4,
                "schedule": {"time_of_day": [{"at": 1, "value": "day"}]},
            },
            ["give one"],
        ),
        ({"id": "a", "sweep": {"seeds": [1, 1]}}, ["sweep.seeds", "repeats"]),
        ({"id": "a", "sweep": {"seeds": [3]}, "variants": 2}, ["not both"]),
        ({"id": "a", "sweep": {"dawn": [1]}}, ["sweep.dawn", "unknown key", "crowdedness"]),
        (
            {
                "id": "a",
                "crowdedness": "crowded",
                "sweep": {"crowdedness": ["crowded", "empty"]},
                "agents": [{"id": 1, "waypoints": [{"t": 0, "ahead_m": 20}]}],
            },
            ["sweep.crowdedness 'empty'", "at most 0"],
        ),
    ],
)
def test_v2_errors_name_field_value_and_fix(data, expected):
    msg = error_of(data)
    assert msg.startswith("bad.yaml: invalid scenario")
    for text in expected:
        assert text in msg, (text, msg)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\n  time_of_day: [day\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: not valid YAML: line 2, column 14")
    assert "<unicode string>" not in str(info.value)


def test_expand_paths_validates_every_file_first_and_takes_globs(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(SWEEP))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"id": "b", "fps": 0}))
    (tmp_path / "c.yaml").write_text("id: [unclosed\n")
    with pytest.raises(ScenarioError) as info:
        expand_paths([tmp_path])
    assert "b.yaml" in str(info.value) and "fps" in str(info.value) and "c.yaml" in str(info.value)
    assert len(expand_paths([str(tmp_path / "a*.yaml")])) == 8
    with pytest.raises(ScenarioError, match="matches no scenario file"):
        expand_paths([str(tmp_path / "z*.yaml")])


KEYS = [*sorted(Scenario.model_fields), "agents", "bogus"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**20),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["day", "night", "light", "crowded", ".."]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["at", "value", "t", "box", "lane", "seeds", "time_of_day", "resolution", "id"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=8), st.booleans())
def test_fuzzed_scenarios_fail_only_with_clear_scenario_errors(tmp_path_factory, data, as_text):
    """Random mappings (or their YAML text, mangled) either load or raise a ScenarioError naming the file."""
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.yaml"
    text = yaml.safe_dump(data)
    path.write_text(text[: len(text) * 2 // 3] + "\n  : [" if as_text else text)
    try:
        clips = expand(load_scenario(path), str(path))
    except ScenarioError as e:
        assert str(e).startswith(str(path)), str(e)
    else:
        assert clips and all(c.clip_id for c in clips)


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab01:-[]{}&*!|>'\"#%@`,.? \n\t")) | st.characters(codec="utf-8"),
        max_size=60,
    )
)
def test_fuzzed_yaml_text_fails_only_with_scenario_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "text.yaml"
    path.write_text(text)
    try:
        load_scenario(path)
    except ScenarioError as e:
        assert str(e).startswith(str(path)), str(e)


def test_undecodable_file_is_a_scenario_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match=r"latin1\.yaml: cannot read"):
        load_scenario(path)


def test_shipped_v2_examples_are_valid(repo):
    files = scenario_files(repo / "scenarios" / "sweeps")
    counts = {p.stem: len(expand(load_scenario(p), str(p))) for p in files}
    assert counts == {"city_grid": 8, "dusk_rush_hour": 3}
