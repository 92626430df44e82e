"""Readings, alarms, events and their inbox: stored once, on their natural keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from gasbill.adapters.db.tables.readings import (
    BillingInbox,
    DeviceAlarm,
    DeviceEvent,
    MeterLatest,
    MeterReading,
    PushConflict,
)

ALARM_TABLE: sa.Table = DeviceAlarm.__table__  # type: ignore[attr-defined]
EVENT_TABLE: sa.Table = DeviceEvent.__table__  # type: ignore[attr-defined]
READING_KEY = ("company_no", "meter_comm_no", "data_type", "acquisition_time")
ALARM_KEY = ("company_no", "device_comm_no", "alarm_time", "alarm_code")
EVENT_KEY = ("company_no", "device_comm_no", "event_time", "event_code")


class ReadingStore:
    """Core statements, not the ORM: this is the ingest hot path."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )

    def insert_readings(self, rows: Sequence[dict[str, Any]]) -> set[tuple[Any, ...]]:
        """Store many; the keys of those that were new."""
        if not rows:
            return set()
        table = MeterReading.__table__  # type: ignore[attr-defined]
        statement = (
            self._insert(MeterReading)
            .on_conflict_do_nothing(index_elements=list(READING_KEY))
            .returning(*(table.c[name] for name in READING_KEY))
        )
        result = self.session.execute(statement, list(rows))
        return {tuple(r) for r in result.all()}

    def reading(self, key: dict[str, Any]) -> dict[str, Any] | None:
        table = MeterReading.__table__  # type: ignore[attr-defined]
        condition = sa.and_(*(table.c[name] == key[name] for name in READING_KEY))
        found = self.session.execute(sa.select(table).where(condition)).mappings().first()
        return dict(found) if found is not None else None

    def readings(self, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not keys:
            return []
        table = MeterReading.__table__  # type: ignore[attr-defined]
        wanted = [tuple(k[name] for name in READING_KEY) for k in keys]
        columns = sa.tuple_(*(table.c[name] for name in READING_KEY))
        found = self.session.execute(sa.select(table).where(columns.in_(wanted))).mappings()
        return [dict(r) for r in found]

    def mark_latest(self, rows: Sequence[dict[str, Any]]) -> None:
        """Point each meter's latest at these readings where they are newer."""
        if not rows:
            return
        statement = self._insert(MeterLatest)
        statement = statement.on_conflict_do_update(
            index_elements=["company_no", "meter_comm_no"],
            set_={
                "data_type": statement.excluded.data_type,
                "acquisition_time": statement.excluded.acquisition_time,
                "receive_time": statement.excluded.receive_time,
            },
            where=MeterLatest.__table__.c.acquisition_time  # type: ignore[attr-defined]
            < statement.excluded.acquisition_time,
        )
        self.session.execute(
            statement,
            [
                {
                    "company_no": r["company_no"],
                    "meter_comm_no": r["meter_comm_no"],
                    "data_type": r["data_type"],
                    "acquisition_time": r["acquisition_time"],
                    "receive_time": r.get("receive_time"),
                }
                for r in rows
            ],
        )

    def add_to_inbox(self, rows: Sequence[dict[str, Any]], stored_at: datetime) -> None:
        if not rows:
            return
        self.session.execute(
            sa.insert(BillingInbox),
            [
                {
                    "company_no": r["company_no"],
                    "meter_comm_no": r["meter_comm_no"],
                    "acquisition_time": r["acquisition_time"],
                    "stored_at": stored_at,
                    "outcome": "",
                }
                for r in rows
            ],
        )

    def add_conflict(
        self, *, kind: str, company_no: str, key: str, first: str, second: str, at: datetime
    ) -> None:
        self.session.execute(
            sa.insert(PushConflict).values(
                kind=kind,
                company_no=company_no,
                natural_key=key,
                first=first,
                second=second,
                received_at=at,
                reviewed=False,
            )
        )

    def insert_device_record(self, kind: str, row: dict[str, Any]) -> int | None:
        """Store an alarm or event unless its key is stored; its new id, or None."""
        key = ALARM_KEY if kind == "alarm" else EVENT_KEY
        sa_table = ALARM_TABLE if kind == "alarm" else EVENT_TABLE
        statement = (
            self._insert(sa_table)
            .values(**row)
            .on_conflict_do_nothing(index_elements=list(key))
            .returning(sa_table.c[f"{kind}_id"])
        )
        new_id = self.session.execute(statement).scalar()
        return int(new_id) if new_id is not None else None

    def device_record(self, kind: str, row: dict[str, Any]) -> dict[str, Any] | None:
        key = ALARM_KEY if kind == "alarm" else EVENT_KEY
        sa_table = ALARM_TABLE if kind == "alarm" else EVENT_TABLE
        condition = sa.and_(*(sa_table.c[name] == row[name] for name in key))
        found = self.session.execute(sa.select(sa_table).where(condition)).mappings().first()
        return dict(found) if found is not None else None
