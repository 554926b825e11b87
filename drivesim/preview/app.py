"""The Gradio page of `drivesim preview`: layout and wiring only (the actions are
drivesim.preview.session, which has no Gradio in it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypedDict, cast, get_args

import gradio as gr
from gradio.themes import Default as DefaultTheme

from drivesim.pipelines.upsample import METHODS
from drivesim.preview import session
from drivesim.preview.boxes import BOX_COLUMNS, MOTIONS
from drivesim.preview.drawing import LAYOUT_SIZE
from drivesim.preview.runs import KEEP_S, SOURCE, Previewer, PreviewSettings
from drivesim.preview.scene import SceneForm
from drivesim.scenario import Crowdedness, TimeOfDay
from drivesim.world.categories import CATEGORIES

RESOLUTIONS = ["128x256", "256x512", "512x1024"]
MOTION_CHOICES = [
    ("static", "static"),
    ("lane change left", "left"),
    ("lane change right", "right"),
    ("to an end box (2 more clicks)", "end"),
]


class ModelEvent(TypedDict):
    """Queue options of the events that run a model."""

    concurrency_limit: int | None
    concurrency_id: str


MODEL_EVENT: ModelEvent = {"concurrency_limit": None, "concurrency_id": "model"}  # limit set in build_app
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # system fonts: the page fetches nothing
PROGRESS = gr.Progress()  # marks a handler's progress parameter (Gradio passes a tracker per call)


def _editor(loaded: tuple, form_values: Sequence) -> session.Editor:
    return session.Editor(SceneForm(*form_values), *loaded)


def _video(preview, show_boxes: bool) -> str | None:
    if preview is None:
        return None
    return str(preview.boxed if show_boxes else preview.video)


def limits_text(previewer: Previewer) -> str:
    """The server's limits and catalog, as shown on the page."""
    lim = previewer.limits
    catalog = f"`{previewer.catalog}`" if previewer.catalog else "none (start with `--catalog DIR`)"
    return (
        f"Limits per request: full render {lim.max_frames} frames at 30 fps, {lim.max_pixels} pixels per "
        f"frame; key-frame preview {lim.max_key_frames} frames; {lim.max_steps} denoising steps. "
        f"Queue: {lim.max_queue} waiting, {lim.concurrency} running. Catalog: {catalog}."
    )


def build_app(previewer: Previewer) -> gr.Blocks:
    """The scene-preview page (gr.Blocks; call .queue() and .launch(), or use launch())."""
    defaults, settings0 = SceneForm(), PreviewSettings()
    model_event: ModelEvent = {**MODEL_EVENT, "concurrency_limit": previewer.limits.concurrency}
    with gr.Blocks(title="drivesim scene preview", delete_cache=(3600, KEEP_S)) as demo:
        gr.Markdown(
            "## drivesim scene preview\nEdit a scene, preview its key frames in seconds, render the "
            "whole cascade, add the clip to a catalog."
        )
        gr.Markdown(limits_text(previewer), elem_id="limits")
        loaded = gr.State((None, SOURCE))  # (the loaded Scenario or None, its file name)
        pending = gr.State([])  # clicks of a box being drawn
        preview = gr.State(None)  # the Preview shown
        with gr.Row():
            with gr.Column(scale=1):
                scene_id = gr.Textbox(defaults.id, label="id", elem_id="scene-id")
                time_of_day = gr.Radio(
                    list(get_args(TimeOfDay)),
                    value=defaults.time_of_day,
                    label="time of day",
                    elem_id="time-of-day",
                )
                crowdedness = gr.Radio(
                    list(get_args(Crowdedness)),
                    value=defaults.crowdedness,
                    label="crowdedness",
                    elem_id="crowdedness",
                )
                tod_schedule = gr.Textbox(
                    "",
                    label="time of day schedule (at=value, seconds)",
                    placeholder="1.5=night",
                    elem_id="tod-schedule",
                )
                crowd_schedule = gr.Textbox(
                    "",
                    label="crowdedness schedule (at=value, seconds)",
                    placeholder="1=moderate, 2.5=crowded",
                    elem_id="crowd-schedule",
                )
                with gr.Row():
                    seed = gr.Number(defaults.seed, label="seed", precision=0, elem_id="seed")
                    duration = gr.Number(defaults.duration_s, label="duration (s)", elem_id="duration")
                resolution = gr.Dropdown(
                    RESOLUTIONS,
                    value=defaults.resolution,
                    allow_custom_value=True,
                    label="output resolution (full render)",
                    elem_id="resolution",
                )
                with gr.Accordion("sampling", open=True):
                    with gr.Row():
                        preview_steps = gr.Number(
                            settings0.preview_steps,
                            label="preview steps",
                            precision=0,
                            elem_id="preview-steps",
                        )
                        steps = gr.Number(
                            settings0.steps, label="full render steps", precision=0, elem_id="steps"
                        )
                        interp_steps = gr.Number(
                            settings0.interpolation_steps,
                            label="interpolation steps",
                            precision=0,
                            elem_id="interp-steps",
                        )
                    with gr.Row():
                        g_scene = gr.Number(
                            settings0.guidance_scene, label="guidance: scene", elem_id="g-scene"
                        )
                        g_boxes = gr.Number(
                            settings0.guidance_boxes, label="guidance: boxes", elem_id="g-boxes"
                        )
                        g_context = gr.Number(
                            settings0.guidance_context, label="guidance: context", elem_id="g-context"
                        )
                    upsampler = gr.Radio(
                        list(METHODS),
                        value=settings0.upsampler,
                        elem_id="upsampler",
                        label="upsampler (full render, above 128x256)",
                    )
                with gr.Accordion("scenario YAML", open=True):
                    upload = gr.File(
                        label="load a scenario YAML",
                        file_types=[".yaml", ".yml"],
                        type="filepath",
                        elem_id="yaml-upload",
                    )
                    save = gr.Button("Save YAML", elem_id="save-yaml")
                    saved = gr.File(label="saved YAML", interactive=False, elem_id="yaml-file")
                    yaml_text = gr.Code(language="yaml", label="YAML", interactive=False, elem_id="yaml-text")
            with gr.Column(scale=3):
                with gr.Row(equal_height=True):
                    layout = gr.Image(
                        label="layout: click two corners to draw a box",
                        interactive=False,
                        format="png",
                        elem_id="layout",
                    )
                    with gr.Column():
                        video = gr.Video(
                            label="clip", interactive=False, autoplay=True, loop=True, elem_id="video"
                        )
                        show_boxes = gr.Checkbox(
                            True, label="draw the conditioning boxes", elem_id="show-boxes"
                        )
                with gr.Row():
                    motion = gr.Radio(
                        MOTION_CHOICES,
                        value="static",
                        label="motion of the next box",
                        elem_id="motion",
                        scale=3,
                    )
                    category = gr.Dropdown(
                        list(CATEGORIES),
                        value="car",
                        label="category of the next box",
                        elem_id="category",
                        scale=1,
                    )
                    with gr.Column(scale=1, min_width=120):
                        undo = gr.Button("Remove last box", size="sm", elem_id="remove-box")
                        clear = gr.Button("Clear boxes", size="sm", elem_id="clear-boxes")
                boxes = gr.Dataframe(
                    headers=BOX_COLUMNS,
                    # pyright reads the product as list[str]
                    datatype=cast(
                        "list[Literal['str', 'number']]", ["number"] * 5 + ["str"] + ["number"] * 4 + ["str"]
                    ),
                    type="array",
                    interactive=True,
                    elem_id="boxes",
                    label=f"boxes, normalised to the frame (motion: {', '.join(MOTIONS)}; "
                    f"category: {', '.join(CATEGORIES)})",
                )
                with gr.Row():
                    run_fast = gr.Button("Preview key frames", variant="primary", elem_id="preview-keyframes")
                    run_full = gr.Button("Render full clip", elem_id="render-full")
                    add = gr.Button("Add to catalog", elem_id="add-to-catalog")
                status = gr.Textbox(label="messages", lines=3, interactive=False, elem_id="status")
                with gr.Row():
                    first = gr.Image(
                        label="first frame (image LDM, 128x256)",
                        interactive=False,
                        format="png",
                        elem_id="first-frame",
                    )
                    row = gr.JSON(label="catalog row", elem_id="catalog-row")

        form = [
            scene_id,
            time_of_day,
            crowdedness,
            tod_schedule,
            crowd_schedule,
            seed,
            duration,
            resolution,
            boxes,
        ]
        sampling = [preview_steps, steps, interp_steps, g_scene, g_boxes, g_context, upsampler]

        def redraw(loaded_value, *form_values):
            image, problem = session.layout(_editor(loaded_value, form_values))
            return image, (problem or gr.update())  # a good scene leaves the last message

        redraw_io = {"fn": redraw, "inputs": [loaded, *form], "outputs": [layout, status]}
        for component in (time_of_day, crowdedness, resolution, boxes):
            component.change(**redraw_io)
        for component in (scene_id, tod_schedule, crowd_schedule, seed, duration):
            component.blur(**redraw_io)
        demo.load(**redraw_io)

        def on_click(loaded_value, pending_value, motion_value, category_value, rows, evt: gr.SelectData):
            editor = session.Editor(SceneForm(boxes=rows or []), *loaded_value)
            point = tuple(evt.index)
            return session.click(editor, pending_value, point, LAYOUT_SIZE, motion_value, category_value)

        layout.select(on_click, [loaded, pending, motion, category, boxes], [pending, boxes, status])
        undo.click(
            lambda rows: ([], [r for r in rows or [] if any(c not in (None, "") for c in r)][:-1]),
            boxes,
            [pending, boxes],
        )
        clear.click(lambda: ([], []), None, [pending, boxes])

        def on_upload(path):
            if not path:
                return [gr.update()] * (len(form) + 1) + [""]
            editor, message = session.load_yaml(path)
            if editor is None:
                return [gr.update()] * (len(form) + 1) + [message]
            values = [getattr(editor.form, f.name) for f in dataclasses.fields(SceneForm)]
            return [(editor.base, editor.source), *values, message]

        upload.upload(on_upload, upload, [loaded, *form, status]).then(**redraw_io)

        def on_save(loaded_value, *form_values):
            editor = _editor(loaded_value, form_values)
            path, text, message = session.save_yaml(editor, previewer.new_folder())
            return (str(path) if path else None), text, message

        save.click(on_save, [loaded, *form], [saved, yaml_text, status])

        def parse(values: dict) -> tuple[session.Editor, PreviewSettings]:
            editor = _editor(values[loaded], [values[c] for c in form])
            return editor, session.parse_settings(*[values[c] for c in sampling])

        def on_fast(values: dict, progress=PROGRESS):
            try:
                editor, settings = parse(values)
            except Exception as e:  # a bad field: the page shows why
                yield gr.update(), gr.update(), gr.update(), session.explain(e)
                return
            progress(0.05, desc="first frame")
            frame, message = session.first_frame(previewer, editor, settings)
            if frame is None:
                yield gr.update(), gr.update(), gr.update(), message
                return
            yield frame, gr.update(), gr.update(), message
            progress(0.2, desc="key frames")
            result, message = session.keyframes(previewer, editor, settings)
            shown = _video(result, values[show_boxes]) if result else gr.update()
            yield frame, shown, (result or gr.update()), message

        def on_full(values: dict, progress=PROGRESS):
            try:
                editor, settings = parse(values)
            except Exception as e:  # a bad field: the page shows why
                return gr.update(), gr.update(), session.explain(e)
            progress(0, desc="loading the cascade")
            result, message = session.full(previewer, editor, settings, _progress(progress))
            shown = _video(result, values[show_boxes]) if result else gr.update()
            return shown, (result or gr.update()), message

        def on_add(values: dict, progress=PROGRESS):
            try:
                editor, settings = parse(values)
            except Exception as e:  # a bad field: the page shows why
                return gr.update(), gr.update(), gr.update(), session.explain(e)
            result, added, message = session.add_to_catalog(
                previewer, editor, settings, values[preview], _progress(progress)
            )
            shown = _video(result, values[show_boxes]) or gr.update()
            return shown, result, (_jsonable(added) or gr.update()), message

        inputs = {loaded, show_boxes, preview, *form, *sampling}  # a set: each handler gets one dict
        run_fast.click(on_fast, inputs, [first, video, preview, status], **model_event)
        run_full.click(on_full, inputs, [video, preview, status], **model_event)
        add.click(on_add, inputs, [video, preview, row, status], **model_event)
        show_boxes.change(_video, [preview, show_boxes], video)
    return demo


def _progress(progress: gr.Progress):
    """on_progress(done, total) of a full render -> the page's progress bar (the last step flushes)."""

    def report(done: int, total: int) -> None:
        what = f"segment {done}/{total - 1} done" if done < total else "finishing: joining and writing"
        progress(done / total, desc=what)

    return report


def _jsonable(row: dict | None) -> dict | None:
    """A catalog row for gr.JSON (timestamps as text)."""
    if row is None:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def launch(
    previewer: Previewer, host: str = "127.0.0.1", port: int | None = None, block: bool = True
) -> gr.Blocks:
    """Build the page, queue it under the server's limits and serve it on host:port."""
    demo = build_app(previewer)
    demo.queue(max_size=previewer.limits.max_queue, default_concurrency_limit=4)
    theme = DefaultTheme(font=FONTS, font_mono=["monospace"])
    demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        max_file_size="1mb",
        ssr_mode=False,
        show_error=False,
        theme=theme,
        allowed_paths=[str(Path(previewer.work))],
    )
    return demo
