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
