"""Reference docs generated from the code, so they cannot drift: the CLI (from the real argparse
parsers) and the catalog schema (from drivesim.data.catalog's columns).

`python -m drivesim.cli.reference --write` rewrites docs/cli.md and the generated blocks of the
docs pages (between `<!-- generated: NAME -->` and `<!-- end: NAME -->`: the command table in
docs/usage.md, the catalog columns in docs/catalogs.md); `--check` exits 1 when any is stale
(tests/test_docs_reference.py runs the same comparison).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = "docs/cli.md"


def commands(
    parser: argparse.ArgumentParser, path: str = "drivesim", help_text: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """(command line, parser, help) of every leaf command, in the order they are registered."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield path, parser, help_text
    for group in groups:
        helps = {a.dest: a.help or "" for a in group._choices_actions}
        for name, sub in group.choices.items():
            yield from commands(sub, f"{path} {name}", helps.get(name, ""))


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """A parser's own arguments (not -h, not subcommand groups)."""
    skip = (argparse._HelpAction, argparse._SubParsersAction)
    return [a for a in parser._actions if not isinstance(a, skip) and a.help != argparse.SUPPRESS]


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, int) for v in value):
            return f"{value[0]}x{value[1]}"  # (height, width) pairs are written HxW on the command line
        return " ".join(_value(v) for v in value)
    return str(value)


def _name(action: argparse.Action) -> str:
    if action.option_strings:
        return ", ".join(action.option_strings)
    if action.dest == "overrides":
        return "key=value ..."
    return "{" + ",".join(action.choices) + "}" if action.choices else action.dest.upper()


def _default(action: argparse.Action) -> str:
    if not action.option_strings:
        return "(required)" if action.nargs not in ("?", "*") else ""
    if action.required:
        return "(required)"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "off"
    return "-" if action.default in (None, []) else _value(action.default)


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, no raw HTML (`<id>` would vanish)."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """Markdown: every leaf command with a table of its arguments (default, meaning)."""
    lines = [
        "# `drivesim` command reference",
        "",
        "Generated from the argparse parsers by `python -m drivesim.cli.reference --write`;",
        "do not edit.",
        "`train`, `eval report` and `data inspect` take hydra overrides (`key=value`, configs in",
        "`drivesim/configs/`); every other command takes the flags below.",
        "",
    ]
    for line, sub, help_text in commands(parser):
        lines += [
            f"## `{line}`",
            "",
            _cell(help_text) or "-",
            "",
            "| argument | default | meaning |",
            "|---|---|---|",
        ]
        for action in arguments(sub):
            meaning = action.help or ""
            if action.choices and action.option_strings:
                meaning = f"{meaning} (one of: {', '.join(map(str, action.choices))})".strip()
            lines.append(f"| `{_name(action)}` | {_cell(_default(action))} | {_cell(meaning)} |")
        lines.append("")
    return "\n".join(lines)


def commands_table(parser: argparse.ArgumentParser) -> str:
    """Markdown table for docs/usage.md: command, what it does, its arguments (details in docs/cli.md)."""
    lines = ["| command | what it does | arguments |", "|---|---|---|"]
    for line, sub, help_text in commands(parser):
        args = " ".join(f"`{_name(a).split(', ')[-1]}`" for a in arguments(sub))
        lines.append(f"| `{line}` | {_cell(help_text)} | {args} |")
    return "\n".join(lines)


def catalog_table() -> str:
    """Markdown table of every catalog column: name, Arrow type, meaning (partition columns first)."""
    from drivesim.data.catalog import COLUMNS, PARTITION_COLUMNS

    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | `{dtype}` | {_cell(doc)} |" for name, dtype, doc in PARTITION_COLUMNS + COLUMNS]
    return "\n".join(lines)


BLOCK_PAGES = {"cli-commands": "docs/usage.md", "catalog-columns": "docs/catalogs.md"}


def generated_blocks() -> dict[str, str]:
    """Block name -> its generated Markdown (BLOCK_PAGES says which page holds it)."""
    from drivesim.cli.main import build_parser

    return {"cli-commands": commands_table(build_parser()), "catalog-columns": catalog_table()}


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """`text` with every `<!-- generated: NAME -->...<!-- end: NAME -->` block replaced."""
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(<!-- end: {name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no '<!-- generated: {name} -->' ... '<!-- end: {name} -->' block")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def expected_docs(root: Path = ROOT) -> dict[Path, str]:
    """{file: the content it should have} for docs/cli.md and the pages with generated blocks."""
    from drivesim.cli.main import build_parser

    out = {root / CLI_DOC: cli_reference(build_parser()) + "\n"}
    blocks = generated_blocks()
    for page in sorted(set(BLOCK_PAGES.values())):
        mine = {name: body for name, body in blocks.items() if BLOCK_PAGES[name] == page}
        out[root / page] = fill_blocks((root / page).read_text(), mine)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="regenerate or check the generated reference docs")
    parser.add_argument("--write", action="store_true", help="rewrite docs/cli.md and the pages' blocks")
    parser.add_argument("--check", action="store_true", help="exit 1 if any of them is stale")
    args = parser.parse_args(argv)
    stale = [path for path, text in expected_docs().items() if not path.exists() or path.read_text() != text]
    if args.write:
        for path, text in expected_docs().items():
            path.write_text(text)
        print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in expected_docs()))
        return 0
    for path in stale:
        print(
            f"{path.relative_to(ROOT)} is stale: run python -m drivesim.cli.reference --write",
            file=sys.stderr,
        )
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
