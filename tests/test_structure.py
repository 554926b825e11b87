"""Structure rules (see DESIGN.md): no import cycles between the package's parts, counting
imports inside functions too; utils imports nothing else of drivesim; no source file over 400 lines."""

import ast
from pathlib import Path

import pytest
from conftest import REPO

MAX_LINES = 400
SOURCES = sorted(
    [
        *(REPO / "drivesim").rglob("*.py"),
        *(REPO / "conditioners").rglob("*.py"),
        *(REPO / "scripts").glob("*.py"),
        *(REPO / "tests").glob("*.py"),
    ]
)


def part_of(module: str) -> str | None:
    """'drivesim.eval.report' -> 'eval'; 'drivesim.utils' -> 'utils'; 'conditioners.x' -> 'conditioners'."""
    names = module.split(".")
    if names[0] == "conditioners":
        return "conditioners"
    if names[0] == "drivesim" and len(names) > 1:
        return names[1]
    return None


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports, at any depth (function bodies included); relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return found


def part_graph() -> dict[str, set[str]]:
    """{part: parts it imports} over drivesim/ and conditioners/."""
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        src = part_of(module_name(path))
        if src is None:
            continue
        for module in imported_modules(path):
            dst = part_of(module)
            if dst and dst != src:
                graph.setdefault(src, set()).add(dst)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle [a, b, ..., a] in a directed graph, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_cycles_and_only_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"x"}}) == ["x", "y", "x"]
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None  # a diamond


def test_imports_inside_functions_count(tmp_path, monkeypatch):
    (tmp_path / "drivesim" / "data").mkdir(parents=True)
    (tmp_path / "drivesim" / "world").mkdir()
    (tmp_path / "drivesim" / "data" / "a.py").write_text("def f():\n    from drivesim.world import x\n")
    (tmp_path / "drivesim" / "world" / "b.py").write_text("from ..data import a\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    monkeypatch.setitem(globals(), "SOURCES", sorted(tmp_path.rglob("*.py")))
    assert find_cycle(part_graph()) in (["data", "world", "data"], ["world", "data", "world"])


def test_no_import_cycles_between_parts():
    graph = part_graph()
    assert {"cli", "pipelines", "eval", "train", "models", "data", "export"} <= set(graph)  # it sees them
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle between parts: {' -> '.join(cycle)}"


# Import direction: a part may import only parts on a lower level (README, "Layout").
LEVELS = {
    "utils": 0,
    "validation": 0,
    "runtime": 0,
    "config": 0,
    "configs": 0,
    "world": 0,
    "data": 1,
    "metrics": 1,
    "scenario": 2,
    "export": 2,
    "conditioners": 2,
    "scenario_expand": 3,
    "models": 3,
    "diffusion": 4,
    "train": 5,
    "pipelines": 5,
    "eval": 6,
    "bench": 6,
    "preview": 7,
    "cli": 8,
}


def test_every_part_has_a_level():
    parts = {part_of(module_name(p)) for p in SOURCES} - {None}
    assert parts <= LEVELS.keys(), f"give {sorted(parts - LEVELS.keys())} a level in LEVELS"


def test_imports_run_one_way_down_the_levels():
    upward = [
        f"{src} (level {LEVELS[src]}) imports {dst} (level {LEVELS[dst]})"
        for src, dsts in part_graph().items()
        for dst in dsts
        if LEVELS[dst] >= LEVELS[src]
    ]
    assert not upward, upward


def test_utils_imports_nothing_of_drivesim():
    modules = imported_modules(REPO / "drivesim" / "utils.py")
    assert not [m for m in modules if part_of(m)], modules


def test_models_never_import_pipelines_cli_or_hydra():
    for path in (REPO / "drivesim" / "models").rglob("*.py"):
        bad = [
            m
            for m in imported_modules(path)
            if part_of(m) in ("pipelines", "cli", "train", "eval") or m.split(".")[0] in ("hydra", "gradio")
        ]
        assert not bad, f"{path}: {bad}"


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(REPO)) for p in SOURCES])
def test_source_files_are_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)}: {lines} lines > {MAX_LINES}; split it"


def test_atomic_write_leaves_no_temp_file_and_the_usual_mode(tmp_path):
    import os
    import stat

    from drivesim.utils import atomic_write

    target = tmp_path / "out.bin"
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(b"x"))
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_bytes() == b"x" and list(tmp_path.iterdir()) == [target]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    with pytest.raises(RuntimeError):
        atomic_write(target, lambda tmp: (_ for _ in ()).throw(RuntimeError("half-written")))
    assert target.read_bytes() == b"x" and list(tmp_path.iterdir()) == [target]


def test_mp4_files_get_the_usual_mode_not_mkstemps(tmp_path):
    import os
    import stat

    import numpy as np

    from drivesim.export.video import concat_mp4, write_mp4

    frames = np.zeros((2, 16, 16, 3), np.uint8)
    write_mp4(tmp_path / "a.mp4", frames, 30)
    write_mp4(tmp_path / "b.mp4", frames, 30)
    assert concat_mp4([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "ab.mp4") == 4
    umask = os.umask(0)
    os.umask(umask)
    for name in ("a.mp4", "ab.mp4"):  # readable by the other users of a shared catalog
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
