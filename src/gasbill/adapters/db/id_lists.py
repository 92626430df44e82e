"""`column IN ids` for long lists of ids (or of texts: `TextIn`), as one parameter.

Not a placeholder per id expanded into the statement: a few thousand ids cost
more to render and for psycopg to parse (statements over 4 KB are parsed again
on every execution) than the query takes to run, and the statement is compiled
once and cached whatever the ids. PostgreSQL reads the ids from an array
(`column IN (SELECT unnest(:ids))`), SQLite from a JSON text (`json_each`).

A semi-join, not `= ANY(:ids)`: with statistics older than a table's growth (a
campaign's rows, all new) the planner filtered every row of the table by the
whole array, a comparison per id per row (35 ms a page of 800 at 20,000
meters).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal


class _Ids(sa.TypeDecorator[list[Any]]):
    """A list of ids as one parameter: an int8 array on PostgreSQL, JSON text elsewhere."""

    impl = sa.Text
    cache_ok = True
    item: sa.types.TypeEngine[Any] = sa.BigInteger()

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(self.item))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return json.dumps(value)


class _Texts(_Ids):
    """A list of strings as one parameter: a text array on PostgreSQL, JSON text elsewhere."""

    cache_ok = True
    item = sa.Text()


class IdIn(sa.ColumnElement[bool]):
    """`column IN ids`, as the dialect does it best."""

    inherit_cache = True
    type = sa.Boolean()
    _is_implicitly_boolean = True  # a condition: no "= 1" after it on SQLite
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration)
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, ids: Iterable[int]) -> None:
        self.column = column
        self.ids = sa.bindparam(None, [int(i) for i in ids], type_=_Ids(), unique=True)


class TextIn(IdIn):
    """`column IN texts` (meters' numbers, say), as one parameter like `IdIn`."""

    inherit_cache = True

    def __init__(self, column: Any, texts: Iterable[str]) -> None:
        self.column = column
        self.ids = sa.bindparam(None, [str(t) for t in texts], type_=_Texts(), unique=True)


@compiles(IdIn)
def _id_in(element: IdIn, compiler: Any, **kw: Any) -> str:
    listed: Any = sa.select(sa.literal_column("value")).select_from(
        sa.func.json_each(element.ids).table_valued("value")
    )
    return cast(str, compiler.process(element.column.in_(listed.scalar_subquery()), **kw))


@compiles(IdIn, "postgresql")
def _id_any(element: IdIn, compiler: Any, **kw: Any) -> str:
    listed: Any = sa.select(sa.func.unnest(element.ids)).scalar_subquery()
    return cast(str, compiler.process(element.column.in_(listed), **kw))
