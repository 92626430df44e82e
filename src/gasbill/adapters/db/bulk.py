"""Bulk writes on PostgreSQL as ONE statement, whatever the batch size.

psycopg's executemany still sends one statement per row; a batch of
thousands of rows in one parameter is one round trip and one plan. The rows
travel as one JSON document read back by `json_populate_recordset` into the
table's own row type: psycopg's dumping of Python lists into array
parameters (`unnest`) cost about as much as the rest of billing together
(130 µs a row, mostly escaping text elements), while `json.dumps` runs in C.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def array_param(
    name: str, values: list[Any], item: sa.types.TypeEngine[Any]
) -> sa.BindParameter[Any]:
    if isinstance(item, sa.TypeDecorator):
        item = item.impl_instance
    return sa.bindparam(name, values, type_=postgresql.ARRAY(item))


def unnested(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> sa.Select[Any]:
    """SELECT the rows back out of one JSON parameter, to INSERT … FROM SELECT."""
    names = list(rows[0])
    document = json.dumps([{n: r[n] for n in names} for r in rows], default=_json_value)
    row_type: sa.ColumnElement[Any] = sa.literal_column(f"NULL::{table.name}")
    payload = sa.cast(sa.bindparam("rows_json", document, type_=sa.Text()), postgresql.JSON)
    source = sa.func.json_populate_recordset(row_type, payload)
    derived = source.table_valued(*names)  # columns by name from the row type
    return sa.select(*(derived.c[n] for n in names))


def _json_value(value: Any) -> Any:
    """What `json` cannot write itself: instants and dates as ISO text (PostgreSQL reads
    them back by the column's type), bytes as bytea's hex text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    raise TypeError(f"cannot write {type(value).__name__} into a bulk row")
