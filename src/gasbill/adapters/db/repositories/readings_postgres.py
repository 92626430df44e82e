"""Storing a batch of readings on PostgreSQL in one statement.

The readings not stored yet go in, each meter's latest moves to the newest
of them where newer, and the new ones of the billed data type are queued
for billing — insert, upsert and inbox as data-modifying CTEs, one round
trip, answering the keys that were new. The SQL is written from the table,
so it stays in step with it.

A push's batch (tens of rows) arrives as one array per column. An import's
(thousands) goes by COPY, which costs a third of the client CPU of array
parameters per row: straight into the tables when none of it is stored yet,
else into a session-temporary table that the same statement reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gasbill.adapters.db.bulk import copy_rows
from gasbill.adapters.db.repositories.reading_rows import (
    COLUMNS,
    INBOX_TABLE,
    LATEST_COLUMNS,
    LATEST_TABLE,
    READING_KEY,
    READING_TABLE,
    newest_per_meter,
)

COPY_FROM_ROWS = 500  # batches this large go through COPY
STAGING = "incoming_reading"


def _store_sql(incoming: str) -> str:
    names = ", ".join(COLUMNS)
    key = ", ".join(READING_KEY)
    return f"""
WITH incoming AS ({incoming}
), new AS (
    INSERT INTO meter_reading ({names})
    SELECT {names} FROM incoming ORDER BY {key}
    ON CONFLICT ({key}) DO NOTHING
    RETURNING {key}, receive_time, stored_at
), latest AS (
    INSERT INTO meter_latest (company_no, meter_comm_no, data_type, acquisition_time,
                              receive_time)
    SELECT DISTINCT ON (company_no, meter_comm_no)
           company_no, meter_comm_no, data_type, acquisition_time, receive_time
    FROM new ORDER BY company_no, meter_comm_no, acquisition_time DESC
    ON CONFLICT (company_no, meter_comm_no) DO UPDATE
    SET data_type = excluded.data_type, acquisition_time = excluded.acquisition_time,
        receive_time = excluded.receive_time
    WHERE meter_latest.acquisition_time < excluded.acquisition_time
), queued AS (
    INSERT INTO billing_inbox (company_no, meter_comm_no, acquisition_time, stored_at, outcome)
    SELECT company_no, meter_comm_no, acquisition_time, stored_at, ''
    FROM new WHERE data_type = %(billed_type)s
    ORDER BY company_no, meter_comm_no, acquisition_time
)
SELECT {key} FROM new
"""


@lru_cache(maxsize=64)
def _from_arrays(columns: tuple[str, ...]) -> str:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    arrays = ", ".join(
        f"%(c_{name})s::{READING_TABLE.c[name].type.compile(dialect=dialect)}[]" for name in columns
    )
    missing = ", ".join(
        f"NULL::{READING_TABLE.c[name].type.compile(dialect=dialect)} AS {name}"
        for name in COLUMNS
        if name not in columns
    )
    source = f"SELECT * FROM unnest({arrays}) AS given({', '.join(columns)})"
    if missing:
        source = f"SELECT given.*, {missing} FROM ({source}) AS given"
    return _store_sql(f"\n    {source}")


FROM_STAGING = _store_sql(f"\n    SELECT * FROM {STAGING}")
CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} "
    "(LIKE meter_reading INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)


LATEST_STAGING = "incoming_latest"
CREATE_LATEST_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {LATEST_STAGING} "
    "(LIKE meter_latest) ON COMMIT DELETE ROWS"
)
UPSERT_LATEST = f"""
INSERT INTO meter_latest ({", ".join(LATEST_COLUMNS)})
SELECT {", ".join(LATEST_COLUMNS)} FROM {LATEST_STAGING} ORDER BY company_no, meter_comm_no
ON CONFLICT (company_no, meter_comm_no) DO UPDATE
SET data_type = excluded.data_type, acquisition_time = excluded.acquisition_time,
    receive_time = excluded.receive_time
WHERE meter_latest.acquisition_time < excluded.acquisition_time
"""
INBOX_COLUMNS = ("company_no", "meter_comm_no", "acquisition_time", "stored_at", "outcome")


def store_new(
    connection: sa.Connection,
    rows: Sequence[dict[str, Any]],
    columns: tuple[str, ...],
    billed_type: int,
) -> list[tuple[Any, ...]]:
    """Rows with distinct keys, in key order, and the columns to store of them (the rest are
    NULL); the keys that were new."""
    driver = cast("psycopg.Connection[tuple[Any, ...]]", connection.connection.driver_connection)
    with driver.cursor() as cursor:
        if len(rows) < COPY_FROM_ROWS:
            params: dict[str, Any] = {f"c_{name}": [r[name] for r in rows] for name in columns}
            params["billed_type"] = billed_type
            cursor.execute(_from_arrays(columns), params)
            return cursor.fetchall()
        if _copied_as_new(cursor, rows, columns, billed_type):
            return [tuple(row[name] for name in READING_KEY) for row in rows]
        # some are stored already: through a staging table that lives as long as the
        # database session, empty outside a transaction
        cursor.execute(CREATE_STAGING)
        copy_rows(cursor, STAGING, READING_TABLE, columns, map(itemgetter(*columns), rows))
        cursor.execute(FROM_STAGING, {"billed_type": billed_type})
        return cursor.fetchall()


def _copied_as_new(
    cursor: psycopg.Cursor[Any],
    rows: Sequence[dict[str, Any]],
    columns: tuple[str, ...],
    billed_type: int,
) -> bool:
    """A history import's batch is usually all new: copy it straight in (about a third less
    work for the database than through staging). False, having changed nothing, if any of
    it is stored already."""
    cursor.execute("SAVEPOINT copy_readings")
    try:
        copy_rows(cursor, "meter_reading", READING_TABLE, columns, map(itemgetter(*columns), rows))
    except psycopg.errors.UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT copy_readings")
        return False
    cursor.execute("RELEASE SAVEPOINT copy_readings")
    queued = (
        (row["company_no"], row["meter_comm_no"], row["acquisition_time"], row["stored_at"], "")
        for row in rows
        if row["data_type"] == billed_type
    )
    copy_rows(cursor, "billing_inbox", INBOX_TABLE, INBOX_COLUMNS, queued)
    cursor.execute(CREATE_LATEST_STAGING)
    latest = map(itemgetter(*LATEST_COLUMNS), newest_per_meter(rows))
    copy_rows(cursor, LATEST_STAGING, LATEST_TABLE, LATEST_COLUMNS, latest)
    cursor.execute(UPSERT_LATEST)
    return True
