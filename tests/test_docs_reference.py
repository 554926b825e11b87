"""The generated reference docs match the code: the CLI table (docs/usage.md), the catalog table
(docs/catalogs.md) and docs/cli.md (regenerate with `python -m drivesim.cli.reference --write`).
Every catalog column in the docs: tests/test_catalog.py."""

from __future__ import annotations

from drivesim.cli.main import build_parser
from drivesim.cli.reference import ROOT, commands, expected_docs

USAGE = ROOT / "docs" / "usage.md"


def test_every_command_is_in_the_usage_page():
    usage = USAGE.read_text()
    missing = [line for line, _, _ in commands(build_parser()) if f"| `{line}` |" not in usage]
    assert not missing, f"docs/usage.md lacks {missing}: python -m drivesim.cli.reference --write"


def test_generated_docs_are_current():
    stale = [
        str(path.relative_to(ROOT))
        for path, text in expected_docs().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"{stale} differ from the code: python -m drivesim.cli.reference --write"
