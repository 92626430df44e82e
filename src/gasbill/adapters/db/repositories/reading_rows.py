"""What both ways of storing readings (PostgreSQL's statements, the generic Core ones)
need to know about a batch of reading rows."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from gasbill.adapters.db.tables.readings import BillingInbox, MeterLatest, MeterReading

READING_TABLE: sa.Table = MeterReading.__table__  # type: ignore[attr-defined]
LATEST_TABLE: sa.Table = MeterLatest.__table__  # type: ignore[attr-defined]
INBOX_TABLE: sa.Table = BillingInbox.__table__  # type: ignore[attr-defined]
READING_KEY = ("company_no", "meter_comm_no", "data_type", "acquisition_time")
COLUMNS = [c.name for c in READING_TABLE.columns]
ALWAYS = (*READING_KEY, "data_guid", "stored_at")
LATEST_COLUMNS = ("company_no", "meter_comm_no", "data_type", "acquisition_time", "receive_time")


def present(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The columns some row has a value for (history files carry a handful of the 36);
    the others are left out of the insert, NULL anyway."""
    found = []
    for name in COLUMNS:
        values = list(map(itemgetter(name), rows))
        if name in ALWAYS or values.count(None) < len(values):
            found.append(name)
    return tuple(found)


def newest_per_meter(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each meter's newest of these rows, in meter order: one order for every writer, so
    concurrent batches cannot deadlock on the meters' latest rows."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        meter = (row["company_no"], row["meter_comm_no"])
        if meter not in newest or newest[meter]["acquisition_time"] < row["acquisition_time"]:
            newest[meter] = row
    return [newest[meter] for meter in sorted(newest)]
