"""Bulk writes on PostgreSQL as ONE statement over arrays (`unnest`), whatever the batch size.

psycopg's executemany still sends one statement per row; a batch of
thousands of rows as arrays is one round trip and one plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    """SELECT the rows back out of one array per column, to INSERT … FROM SELECT."""
    names = list(rows[0])
    arrays = [array_param(f"a_{n}", [r[n] for r in rows], table.c[n].type) for n in names]
    source = sa.func.unnest(*arrays).table_valued(*names).render_derived()
    return sa.select(*(source.c[n] for n in names))
