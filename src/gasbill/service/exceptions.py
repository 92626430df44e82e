"""Billing exceptions: a clerk resolves what billing could not decide alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from gasbill.domain.accounts import AccountError
from gasbill.service import ports
from gasbill.service.accounts import Conflict, NotFound, snapshot
from gasbill.service.ports import NewException


def resolve_exception(
    uow: ports.UnitOfWork,
    exception_id: int,
    *,
    resolution: str,
    actor: str,
    now: datetime | None = None,
) -> ports.ExceptionRecord:
    """Close an open exception with what was done about it; resolving twice is a conflict."""
    if not resolution.strip():
        raise AccountError("a resolution says what was done")
    now = now or datetime.now(UTC)
    with uow:
        exceptions = uow.exceptions
        row = exceptions.get(exception_id, lock=True)
        if row is None:
            raise NotFound(f"no exception {exception_id}")
        if row.status != "open":
            raise Conflict(f"exception {exception_id} was already resolved by {row.resolved_by}")
        before = snapshot(row)
        row.status = "resolved"
        row.resolution = resolution
        row.resolved_by = actor
        row.resolved_at = now
        exceptions.save(row)
        uow.audit.record(
            actor=actor,
            action="exception.resolve",
            entity="billing_exception",
            entity_id=row.id,
            before=before,
            after=snapshot(row),
            at=now,
        )
        uow.commit()
        return row


UNKNOWN_METER = "unknown_meter"
_COUNTED = re.compile(r"^(\d+) frozen reading")


def unknown_meter_detail(count: int, first: datetime, last: datetime) -> str:
    """`N frozen readings, first … last, …`: the count leads, so a later batch can add to it."""
    noun = "reading" if count == 1 else "readings"
    return (
        f"{count} frozen {noun} for a meter bound to no account, first at "
        f"{first.isoformat(timespec='minutes')}, last at {last.isoformat(timespec='minutes')}; "
        "bind the meter to an account (they are billed then) or resolve this"
    )


def record_unknown_meters(
    uow: ports.UnitOfWork, readings: list[tuple[str, str, datetime]], now: datetime
) -> int:
    """One open exception per unknown meter, counting its readings (first and last).

    `readings` are (company_no, meter_comm_no, acquisition_time); inside the
    caller's unit of work. Returns how many meters are new exceptions.
    """
    by_meter: dict[tuple[str, str], list[datetime]] = {}
    for company_no, comm_no, at in readings:
        by_meter.setdefault((company_no, comm_no), []).append(at)
    created = 0
    for (company_no, comm_no), times in sorted(by_meter.items()):
        row = uow.exceptions.open_for_meter(UNKNOWN_METER, company_no, comm_no)
        first, last = min(times), max(times)
        if row is None:
            detail = unknown_meter_detail(len(times), first, last)
            uow.exceptions.add(NewException(UNKNOWN_METER, company_no, comm_no, first, detail, now))
            created += 1
            continue
        counted = _COUNTED.match(row.detail)
        before = int(counted.group(1)) if counted else 1
        earliest = min(first, row.reading_at) if row.reading_at else first
        latest = max(last, _last_of(row.detail) or last)
        row.reading_at = earliest
        row.detail = unknown_meter_detail(before + len(times), earliest, latest)
        uow.exceptions.save(row)
    return created


def _last_of(detail: str) -> datetime | None:
    found = re.search(r"last at (\S+?);", detail)
    if not found:
        return None
    try:
        return datetime.fromisoformat(found.group(1))
    except ValueError:
        return None
