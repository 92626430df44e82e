"""Readings, alarms, events and their inbox: stored once, on their natural keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from gasbill.adapters.db.repositories import readings_postgres
from gasbill.adapters.db.repositories.reading_rows import (
    INBOX_TABLE,
    LATEST_COLUMNS,
    LATEST_TABLE,
    READING_KEY,
    READING_TABLE,
    newest_per_meter,
    present,
)
from gasbill.adapters.db.tables.readings import DeviceAlarm, DeviceEvent, PushConflict

ALARM_TABLE: sa.Table = DeviceAlarm.__table__  # type: ignore[attr-defined]
EVENT_TABLE: sa.Table = DeviceEvent.__table__  # type: ignore[attr-defined]
PUSH_CONFLICT_TABLE: sa.Table = PushConflict.__table__  # type: ignore[attr-defined]
ALARM_KEY = ("company_no", "device_comm_no", "alarm_time", "alarm_code")
EVENT_KEY = ("company_no", "device_comm_no", "event_time", "event_code")


def conflict_fingerprint(second: str) -> str:
    """What makes two differing re-pushes the same correction: the values they carry (JSON
    text), but for the platform's receive time when anything else differs. The migration
    e4f5a6b7c8d9 keeps a frozen copy of this."""
    values: dict[str, Any] = json.loads(second)
    compared = {k: v for k, v in values.items() if k != "receive_time"} or values
    text = json.dumps(compared, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class _Statements:
    """The ingest hot path's statements, built once per dialect (building one each push,
    with its `excluded` columns, cost more than executing it)."""

    insert_readings: Any
    mark_latest: Any
    add_to_inbox: Any


@lru_cache(maxsize=2)
def _statements(postgres: bool) -> _Statements:
    insert = postgresql.insert if postgres else sqlite.insert
    readings = (
        insert(READING_TABLE)
        .on_conflict_do_nothing(index_elements=list(READING_KEY))
        .returning(*(READING_TABLE.c[name] for name in READING_KEY))
    )
    latest = insert(LATEST_TABLE)
    latest = latest.on_conflict_do_update(
        index_elements=["company_no", "meter_comm_no"],
        set_={
            "data_type": latest.excluded.data_type,
            "acquisition_time": latest.excluded.acquisition_time,
            "receive_time": latest.excluded.receive_time,
        },
        where=LATEST_TABLE.c.acquisition_time < latest.excluded.acquisition_time,
    )
    return _Statements(readings, latest, insert(INBOX_TABLE))


def reading_transactions(engine: sa.Engine) -> Callable[[], AbstractContextManager[ReadingStore]]:
    """The service's `ReadingTransaction` over this engine: a store on a connection of its
    own, committed when the block ends (rolled back on an error)."""

    @contextmanager
    def begin() -> Iterator[ReadingStore]:
        with engine.begin() as connection:
            yield ReadingStore(connection)

    return begin


class ReadingStore:
    """Core statements on the tables, not the ORM: this is the ingest hot path. On
    PostgreSQL a batch is stored by `readings_postgres` in one statement; elsewhere by
    the generic statements below."""

    def __init__(self, session: Session | sa.Connection) -> None:
        self.session = session  # a plain connection is cheaper where no ORM is needed
        dialect = (
            session.dialect if isinstance(session, sa.Connection) else session.get_bind().dialect
        )
        self._postgres = dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

    def store_new(self, rows: Sequence[dict[str, Any]], billed_type: int) -> set[tuple[Any, ...]]:
        """Store the readings (distinct keys in key order, every column) whose key is not
        stored yet, move each meter's latest to the newest of them where newer, and queue
        the new ones of `billed_type` for billing; the keys that were new."""
        if not rows:
            return set()
        given = present(rows)
        if self._postgres:
            connection = (
                self.session
                if isinstance(self.session, sa.Connection)
                else self.session.connection()
            )
            return set(readings_postgres.store_new(connection, rows, given, billed_type))
        new_keys = self.insert_readings([{name: row[name] for name in given} for row in rows])
        new_rows = [r for r in rows if tuple(r[name] for name in READING_KEY) in new_keys]
        self.mark_latest(new_rows)
        self.add_to_inbox([r for r in new_rows if r["data_type"] == billed_type])
        return new_keys

    def insert_readings(self, rows: Sequence[dict[str, Any]]) -> set[tuple[Any, ...]]:
        """Store many (distinct keys); the keys of those that were new."""
        if not rows:
            return set()
        statement = _statements(self._postgres).insert_readings
        return {tuple(r) for r in self.session.execute(statement, list(rows)).all()}

    def reading(self, key: dict[str, Any]) -> dict[str, Any] | None:
        condition = sa.and_(*(READING_TABLE.c[name] == key[name] for name in READING_KEY))
        found = self.session.execute(sa.select(READING_TABLE).where(condition)).mappings().first()
        return dict(found) if found is not None else None

    def readings(self, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not keys:
            return []
        wanted = [tuple(k[name] for name in READING_KEY) for k in keys]
        columns = sa.tuple_(*(READING_TABLE.c[name] for name in READING_KEY))
        found = self.session.execute(sa.select(READING_TABLE).where(columns.in_(wanted)))
        return [dict(r) for r in found.mappings()]

    def mark_latest(self, rows: Sequence[dict[str, Any]]) -> None:
        """Point each meter's latest at the newest of these readings where it is newer."""
        latest = [{name: row[name] for name in LATEST_COLUMNS} for row in newest_per_meter(rows)]
        if not latest:
            return
        self.session.execute(_statements(self._postgres).mark_latest, latest)

    def add_to_inbox(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue frozen readings for billing, each as of when it was stored."""
        if not rows:
            return
        queued = [
            {
                "company_no": r["company_no"],
                "meter_comm_no": r["meter_comm_no"],
                "acquisition_time": r["acquisition_time"],
                "stored_at": r["stored_at"],
                "outcome": "",
            }
            for r in rows
        ]
        self.session.execute(_statements(self._postgres).add_to_inbox, queued)

    def add_conflict(
        self, *, kind: str, company_no: str, key: str, first: str, second: str, at: datetime
    ) -> None:
        """Keep a differing re-push for review: once per record and value. The same value
        again counts on its row (times seen, last seen), whatever was decided about it."""
        table = PUSH_CONFLICT_TABLE
        statement = self._insert(table).values(
            kind=kind,
            company_no=company_no,
            natural_key=key,
            first=first,
            second=second,
            received_at=at,
            reviewed=False,
            fingerprint=conflict_fingerprint(second),
            times_seen=1,
            last_seen_at=at,
            status="open",
            review_reason="",
        )
        statement = statement.on_conflict_do_update(
            index_elements=["kind", "company_no", "natural_key", "fingerprint"],
            set_={
                "times_seen": table.c.times_seen + 1,
                "last_seen_at": sa.case(
                    (
                        table.c.last_seen_at < statement.excluded.last_seen_at,
                        statement.excluded.last_seen_at,
                    ),
                    else_=table.c.last_seen_at,
                ),
            },
        )
        self.session.execute(statement)

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
