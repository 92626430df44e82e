"""What every table shares: the naming convention and the column helpers.

Money, volume and price columns are 64-bit integers (a plain int column is
32-bit on PostgreSQL); every datetime is aware UTC through `UTCDateTime`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.types import UTCDateTime

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# A 64-bit key that is still SQLite's auto-incrementing rowid.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def big(**kwargs: Any) -> Any:
    """A 64-bit integer column (fen, litres, thousandths); nullable if typed `int | None`."""
    return Field(sa_type=sa.BigInteger, **kwargs)


def instant(**kwargs: Any) -> Any:
    """An aware UTC datetime column; nullable if typed `datetime | None`."""
    return Field(sa_type=UTCDateTime, **kwargs)


def now_column(**kwargs: Any) -> Any:
    """When a row was written."""
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)
