"""Catalog row filters: pyarrow dataset expressions from short text, tuples or dicts.

    catalog_filter("time_of_day == night")                      one condition
    catalog_filter(["time_of_day=night", "crowdedness>=2"])     all of them (AND)
    catalog_filter([("crowdedness", ">=", "moderate")])         pyarrow.parquet-style tuples
    catalog_filter({"time_of_day": "night", "seed": 3})         equality per column
    catalog_filter(ds.field("seed") > 2)                        an expression, as it is

Crowdedness is ordered (empty < light < moderate < crowded): `crowdedness >= 2` and
`crowdedness >= moderate` both keep moderate and crowded rows. Values are typed by the schema.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.dataset as ds

from drivesim.data.catalog import COLUMNS, PARTITION_COLUMNS, CatalogError
from drivesim.data.conditions import CROWDEDNESS

OPERATORS = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_TEXT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|>=|<=|=|>|<)\s*(.*?)\s*$")
TYPES = {n: t for n, t, _ in PARTITION_COLUMNS + COLUMNS}


def _crowdedness_level(value) -> int:
    """'moderate' or 2 -> 2; a CatalogError naming the allowed values otherwise."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and 0 <= value < len(CROWDEDNESS):
        return value
    if value in CROWDEDNESS:
        return CROWDEDNESS.index(value)
    raise CatalogError(f"crowdedness {value!r}: use one of {', '.join(CROWDEDNESS)} or their levels 0-3")


def _typed(name: str, value):
    """A text value as the column's type (int, float, bool or string)."""
    kind = TYPES[name]
    if not isinstance(value, str):
        return value
    try:
        if pa.types.is_integer(kind):
            return int(value)
        if pa.types.is_floating(kind):
            return float(value)
    except ValueError:
        raise CatalogError(f"filter on {name}: {value!r} is not a number ({kind})") from None
    if pa.types.is_boolean(kind):
        if value.lower() not in ("true", "false"):
            raise CatalogError(f"filter on {name}: {value!r}; use true or false")
        return value.lower() == "true"
    return value.strip("'\"")


def condition(name: str, op: str, value) -> ds.Expression:
    """One comparison of a catalog column -> expression (crowdedness compares by level)."""
    if name not in TYPES:
        raise CatalogError(f"filter on {name!r}: not a catalog column; use one of: {', '.join(TYPES)}")
    if op not in OPERATORS:
        raise CatalogError(f"filter {name} {op} {value!r}: operator must be one of {' '.join(OPERATORS)}")
    if name == "crowdedness":
        level = _crowdedness_level(value)
        keep = [c for i, c in enumerate(CROWDEDNESS) if OPERATORS[op](i, level)]
        return ds.field(name).isin(keep)
    return OPERATORS[op](ds.field(name), _typed(name, value))


def parse_condition(text: str) -> ds.Expression:
    """'crowdedness >= moderate' -> expression; a CatalogError shows the form on bad text."""
    match = _TEXT.match(text)
    if not match:
        raise CatalogError(
            f"filter {text!r}: write COLUMN OP VALUE, e.g. time_of_day == night or "
            "crowdedness >= moderate (OP: == != >= <= > <)"
        )
    return condition(*match.groups())


def catalog_filter(spec) -> ds.Expression | None:
    """None | expression | 'text' | dict | iterable of texts / (column, op, value) -> one expression (AND)."""
    if spec is None or isinstance(spec, ds.Expression):
        return spec
    if isinstance(spec, str):
        terms = [parse_condition(part) for part in re.split(r"\s+and\s+", spec.strip()) if part]
    elif isinstance(spec, dict):
        terms = [condition(name, "==", value) for name, value in spec.items()]
    elif isinstance(spec, Iterable):
        terms = [
            catalog_filter(item) if isinstance(item, str | ds.Expression) else condition(*item)
            for item in spec
        ]
    else:
        raise CatalogError(
            f"filter {spec!r}: give a pyarrow expression, 'COLUMN OP VALUE' text, a dict "
            "or a list of (column, op, value)"
        )
    expr = None
    for term in terms:
        expr = term if expr is None else expr & term
    return expr
