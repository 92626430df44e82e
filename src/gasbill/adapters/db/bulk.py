"""Bulk writes on PostgreSQL as ONE statement, whatever the batch size; COPY for more.

psycopg's executemany still sends one statement per row; a batch of
thousands of rows in one parameter is one round trip and one plan. The rows
travel as one JSON document read back by `json_populate_recordset` into the
table's own row type: psycopg's dumping of Python lists into array
parameters (`unnest`) cost about as much as the rest of billing together
(130 µs a row, mostly escaping text elements), while `json.dumps` runs in C.

Larger batches go by binary COPY (`copy_rows`): psycopg writes each row in
C, and the server neither parses JSON nor plans per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def array_param(
    name: str, values: list[Any], item: sa.types.TypeEngine[Any]
) -> sa.BindParameter[Any]:
    if isinstance(item, sa.TypeDecorator):
        item = item.impl_instance
    return sa.bindparam(name, values, type_=postgresql.ARRAY(item))


def unnested(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> sa.Select[Any]:
    """SELECT the rows back out of one JSON parameter, to INSERT … FROM SELECT.

    A column with the same value in every row (a campaign page's commands share
    17 of their 21: the intent, the times, the reason…) is one parameter, not a
    field of every row: the document is a sixth of the size, for json.dumps
    and for the server to parse. It is passed as the text the document would
    hold and cast to the column's type without its length, so that it is read
    exactly as before (a text too long is refused by the INSERT, not cut).
    """
    names = list(rows[0])
    first = rows[0]
    shared = {n for n in names if _same_in_all(rows, n, first[n])}
    varying = [n for n in names if n not in shared] or names[:1]
    shared.difference_update(varying)
    document = json.dumps([{n: r[n] for n in varying} for r in rows], default=_json_value)
    row_type: sa.ColumnElement[Any] = sa.literal_column(f"NULL::{table.name}")
    payload = sa.cast(sa.bindparam("rows_json", document, type_=sa.Text()), postgresql.JSON)
    source = sa.func.json_populate_recordset(row_type, payload)
    derived = source.table_valued(*varying)  # columns by name from the row type
    return sa.select(
        *(_shared(table.c[n], first[n]) if n in shared else derived.c[n] for n in names)
    ).select_from(derived)


def _same_in_all(rows: Sequence[Mapping[str, Any]], name: str, value: Any) -> bool:
    kind = type(value)
    return all(
        (seen := row[name]) is value or (type(seen) is kind and seen == value) for row in rows
    )


def _shared(column: sa.Column[Any], value: Any) -> sa.ColumnElement[Any]:
    """One value for every row, as the JSON document would carry it, read by the column's
    type (its length left to the INSERT, as json_populate_recordset leaves it)."""
    if value is None:
        text = None
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = json.dumps(value)
    elif isinstance(value, str):
        text = value
    else:
        text = _json_value(value)
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, sa.String):
        kind = sa.Text()
    param = sa.bindparam(f"shared_{column.name}", text, type_=sa.Text())
    return sa.cast(param, kind).label(column.name)


def _json_value(value: Any) -> Any:
    """What `json` cannot write itself: instants and dates as ISO text (PostgreSQL reads
    them back by the column's type), bytes as bytea's hex text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    raise TypeError(f"cannot write {type(value).__name__} into a bulk row")


@lru_cache(maxsize=64)
def _copy_into(table: str, columns: tuple[str, ...]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"


# binary COPY (a quarter of text's client CPU) needs each column's exact wire type
_WIRE_TYPES = {
    "BIGINT": "int8",
    "INTEGER": "int4",
    "BYTEA": "bytea",
    "TEXT": "text",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


@lru_cache(maxsize=64)
def _wire_types(like: sa.Table, columns: tuple[str, ...]) -> list[str]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    types = []
    for name in columns:
        sql_type = like.c[name].type.compile(dialect=dialect)
        types.append("varchar" if sql_type.startswith("VARCHAR") else _WIRE_TYPES[sql_type])
    return types


def copy_rows(
    cursor: psycopg.Cursor[Any],
    table: str,
    like: sa.Table,
    columns: tuple[str, ...],
    rows: Iterable[Sequence[Any]],
) -> None:
    """COPY rows (values in column order) into table, whose columns are like's, in binary."""
    with cursor.copy(_copy_into(table, columns)) as copy:
        copy.set_types(_wire_types(like, columns))
        for row in rows:
            copy.write_row(row)
