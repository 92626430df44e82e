"""The query endpoints' reads (spec §4.2–4.4, 4.6, 4.8): one company's data, paged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from gasbill.adapters.db.tables.readings import DeviceAlarm, DeviceEvent, MeterLatest, MeterReading

READING = MeterReading.__table__  # type: ignore[attr-defined]
LATEST = MeterLatest.__table__  # type: ignore[attr-defined]
ALARM = DeviceAlarm.__table__  # type: ignore[attr-defined]
EVENT = DeviceEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Page:
    start: int
    count: int


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) on the time the query is about; either side may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def apply(self, column: Any) -> list[Any]:
        conditions = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return conditions


class PlatformQueries:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _paged(
        self, query: sa.Select[Any], order: list[Any], page: Page
    ) -> tuple[int, list[dict[str, Any]]]:
        total = self.session.execute(
            sa.select(sa.func.count()).select_from(query.subquery())
        ).scalar_one()
        rows = (
            self.session.execute(query.order_by(*order).offset(page.start).limit(page.count))
            .mappings()
            .all()
        )
        return int(total), [dict(r) for r in rows]

    def _latest_join(self, company_no: str) -> sa.Select[Any]:
        return (
            sa.select(READING)
            .select_from(
                LATEST.join(
                    READING,
                    sa.and_(
                        READING.c.company_no == LATEST.c.company_no,
                        READING.c.meter_comm_no == LATEST.c.meter_comm_no,
                        READING.c.data_type == LATEST.c.data_type,
                        READING.c.acquisition_time == LATEST.c.acquisition_time,
                    ),
                )
            )
            .where(LATEST.c.company_no == company_no)
        )

    def latest(self, company_no: str, comm_no: str) -> dict[str, Any] | None:
        found = (
            self.session.execute(
                self._latest_join(company_no).where(LATEST.c.meter_comm_no == comm_no)
            )
            .mappings()
            .first()
        )
        return dict(found) if found is not None else None

    def latest_list(
        self,
        company_no: str,
        *,
        comm_nos: Sequence[str] | None,
        acquired: Window,
        received: Window,
        order_by: str,
        descending: bool,
        page: Page,
    ) -> tuple[int, list[dict[str, Any]]]:
        query = self._latest_join(company_no)
        if comm_nos is not None:
            query = query.where(READING.c.meter_comm_no.in_(list(comm_nos)))
        query = query.where(
            *acquired.apply(READING.c.acquisition_time), *received.apply(READING.c.receive_time)
        )
        column = READING.c[order_by]
        primary = column.desc() if descending else column.asc()
        return self._paged(query, [primary, READING.c.meter_comm_no, READING.c.data_type], page)

    def history(
        self,
        company_no: str,
        *,
        comm_no: str | None,
        data_type: int | None,
        acquired: Window,
        page: Page,
    ) -> tuple[int, list[dict[str, Any]]]:
        query = sa.select(READING).where(
            READING.c.company_no == company_no, *acquired.apply(READING.c.acquisition_time)
        )
        if comm_no is not None:
            query = query.where(READING.c.meter_comm_no == comm_no)
        if data_type is not None:
            query = query.where(READING.c.data_type == data_type)
        order = [READING.c.acquisition_time, READING.c.meter_comm_no, READING.c.data_type]
        return self._paged(query, order, page)

    def device_records(
        self,
        kind: str,
        company_no: str,
        *,
        comm_no: str | None,
        device_type: int | None,
        when: Window,
        page: Page,
    ) -> tuple[int, list[dict[str, Any]]]:
        table = ALARM if kind == "alarm" else EVENT
        time_column = table.c[f"{kind}_time"]
        query = sa.select(table).where(table.c.company_no == company_no, *when.apply(time_column))
        if comm_no is not None:
            query = query.where(table.c.device_comm_no == comm_no)
        if device_type is not None:
            query = query.where(table.c.device_type == str(device_type))
        return self._paged(query, [time_column, table.c[f"{kind}_id"]], page)
