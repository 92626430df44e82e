"""Unknown meters (service.exceptions.record_unknown_meters) on a fake unit of work: one
open exception per meter, counting its readings, first and last; and resolving one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.domain.accounts import AccountError
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.exceptions import UNKNOWN_METER, record_unknown_meters, resolve_exception
from tests.fakes import FakeStore, FakeUnitOfWork

T0 = datetime(2025, 1, 5, tzinfo=UTC)


def record(store: FakeStore, readings, now=T0) -> int:
    uow = FakeUnitOfWork(store)
    with uow:
        created = record_unknown_meters(uow, readings, now)
        uow.commit()
    return created


def test_one_exception_per_meter_with_its_count_first_and_last():
    store = FakeStore()
    day = timedelta(days=1)
    created = record(
        store,
        [("1001", "A", T0 + day), ("1001", "A", T0), ("1001", "B", T0), ("1002", "A", T0)],
    )
    assert created == 3
    first = store.exceptions[0]
    assert (first.kind, first.company_no, first.meter_comm_no) == (UNKNOWN_METER, "1001", "A")
    assert first.reading_at == T0 and first.detail.startswith("2 frozen readings")
    assert "last at 2025-01-06T00:00+00:00;" in first.detail


def test_later_readings_count_on_the_open_exception_and_move_its_first_and_last():
    store = FakeStore()
    record(store, [("1001", "A", T0), ("1001", "A", T0 + timedelta(hours=1))])
    earlier, later = T0 - timedelta(days=2), T0 + timedelta(days=3)
    assert record(store, [("1001", "A", later), ("1001", "A", earlier)]) == 0
    (only,) = store.exceptions
    assert only.reading_at == earlier and only.detail.startswith("4 frozen readings")
    assert f"last at {later.isoformat(timespec='minutes')};" in only.detail


def test_a_resolved_exception_is_not_reopened_a_new_one_is():
    store = FakeStore()
    record(store, [("1001", "A", T0)])
    store.exceptions[0].status = "resolved"
    assert record(store, [("1001", "A", T0 + timedelta(days=1))]) == 1
    assert [e.status for e in store.exceptions] == ["resolved", "open"]
    assert store.exceptions[1].detail.startswith("1 frozen reading for")


# -- a clerk resolving one (service.exceptions.resolve_exception) ----------------------------


def test_resolving_closes_it_with_what_was_done_and_is_audited():
    store = FakeStore()
    record(store, [("1001", "A", T0)])
    later = T0 + timedelta(hours=3)

    row = resolve_exception(
        FakeUnitOfWork(store), 1, resolution="meter bound to A9", actor="clerk1", now=later
    )

    kept = store.exceptions[0]
    assert (row.status, kept.status, kept.resolution) == (
        "resolved",
        "resolved",
        "meter bound to A9",
    )
    assert (kept.resolved_by, kept.resolved_at) == ("clerk1", later)
    (entry,) = store.audit
    assert (entry.action, entry.before["status"], entry.after["status"]) == (
        "exception.resolve",
        "open",
        "resolved",
    )


def test_resolving_twice_is_a_conflict_and_an_empty_resolution_or_unknown_id_is_refused():
    store = FakeStore()
    record(store, [("1001", "A", T0)])
    resolve_exception(FakeUnitOfWork(store), 1, resolution="done", actor="clerk1", now=T0)

    with pytest.raises(Conflict, match="already resolved by clerk1"):
        resolve_exception(FakeUnitOfWork(store), 1, resolution="again", actor="clerk2", now=T0)
    with pytest.raises(AccountError):
        resolve_exception(FakeUnitOfWork(store), 1, resolution="  ", actor="clerk2", now=T0)
    with pytest.raises(NotFound):
        resolve_exception(FakeUnitOfWork(store), 99, resolution="x", actor="clerk2", now=T0)
    assert store.exceptions[0].resolution == "done" and len(store.audit) == 1
