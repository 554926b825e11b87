"""The scene preview's library (no Gradio, no browser): limits, the editor form <-> scenario <-> YAML,
box motions and clicks, errors as messages, both preview tiers and "Add to catalog" (with untrained
tiny models: fast, the same code paths as the shipped ones)."""

import pyarrow.dataset as ds
import pytest
import yaml
from conftest import save_cascade

from drivesim.data.catalog import read_clips
from drivesim.pipelines.batch import BatchOptions, generate_catalog
from drivesim.pipelines.rollout import RolloutConfig
from drivesim.preview import session
from drivesim.preview.boxes import BoxRow, add_click, corners_box, lane_change
from drivesim.preview.limits import (
    LimitError,
    PreviewLimits,
    check_full_render,
    check_steps,
    full_render_frames,
)
from drivesim.preview.runs import Previewer, PreviewSettings
from drivesim.preview.scene import SceneForm, form_to_scenario, scenario_to_form, scenario_yaml
from drivesim.scenario import ScenarioError, parse_scenario

FAST = PreviewSettings(preview_steps=2, steps=2, interpolation_steps=1, upsampler="none")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_cascade(tmp_path_factory.mktemp("cascade"))


def night_scene(**changes) -> SceneForm:
    form = SceneForm(
        id="night_test",
        time_of_day="night",
        crowdedness="crowded",
        duration_s=0.2,
        boxes=[[1, 0.4, 0.55, 0.5, 0.7, "static", None, None, None, None]],
    )
    for name, value in changes.items():
        setattr(form, name, value)
    return form


def test_limits_name_the_limit_the_value_and_the_fix():
    limits = PreviewLimits(max_frames=100, max_steps=30, max_pixels=256 * 512)
    check_steps(limits, steps=30, interpolation_steps=1)
    with pytest.raises(LimitError, match=r"steps=31 is over this server's limit of 30 .*--max-steps"):
        check_steps(limits, steps=31)
    with pytest.raises(LimitError, match="interpolation_steps=0: use 1 or more"):
        check_steps(limits, interpolation_steps=0)
    cfg = RolloutConfig()
    # 2 s: 3 whole segments of 6 key frames make 69 frames at 30 fps, cut to the 60 asked for
    assert full_render_frames(parse_scenario({"id": "a", "duration_s": 2}), cfg) == (60, 3)
    check_full_render(parse_scenario({"id": "a", "duration_s": 3}), cfg, limits)  # 90 frames
    with pytest.raises(LimitError, match=r"4 s makes 120 frames .* limit of 100 frames .*--max-frames"):
        check_full_render(parse_scenario({"id": "a", "duration_s": 4}), cfg, limits)
    big = parse_scenario({"id": "a", "output": {"resolution": [512, 1024]}})
    with pytest.raises(LimitError, match=r"512x1024 = 524288 pixels is over .* 131072 .*--max-pixels"):
        check_full_render(big, cfg, limits)
    with pytest.raises(ValueError, match="max_steps=0"):
        PreviewLimits(max_steps=0)


def test_over_limit_request_is_refused_with_a_message_before_any_work(tmp_path):
    previewer = Previewer(tmp_path / "no_models", limits=PreviewLimits(max_steps=8), work_dir=tmp_path / "w")
    editor = session.Editor(night_scene())
    frame, message = session.first_frame(previewer, editor, PreviewSettings(preview_steps=9))
    assert frame is None and message.startswith("Refused, over a limit: preview_steps=9 is over")
    preview, message = session.full(previewer, editor, PreviewSettings(steps=4, interpolation_steps=20))
    assert preview is None and "interpolation_steps=20 is over this server's limit of 8" in message
    long = session.Editor(night_scene(duration_s=60))
    assert "frames per request" in session.full(previewer, long, PreviewSettings(steps=4))[1]
    assert previewer._keys is None and previewer._cascade is None  # refused before loading a model


def test_form_round_trips_through_yaml_with_schedules_and_moving_boxes():
    form = night_scene(
        duration_s=3,
        time_of_day_schedule="1.5=day",
        seed=7,
        resolution="256x512",
        crowdedness_schedule="1=light, 2=moderate",
        boxes=[
            [3, 0.4, 0.5, 0.5, 0.6, "end", 0.45, 0.55, 0.6, 0.75],
            [4, 0.6, 0.5, 0.7, 0.6, "left", None, None, None, None],
            ["", "", "", "", "", "", "", "", "", ""],
        ],
    )  # a blank row is skipped
    scenario = form_to_scenario(form)
    assert scenario.schedule.crowdedness[1].value == "moderate" and scenario.output.resolution == (256, 512)
    end_track, lane_track = scenario.agents[0].box_track, scenario.agents[1].box_track
    assert end_track[1].t == 3 and end_track[1].box == (0.45, 0.55, 0.6, 0.75)
    assert lane_track[1].box[0] < lane_track[0].box[0] and lane_track[1].box[1] == lane_track[0].box[1]
    text = scenario_yaml(scenario)
    again = parse_scenario(yaml.safe_load(text))
    assert again == scenario
    back, notes = scenario_to_form(again)
    assert back.time_of_day_schedule == "1.5=day" and back.seed == 7 and not notes
    assert back.boxes[0] == [3, 0.4, 0.5, 0.5, 0.6, "end", 0.45, 0.55, 0.6, 0.75, "car"]
    assert back.boxes[1][5] == "end"  # a lane change is saved as its end box


def test_loaded_file_keeps_what_the_form_does_not_show(tmp_path):
    path = tmp_path / "w.yaml"
    agents = [{"id": 1, "waypoints": [{"t": 0, "ahead_m": 20}]}]
    path.write_text(
        yaml.safe_dump(
            {
                "id": "w",
                "crowdedness": "moderate",
                "road": {"curvature": "winding"},
                "variants": 3,
                "agents": agents,
            }
        )
    )
    editor, message = session.load_yaml(path, "w.yaml")
    assert "loaded w.yaml" in message and "variants" in message and "agents [1]" in message
    editor.form.boxes = [[2, 0.4, 0.5, 0.5, 0.6, "static"]]
    scenario = editor.scenario()
    assert scenario.road.curvature == "winding" and scenario.variants == 1
    assert [a.id for a in scenario.agents] == [1, 2] and scenario.agents[0].waypoints is not None


def test_editor_errors_name_the_field_and_the_fix(tmp_path):
    with pytest.raises(ScenarioError, match="time_of_day schedule: 'dusk' is not at=value"):
        form_to_scenario(night_scene(time_of_day_schedule="dusk"))
    with pytest.raises(ScenarioError, match=r"schedule.time_of_day\[0\].at=5 is not inside the clip"):
        form_to_scenario(night_scene(time_of_day_schedule="5=day"))
    out_of_frame = night_scene(boxes=[[1, 0.4, 0.55, 1.3, 0.7, "static"]])
    with pytest.raises(ScenarioError, match=r"leaves the frame[\s\S]*agents\[0\] is boxes row 1, id 1"):
        form_to_scenario(out_of_frame)
    with pytest.raises(ScenarioError, match="boxes row 1: motion='up'; use one of static, end, left, right"):
        form_to_scenario(night_scene(boxes=[[1, 0.4, 0.55, 0.5, 0.7, "up"]]))
    with pytest.raises(ScenarioError, match="boxes row 1: end_x1, end_y1, end_x2, end_y2 missing"):
        form_to_scenario(night_scene(boxes=[[1, 0.4, 0.55, 0.5, 0.7, "end"]]))
    with pytest.raises(ScenarioError, match="resolution '128by256': write HEIGHTxWIDTH"):
        form_to_scenario(night_scene(resolution="128by256"))
    bad = tmp_path / "gradio_tmp_0042" / "mine.yaml"
    bad.parent.mkdir()
    bad.write_text("id: x\ntime_of_day: [unclosed\n")
    editor, message = session.load_yaml(bad, "mine.yaml")
    assert editor is None and message.startswith("Error: mine.yaml: not valid YAML: line 3")
    assert "gradio_tmp_0042" not in message and "Traceback" not in message
    image, problem = session.layout(session.Editor(out_of_frame))  # still drawn, with the problem named
    assert image.shape == (256, 512, 3) and "leaves the frame" in problem


def test_unexpected_errors_become_a_message_without_a_traceback(caplog):
    message = session.explain(KeyError("boom"))
    assert message.startswith("Error: internal error (KeyError") and "Traceback" not in message
    assert "preview request failed" in caplog.text  # the traceback goes to the server's log


def test_clicks_draw_boxes_and_lane_changes_move_one_lane():
    assert corners_box((300, 200), (100, 120), (256, 512)) == (0.1953, 0.4688, 0.5859, 0.7812)
    pending, rows, message = add_click([], (100, 120), (256, 512), "static", [], taken_ids=[1])
    assert len(pending) == 1 and rows == [] and "opposite corner" in message
    pending, rows, message = add_click(pending, (300, 200), (256, 512), "static", [], taken_ids=[1])
    assert pending == [] and rows[0][:6] == [2, 0.1953, 0.4688, 0.5859, 0.7812, "static"]
    clicks = [(100, 120), (150, 200), (200, 130), (260, 220)]
    pending, rows = [], []
    for point in clicks:
        pending, rows, message = add_click(pending, point, (256, 512), "end", rows, [])
    assert rows[0][5] == "end" and rows[0][6:10] == list(corners_box(*clicks[2:], (256, 512)))
    box = (0.45, 0.6, 0.55, 0.8)
    right, near_right = lane_change(box, 1), lane_change((0.45, 0.6, 0.55, 0.95), 1)
    assert right[0] > box[0] and right[1:4:2] == box[1:4:2]
    assert near_right[0] - 0.45 > right[0] - 0.45  # a lane is wider nearer the camera
    assert BoxRow(1, 1, box, "left").end_box()[2] < box[2]


def test_a_drawn_box_carries_its_category_into_the_scenario():
    pending, rows, _ = add_click([], (100, 120), (256, 512), "static", [], [], category="pedestrian")
    pending, rows, message = add_click(pending, (130, 200), (256, 512), "static", [], [], "pedestrian")
    assert rows[0][-1] == "pedestrian" and "(static, pedestrian)" in message
    scenario = form_to_scenario(SceneForm(boxes=rows))
    assert [a.category for a in scenario.agents] == ["pedestrian"]
    back, _ = scenario_to_form(scenario)
    assert back.boxes[0][-1] == "pedestrian"
    old_row = rows[0][:-1]  # a table without the category column: a car
    assert form_to_scenario(SceneForm(boxes=[old_row])).agents[0].category == "car"
    with pytest.raises(ScenarioError, match="boxes row 1: category='horse'; use one of car, truck"):
        form_to_scenario(SceneForm(boxes=[[*old_row, "horse"]]))
    with pytest.raises(ScenarioError, match="category 'train'"):
        add_click([(1, 1)], (130, 200), (256, 512), "static", [], [], "train")


def test_keyframe_preview_writes_a_clip_and_its_boxed_copy(tmp_path, model_dir):
    previewer = Previewer(model_dir, limits=PreviewLimits(max_key_frames=3), work_dir=tmp_path / "w")
    editor = session.Editor(night_scene(duration_s=1.0, crowdedness_schedule="0.5=light"))
    frame, message = session.first_frame(previewer, editor, FAST)
    assert frame.shape == (128, 256, 3) and "first frame ready" in message
    preview, message = session.keyframes(previewer, editor, FAST)
    assert preview.frames == 3 and preview.fps == 7.5 and preview.video.stat().st_size > 0
    assert preview.boxed.read_bytes() != preview.video.read_bytes()
    assert "the first 3 of 8" in message and "starting conditions" in message


def test_missing_model_file_is_a_message(tmp_path, model_dir):
    broken = save_cascade(tmp_path / "models")
    (broken / "unet.safetensors").unlink()
    previewer = Previewer(broken, work_dir=tmp_path / "w")
    frame, message = session.first_frame(previewer, session.Editor(night_scene()), FAST)
    assert frame is None and message.startswith("Error:") and "unet" in message
    assert "Traceback" not in message


def test_add_to_catalog_writes_the_same_row_as_a_batch(tmp_path, model_dir):
    """Full render + "Add to catalog" vs `drivesim generate --catalog` on the saved YAML: the same row
    (mp4 and label hashes included) but for timing and the source file name."""
    previewer = Previewer(model_dir, catalog=tmp_path / "catalog", work_dir=tmp_path / "w")
    editor = session.Editor(night_scene(seed=5))
    ticks = []
    preview, row, message = session.add_to_catalog(
        previewer, editor, FAST, None, lambda done, total: ticks.append(done)
    )
    assert message.startswith("added clip") and ticks == [1, 2]  # one segment + the final flush
    assert preview.rendered is None and preview.video.exists()  # the media moved; the page keeps its copy
    table = ds.dataset(tmp_path / "catalog" / "clips", partitioning="hive").to_table(
        filter=ds.field("time_of_day") == "night"
    )
    assert table.num_rows == 1 and table.column("crowdedness").to_pylist() == ["crowded"]
    assert row["clip_id"] == table.column("clip_id")[0].as_py() and row["num_agents"] == 1
    again = session.add_to_catalog(previewer, editor, FAST, preview)[2]
    assert "already in the catalog" in again
    yaml_path, _, _ = session.save_yaml(editor, tmp_path)
    options = BatchOptions(RolloutConfig(steps=2, interpolation_steps=1), "none")
    generate_catalog([yaml_path], tmp_path / "batch", options, model_dir, progress=False)
    ignore = {"generation_seconds", "created_at", "scenario_file"}
    preview_row, batch_row = (
        {k: v for k, v in read_clips(tmp_path / name).to_pylist()[0].items() if k not in ignore}
        for name in ("catalog", "batch")
    )
    assert preview_row == batch_row


def test_full_render_without_a_catalog_still_renders_and_add_says_how(tmp_path, model_dir):
    previewer = Previewer(model_dir, work_dir=tmp_path / "w")
    editor = session.Editor(night_scene())
    preview, message = session.full(previewer, editor, FAST)
    assert preview.frames == 6 and preview.fps == 30 and "full render: 6 frames" in message  # 0.2 s
    assert session.add_to_catalog(previewer, editor, FAST, preview)[2].endswith("--catalog DIR`")
