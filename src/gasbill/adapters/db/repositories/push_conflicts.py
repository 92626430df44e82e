"""Push conflicts for review: listed, locked, decided; and the stored record they concern."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.repositories.reading_rows import READING_KEY, READING_TABLE
from gasbill.adapters.db.tables.readings import PushConflict
from gasbill.service.ports import PushConflictRecord


class ConflictStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, conflict_id: int, *, lock: bool = False) -> PushConflict | None:
        query = select(PushConflict).where(PushConflict.id == conflict_id)
        if lock:
            query = query.with_for_update()
        return self.session.exec(query).first()

    def find(self, *, statuses: Sequence[str] | None, limit: int) -> Sequence[PushConflict]:
        """Oldest first, like the exceptions they are listed beside."""
        query = select(PushConflict).order_by(col(PushConflict.id))
        if statuses is not None:
            query = query.where(col(PushConflict.status).in_(list(statuses)))
        return self.session.exec(query.limit(limit)).all()

    def save(self, row: PushConflictRecord) -> PushConflictRecord:
        self.session.add(row)
        self.session.flush()
        return row

    def reading(
        self, company_no: str, meter_comm_no: str, data_type: int, at: datetime, *, lock: bool
    ) -> dict[str, Any] | None:
        key = {
            "company_no": company_no,
            "meter_comm_no": meter_comm_no,
            "data_type": data_type,
            "acquisition_time": at,
        }
        condition = sa.and_(*(READING_TABLE.c[name] == key[name] for name in READING_KEY))
        query = sa.select(READING_TABLE).where(condition)
        if lock:
            query = query.with_for_update()
        found = self.session.execute(query).mappings().first()
        return dict(found) if found is not None else None

    def replace_reading_values(
        self,
        company_no: str,
        meter_comm_no: str,
        data_type: int,
        at: datetime,
        values: dict[str, Any],
    ) -> None:
        key = {
            "company_no": company_no,
            "meter_comm_no": meter_comm_no,
            "data_type": data_type,
            "acquisition_time": at,
        }
        condition = sa.and_(*(READING_TABLE.c[name] == key[name] for name in READING_KEY))
        self.session.execute(sa.update(READING_TABLE).where(condition).values(**values))
