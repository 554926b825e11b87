"""The scene editor's form <-> a scenario (schema v2) <-> YAML text.

The form holds what the editor shows: conditions and their schedules, seed, duration, output
resolution and a table of boxes (one scripted box-track agent each, with an optional motion).
Everything goes through drivesim.scenario's validation, so the editor accepts exactly what the
CLI accepts and shows the same errors. Agents the table cannot show (waypoint agents, box tracks
with more than two keys) and the road / ego settings of a loaded file are kept as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from drivesim.preview.boxes import BoxRow, parse_box_rows
from drivesim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

SOURCE = "scene editor"
SCHEDULE_EXAMPLE = {"time_of_day": "1.5=night", "crowdedness": "1=moderate, 2.5=crowded"}


@dataclass
class SceneForm:
    """The editor's fields (strings and numbers as the page holds them)."""

    id: str = "preview"
    time_of_day: str = "day"
    crowdedness: str = "light"
    time_of_day_schedule: str = ""  # "at=value, ...", e.g. "1.5=night"
    crowdedness_schedule: str = ""
    seed: int = 0
    duration_s: float = 2.0
    resolution: str = "128x256"  # output.resolution, HxW
    boxes: list[list] = field(default_factory=list)  # rows of drivesim.preview.boxes.BOX_COLUMNS


def parse_schedule(text: str, name: str) -> list[dict]:
    """'1.5=night, 3=day' -> [{'at': 1.5, 'value': 'night'}, ...]; a ScenarioError names the field."""
    changes = []
    for part in filter(None, (p.strip() for p in re.split(r"[,;\n]", text or ""))):
        at, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            changes.append({"at": float(at), "value": value.strip()})
        except ValueError:
            raise ScenarioError(
                f"{SOURCE}: {name} schedule: {part!r} is not at=value; write e.g. "
                f"{SCHEDULE_EXAMPLE[name]!r} (seconds from the clip start)"
            ) from None
    return changes


def format_schedule(changes) -> str:
    """Schedule changes -> '1.5=night, 3=day'."""
    return ", ".join(f"{c.at:g}={c.value}" for c in changes)


def parse_resolution(text: str) -> tuple[int, int]:
    """'128x256' -> (128, 256); a ScenarioError names the field."""
    try:
        h, w = (int(v) for v in str(text).lower().replace(" ", "").split("x"))
    except ValueError:
        raise ScenarioError(
            f"{SOURCE}: resolution {text!r}: write HEIGHTxWIDTH, e.g. 128x256 or 512x1024"
        ) from None
    return h, w


def shown_in_table(agent) -> bool:
    """Whether the box table can show an agent (a box track of one or two keys)."""
    return agent.box_track is not None and len(agent.box_track) <= 2


def form_to_scenario(form: SceneForm, base: Scenario | None = None) -> Scenario:
    """The form over `base` (a loaded file, else defaults) -> validated Scenario; ScenarioError
    names the field (box rows as 'boxes row N')."""
    rows = parse_box_rows(form.boxes, SOURCE)
    data = base.model_dump(mode="json", exclude={"frames", "sweep", "variants"}) if base else {}
    kept = [a.model_dump(mode="json") for a in (base.agents if base else []) if not shown_in_table(a)]
    try:
        seed, duration = int(form.seed), float(form.duration_s)
    except (TypeError, ValueError):
        raise ScenarioError(
            f"{SOURCE}: seed={form.seed!r}, duration_s={form.duration_s!r}: give a whole "
            "number seed and a duration in seconds"
        ) from None
    fps = float(data.get("fps", 30.0))
    end_t = min(duration, max(1, round(duration * fps)) / fps)  # the clip's real end (whole frames)
    data |= {
        "version": 2,
        "id": form.id,
        "time_of_day": form.time_of_day,
        "crowdedness": form.crowdedness,
        "seed": seed,
        "duration_s": duration,
        "output": {"resolution": list(parse_resolution(form.resolution))},
        "schedule": {
            "time_of_day": parse_schedule(form.time_of_day_schedule, "time_of_day"),
            "crowdedness": parse_schedule(form.crowdedness_schedule, "crowdedness"),
        },
        "agents": kept + [row.agent(end_t) for row in rows],
    }
    try:
        return parse_scenario(data, SOURCE)
    except ScenarioError as e:
        raise ScenarioError(_name_rows(str(e), len(kept), rows)) from None


def _name_rows(message: str, kept: int, rows: list[BoxRow]) -> str:
    """Add 'agents[i] = boxes row N (id K)' to a schema error about table agents."""
    notes = [
        f"  (agents[{kept + i}] is boxes row {row.number}, id {row.id})"
        for i, row in enumerate(rows)
        if f"agents[{kept + i}]" in message
    ]
    return "\n".join([message, *notes])


def scenario_to_form(scenario: Scenario) -> tuple[SceneForm, list[str]]:
    """A scenario -> (the form, notes on what the form does not show)."""
    notes = []
    if scenario.sweep is not None or scenario.variants > 1:
        notes.append(
            "its sweep / variants are not edited here: the editor shows one clip (the scenario's "
            "own conditions and seed); run `drivesim generate --catalog` on the file for all"
        )
    hidden = [a.id for a in scenario.agents if not shown_in_table(a)]
    if hidden:
        notes.append(
            f"agents {hidden} (waypoints or box tracks of 3+ keys) are kept as they are and drawn "
            "in the layout; edit them in the YAML"
        )
    boxes = [BoxRow.from_agent(a).cells() for a in scenario.agents if shown_in_table(a)]
    h, w = scenario.output.resolution
    form = SceneForm(
        scenario.id,
        scenario.time_of_day,
        scenario.crowdedness,
        format_schedule(scenario.schedule.time_of_day),
        format_schedule(scenario.schedule.crowdedness),
        scenario.seed,
        round(scenario.duration, 4),
        f"{h}x{w}",
        boxes,
    )
    return form, notes


def scenario_yaml(scenario: Scenario) -> str:
    """A scenario -> YAML text (schema v2, defaults left out) that loads back to the same scenario."""
    data = scenario.model_dump(mode="json", exclude_defaults=True, exclude={"version"})
    data = {"version": scenario.version, "id": scenario.id, **data}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def load_yaml_file(path: str | Path, shown_name: str | None = None) -> Scenario:
    """An uploaded scenario file -> Scenario; errors name `shown_name` (the user's file name), not
    the server's temporary path."""
    try:
        return load_scenario(path)
    except ScenarioError as e:
        raise ScenarioError(str(e).replace(str(path), shown_name or Path(path).name)) from None
