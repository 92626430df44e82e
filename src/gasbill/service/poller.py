"""Query mode: pull a platform's history, alarms and events through the push path.

For utilities whose platform does not push. Each poll asks for everything
acquired since the persisted high-water mark, less a look-back (data can
reach the platform late), month by month as the query API requires, page by
page. Every row goes through the same validation and dedupe as a push, so
overlapping polls store nothing twice; the mark then moves to the newest
time seen. New frozen readings wake billing as a push does (`on_frozen_stored`),
so they are billed without waiting for the inbox job's interval.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from gasbill.service.ingest import (
    FROZEN,
    IngestPolicy,
    RejectedPush,
    reading_row,
    store_device_record,
    store_rows_in,
)
from gasbill.service.ingest_records import DeviceRecord, PushedReading
from gasbill.service.ports import UnitOfWork
from gasbill.service.store_ports import Row

log = logging.getLogger("gasbill.poller")
KINDS = ("reading", "alarm", "event")


class Unreadable(NamedTuple):
    """A row of a page that is not a valid reading, alarm or event: why (the field named)."""

    problem: str


PolledRow = PushedReading | DeviceRecord | Unreadable


class PolledPage(Protocol):
    @property
    def total(self) -> int:
        """How many rows the query has, in all its pages."""
        ...

    @property
    def rows(self) -> Sequence[PolledRow]:
        """This page's rows, each validated by the source as a push is (or Unreadable)."""
        ...


class DataSource(Protocol):
    def records(
        self, kind: str, query: dict[str, int], *, startrow: int, rowcount: int
    ) -> PolledPage:
        """A page of the platform's readings, alarms or events (`kind`) in the window."""
        ...


@dataclass(slots=True)
class PollOutcome:
    fetched: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    stored: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    rejected: list[str] = field(default_factory=list)
    frozen_new: int = 0  # new frozen readings not yet announced to billing


def month_windows(start: datetime, end: datetime, policy: IngestPolicy) -> Iterator[dict[str, int]]:
    """The query windows (year/month/start_*/end_*) covering [start, end] in the platform's zone."""
    zone = policy.platform_zone
    cursor, last = start.astimezone(zone), end.astimezone(zone)
    while cursor <= last:
        days = calendar.monthrange(cursor.year, cursor.month)[1]
        window = {
            "year": cursor.year,
            "month": cursor.month,
            "start_day": cursor.day,
            "start_hour": cursor.hour,
            "start_minute": cursor.minute,
        }
        if (cursor.year, cursor.month) == (last.year, last.month):
            window |= {"end_day": last.day, "end_hour": last.hour, "end_minute": last.minute}
            yield window
            return
        yield window
        following = cursor.replace(day=days) + timedelta(days=1)
        cursor = following.replace(hour=0, minute=0, second=0, microsecond=0)


def poll_once(
    uow: UnitOfWork,
    source: DataSource,
    company_no: str,
    policy: IngestPolicy,
    *,
    lookback: timedelta = timedelta(days=2),
    page_size: int = 500,
    now: datetime | None = None,
    on_frozen_stored: Callable[[], None] | None = None,
) -> PollOutcome:
    now = now or datetime.now(UTC)
    outcome = PollOutcome()
    for kind in KINDS:
        mark = _mark(uow, company_no, kind)
        start = (mark or now) - lookback
        newest = mark
        for window in month_windows(start, now, policy):
            startrow = 0
            while True:
                page = source.records(kind, window, startrow=startrow, rowcount=page_size)
                outcome.fetched[kind] += len(page.rows)
                seen = _store(uow, kind, company_no, page.rows, policy, now, outcome)
                if kind == "reading" and outcome.frozen_new and on_frozen_stored is not None:
                    on_frozen_stored()  # each page's, so billing starts while polling goes on
                    outcome.frozen_new = 0
                if seen is not None and (newest is None or seen > newest):
                    newest = seen
                startrow += len(page.rows)
                if not page.rows or startrow >= page.total:
                    break
        if newest is not None and newest != mark:
            _set_mark(uow, company_no, kind, newest, now)
    return outcome


def _store(
    uow: UnitOfWork,
    kind: str,
    company_no: str,
    rows: Sequence[PolledRow],
    policy: IngestPolicy,
    now: datetime,
    outcome: PollOutcome,
) -> datetime | None:
    """Store a page through the push path; the newest time among the rows stored or known."""
    newest: datetime | None = None
    good: list[Row] = []
    for record in rows:
        try:
            if isinstance(record, Unreadable):
                outcome.rejected.append(f"{kind}: {record.problem}")
                continue
            if isinstance(record, PushedReading):
                row = reading_row(company_no, record, policy, now)
                good.append(row)
                at = row["acquisition_time"]
            else:
                stored = store_device_record(uow, company_no, record, policy, now=now)
                outcome.stored[kind] += int(stored.new)
                at = policy.parse_time(record.time, policy.platform_zone)
        except RejectedPush as exc:
            outcome.rejected.append(f"{kind}: {exc}")
            continue
        newest = at if newest is None or at > newest else newest
    if good:
        with uow:
            results = store_rows_in(uow.readings, good)
            uow.commit()
        outcome.stored[kind] += sum(1 for r in results if r.new)
        outcome.frozen_new += sum(
            1 for r, row in zip(results, good, strict=True) if r.new and row["data_type"] == FROZEN
        )
    return newest


def _mark(uow: UnitOfWork, company_no: str, kind: str) -> datetime | None:
    with uow:
        return uow.poll_marks.mark_at(company_no, kind)


def _set_mark(uow: UnitOfWork, company_no: str, kind: str, at: datetime, now: datetime) -> None:
    with uow:
        uow.poll_marks.move(company_no, kind, at, now)
        uow.commit()
    log.info("poll mark for %s %s moved to %s", company_no, kind, at.isoformat())
