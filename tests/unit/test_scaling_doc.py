"""docs/scaling.md holds the schema: every table placed, and the keys of hot distributed tables
either include the distribution column or are listed there as open points."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import SQLModel

from gasbill.adapters.db import tables  # noqa: F401  (registers every table)

DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
ROW = re.compile(r"^\|\s*`(?P<table>\w+)`\s*\|(?P<rest>.*)\|\s*$")


def _section(title: str) -> list[list[str]]:
    """The table rows (cells, backticks kept) of the markdown table under a `## title`."""
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        found = ROW.match(line)
        if found:
            cells = [c.strip() for c in found["rest"].split("|")]
            rows.append([found["table"], *cells])
    return rows


def placement() -> dict[str, tuple[str, str, str]]:
    """table -> (kind, key column, hot|cold)."""
    return {
        row[0]: (row[1], row[2].strip("`"), row[3]) for row in _section("Two co-location groups")
    }


def open_points() -> set[tuple[str, tuple[str, ...]]]:
    points = set()
    for table, key, *_ in _section("Open points"):
        columns = tuple(c.strip() for c in key.strip("`()").split(","))
        points.add((table, columns))
    return points


def unique_keys(table: sa.Table) -> list[tuple[str, ...]]:
    """The primary key, unique constraints and unique indexes, as column tuples."""
    keys = [tuple(c.name for c in table.primary_key.columns)]
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            keys.append(tuple(c.name for c in constraint.columns))
    keys += [tuple(c.name for c in index.columns) for index in table.indexes if index.unique]
    keys += [(c.name,) for c in table.columns if c.unique]
    return list(dict.fromkeys(keys))


def lacking() -> set[tuple[str, tuple[str, ...]]]:
    """Keys of hot distributed tables that do not include the table's distribution column."""
    found = set()
    for name, (kind, key, hot) in placement().items():
        if kind != "distributed" or hot != "hot":
            continue
        table = SQLModel.metadata.tables[name]
        for columns in unique_keys(table):
            if key not in columns:
                found.add((name, columns))
    return found


def test_every_table_is_placed_once_with_a_known_kind():
    placed = placement()
    assert set(placed) == set(SQLModel.metadata.tables), "docs/scaling.md: tables placed"
    for name, (kind, key, hot) in placed.items():
        assert kind in ("distributed", "reference", "local"), name
        assert hot in ("hot", "cold"), name
        if kind == "distributed":
            assert key in SQLModel.metadata.tables[name].columns, f"{name}.{key}"
        else:
            assert not key, f"{name}: a {kind} table has no distribution key"


def test_hot_keys_include_the_distribution_column_or_are_open_points():
    missing = lacking() - open_points()
    assert not missing, f"keys without their distribution column, not in the doc: {missing}"


def test_every_open_point_is_still_open():
    stale = open_points() - lacking()
    assert not stale, f"open points fixed (or renamed): update docs/scaling.md: {stale}"
