"""The page's actions as plain functions (no Gradio): editor values in, results and a message for
the page out. Every error becomes a message (what went wrong and the fix), never a traceback;
an unexpected one is logged with its traceback on the server and named in the page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivesim.data.catalog import CatalogError
from drivesim.models.weights import CheckpointError
from drivesim.pipelines.upsample import METHODS
from drivesim.preview.boxes import add_click, parse_box_rows
from drivesim.preview.drawing import layout_frame
from drivesim.preview.limits import LimitError
from drivesim.preview.runs import SOURCE, Preview, Previewer, PreviewError, PreviewSettings, request_key
from drivesim.preview.scene import (
    SceneForm,
    form_to_scenario,
    load_yaml_file,
    scenario_to_form,
    scenario_yaml,
)
from drivesim.scenario import Scenario, ScenarioError

logger = logging.getLogger(__name__)
EXPLAINED = (ScenarioError, PreviewError, CheckpointError, CatalogError)


def explain(error: BaseException) -> str:
    """An exception -> the page's message (the traceback only in the server's log)."""
    if isinstance(error, LimitError):
        return f"Refused, over a limit: {error}"
    if isinstance(error, EXPLAINED):
        return f"Error: {error}"
    if isinstance(error, FileNotFoundError):  # e.g. a model file removed under a running server
        return f"Error: a file is missing: {error}"
    logger.error("preview request failed", exc_info=error)
    return f"Error: internal error ({type(error).__name__}: {error}); the server's log has the details"


@dataclass
class Editor:
    """One page session's editor state: the form, and the loaded file it edits (if any)."""

    form: SceneForm
    base: Scenario | None = None  # the loaded scenario (road, ego, agents the table cannot show)
    source: str = SOURCE  # the file it came from (the catalog row's scenario_file)

    def scenario(self) -> Scenario:
        """The form as a validated scenario (ScenarioError on a bad field)."""
        return form_to_scenario(self.form, self.base)


def parse_settings(
    preview_steps, steps, interpolation_steps, guidance_scene, guidance_boxes, guidance_context, upsampler
) -> PreviewSettings:
    """The page's sampling fields -> PreviewSettings (a ScenarioError names a bad field)."""
    ints = {"preview_steps": preview_steps, "steps": steps, "interpolation_steps": interpolation_steps}
    floats = {
        "guidance_scene": guidance_scene,
        "guidance_boxes": guidance_boxes,
        "guidance_context": guidance_context,
    }
    values = {}
    for name, value in ints.items():
        if value is None or float(value) != int(float(value)):
            raise ScenarioError(f"{name}={value!r}: give a whole number of steps")
        values[name] = int(float(value))
    for name, value in floats.items():
        if value is None or not 0 <= float(value) <= 20:
            raise ScenarioError(f"{name}={value!r}: give a guidance scale in 0..20 (1 = no guidance)")
        values[name] = float(value)
    if upsampler not in METHODS:
        raise ScenarioError(f"upsampler={upsampler!r}: use one of {', '.join(METHODS)}")
    return PreviewSettings(**values, upsampler=upsampler)


def layout(editor: Editor) -> tuple[np.ndarray, str]:
    """The layout frame boxes are drawn on -> (uint8 [H,W,3], message: '' or the scene's problem)."""
    try:
        rows = parse_box_rows(editor.form.boxes, "scene editor")
    except ScenarioError as e:
        return layout_frame(None, [], time_of_day=editor.form.time_of_day), explain(e)
    try:
        return layout_frame(editor.scenario(), rows), ""
    except ScenarioError as e:  # draw the boxes anyway, on a plain frame
        return layout_frame(None, rows, time_of_day=editor.form.time_of_day), explain(e)


def click(
    editor: Editor,
    pending: list,
    point: tuple[float, float],
    size: tuple[int, int],
    motion: str,
    category: str = "car",
) -> tuple[list, list[list], str]:
    """A click on the layout frame -> (pending clicks, the table's rows, message)."""
    taken = [a.id for a in (editor.base.agents if editor.base else [])]
    try:
        return add_click(pending, point, size, motion, editor.form.boxes, taken, category)
    except ScenarioError as e:
        return [], editor.form.boxes, explain(e)


def load_yaml(path: str | Path, name: str | None = None) -> tuple[Editor | None, str]:
    """An uploaded YAML file -> (its editor, message); (None, the error) if it does not load."""
    try:
        scenario = load_yaml_file(path, name)
    except ScenarioError as e:
        return None, explain(e)
    form, notes = scenario_to_form(scenario)
    shown = name or Path(path).name
    return Editor(form, scenario, shown), "\n".join([f"loaded {shown}: {scenario.id}", *notes])


def save_yaml(editor: Editor, folder: Path) -> tuple[Path | None, str, str]:
    """The scene as a YAML file in `folder` -> (path, YAML text, message)."""
    try:
        scenario = editor.scenario()
    except ScenarioError as e:
        return None, "", explain(e)
    text = scenario_yaml(scenario)
    path = folder / f"{scenario.id}.yaml"
    path.write_text(text)
    return (
        path,
        text,
        (
            f"saved {path.name} (schema v2; `drivesim generate --scenario {path.name} "
            "--catalog` renders it in a batch)"
        ),
    )


def first_frame(
    previewer: Previewer, editor: Editor, settings: PreviewSettings
) -> tuple[np.ndarray | None, str]:
    """Tier 1, first step: one frame with its boxes -> (uint8 [H,W,3] or None, message)."""
    try:
        _, boxed = previewer.first_frame(editor.scenario(), settings)
    except Exception as e:  # every failure becomes a page message
        return None, explain(e)
    return boxed, "first frame ready; generating the key frames ..."


def keyframes(previewer: Previewer, editor: Editor, settings: PreviewSettings) -> tuple[Preview | None, str]:
    """Tier 1: the key-frame clip -> (Preview or None, message)."""
    try:
        preview = previewer.keyframes(editor.scenario(), settings)
    except Exception as e:  # every failure becomes a page message
        return None, explain(e)
    note = f"\n{preview.note}" if preview.note else ""
    return preview, (
        f"key-frame preview: {preview.frames} frames at {preview.fps:g} fps, 128x256, "
        f"{preview.seconds:.1f} s{note}"
    )


def full(
    previewer: Previewer,
    editor: Editor,
    settings: PreviewSettings,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[Preview | None, str]:
    """Tier 2: the whole cascade -> (Preview or None, message)."""
    try:
        preview = previewer.full(editor.scenario(), settings, editor.source, on_progress)
    except Exception as e:  # every failure becomes a page message
        return None, explain(e)
    h, w = editor.scenario().output.resolution
    assert preview.clip is not None  # a full render always has its clip
    return preview, (
        f"full render: {preview.frames} frames at {preview.fps:g} fps, {h}x{w}, "
        f"{preview.seconds:.1f} s; clip {preview.clip.clip_id}"
    )


def add_to_catalog(
    previewer: Previewer,
    editor: Editor,
    settings: PreviewSettings,
    preview: Preview | None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[Preview | None, dict | None, str]:
    """Add the scene to the catalog, rendering it fully first unless the shown full render is of
    this scene and settings -> (the preview shown, the catalog row or None, message)."""
    if previewer.catalog is None:
        return (
            preview,
            None,
            explain(
                PreviewError("this server has no catalog: start it with `drivesim preview --catalog DIR`")
            ),
        )
    try:
        scenario = editor.scenario()
        present = previewer.in_catalog(scenario)
    except (ScenarioError, CatalogError) as e:
        return preview, None, explain(e)
    if present:
        return (
            preview,
            None,
            explain(
                CatalogError(
                    f"{previewer.catalog}: clip {present} (this scenario and seed) is already in the "
                    "catalog; change the seed or the scene to add another clip"
                )
            ),
        )
    current = request_key(scenario, settings)
    if preview is None or preview.tier != "full" or preview.rendered is None or preview.key != current:
        preview, message = full(previewer, editor, settings, on_progress)
        if preview is None:
            return None, None, message
    try:
        row = previewer.add_to_catalog(preview)
    except Exception as e:  # every failure becomes a page message
        return preview, None, explain(e)
    return (
        preview,
        row,
        (
            f"added clip {row['clip_id']} to {previewer.catalog} ({row['frames']} frames, "
            f"{row['height']}x{row['width']}, {row['time_of_day']}, {row['crowdedness']})"
        ),
    )
