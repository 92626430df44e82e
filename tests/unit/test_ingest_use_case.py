"""Ingest of pushed readings and the importer (service.ingest, service.importer) on fakes,
without a database: a reading stored once by its key (company, meter, data type,
acquisition time), a re-push answered with the first data_guid, a differing one kept as a
conflict, absurd times refused under the field's name, frozen readings queued for billing,
and an import's counts.

`FakeReadings` stores by key as the SQL's insert-if-absent does; what only the database
shows (the unique index under concurrent pushes, COPY, the latest-reading pointer) is in
tests/integration (test_ingest*, test_import*). Unknown meters' exceptions are in
test_unknown_meters.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gasbill.service.importer import Record, import_readings
from gasbill.service.ingest import (
    IngestPolicy,
    RejectedPush,
    guid_text,
    store_device_record,
    store_readings,
)
from gasbill.service.ingest_records import DeviceRecord, PushedReading
from tests.factories import ZONE_NAME
from tests.fakes import FakeReadingBook, FakeReadingsUnitOfWork

COMPANY = "1001"
NOW = datetime(2025, 3, 2, 4, tzinfo=UTC)
MIDNIGHT = datetime(2025, 2, 28, 16, tzinfo=UTC)  # 2025-03-01 00:00 in Asia/Shanghai


def parse(text: str, zone: ZoneInfo) -> datetime:
    """The platform's times as ISO text, naive ones in `zone`."""
    found = datetime.fromisoformat(text)
    return (found if found.tzinfo else found.replace(tzinfo=zone)).astimezone(UTC)


POLICY = IngestPolicy(ZoneInfo(ZONE_NAME), parse_time=parse)


def frozen(meter: str = "M1", at: str = "2025-03-01T00:00:00", **fields: object) -> PushedReading:
    values: dict[str, object] = {"std_sum": Decimal("12.345"), "remain_money": Decimal("40.5")}
    values.update(fields)
    return PushedReading(meter, 1, at, **values)  # type: ignore[arg-type]


def push(uow: FakeReadingsUnitOfWork, *readings: PushedReading) -> list:
    return store_readings(uow, COMPANY, readings, POLICY, now=NOW)


def key(meter: str = "M1", data_type: int = 1, at: datetime = MIDNIGHT) -> tuple:
    return (COMPANY, meter, data_type, at)


# -- the push ----------------------------------------------------------------------------------


def test_a_new_frozen_reading_is_stored_in_thousandths_and_queued_for_billing():
    uow = FakeReadingsUnitOfWork()
    [stored] = push(uow, frozen())
    assert stored.new and not stored.conflict
    row = uow.book.readings[key()]
    assert (row["std_sum"], row["remain_money"], row["stored_at"]) == (12_345, 40_500, NOW)
    assert guid_text(row["data_guid"]) == stored.id
    assert uow.book.inbox == [key()]
    assert uow.committed


def test_a_reading_of_another_type_is_stored_but_not_billed():
    uow = FakeReadingsUnitOfWork()
    [stored] = push(uow, PushedReading("M1", 2, "2025-03-01T08:00:00", std_sum=Decimal("1")))
    assert stored.new and key(data_type=2, at=datetime(2025, 3, 1, tzinfo=UTC)) in uow.book.readings
    assert uow.book.inbox == []


def test_the_same_reading_pushed_again_is_answered_with_the_first_guid_and_stores_nothing():
    uow = FakeReadingsUnitOfWork()
    [first] = push(uow, frozen())
    # the same instant in another form: UTC, in the platform's zone
    [again] = push(uow, frozen(at="2025-02-28T16:00:00+00:00"))
    assert (again.id, again.new, again.conflict) == (first.id, False, False)
    assert len(uow.book.readings) == 1 and uow.book.inbox == [key()]
    assert uow.book.conflicts == {}


def test_a_differing_re_push_keeps_the_first_and_the_difference_for_review():
    uow = FakeReadingsUnitOfWork()
    [first] = push(uow, frozen())
    [again] = push(uow, frozen(remain_money=Decimal("39.5")))
    assert (again.id, again.new, again.conflict) == (first.id, False, True)
    assert uow.book.readings[key()]["remain_money"] == 40_500
    [(conflict_key, (kept, times))] = uow.book.conflicts.items()
    kind, company, natural, second = conflict_key
    assert (kind, company) == ("reading", COMPANY)
    assert json.loads(natural) == ["M1", 1, MIDNIGHT.isoformat()]
    assert (json.loads(kept), json.loads(second), times) == (
        {"remain_money": 40_500},
        {"remain_money": 39_500},
        1,
    )
    push(uow, frozen(remain_money=Decimal("39.5")))  # the same value again: counted
    assert [times for _, times in uow.book.conflicts.values()] == [2]


def test_the_same_key_twice_in_one_push_stores_the_first():
    uow = FakeReadingsUnitOfWork()
    first, same, other = push(uow, frozen(), frozen(), frozen(remain_money=Decimal("41")))
    assert first.new and not same.new and not other.new
    assert first.id == same.id == other.id
    assert (same.conflict, other.conflict) == (False, True)
    assert uow.book.readings[key()]["remain_money"] == 40_500


def test_ext_data_in_another_key_order_is_the_same_reading():
    uow = FakeReadingsUnitOfWork()
    push(uow, frozen(ext_data={"a": 1, "b": 2}))
    [again] = push(uow, frozen(ext_data={"b": 2, "a": 1}))
    assert not again.conflict


@pytest.mark.parametrize(
    ("reading", "message"),
    [
        (frozen(at="yesterday"), "acquisition_time: "),
        (frozen(at="2025-03-04T00:00:00"), "acquisition_time: 2025-03-04T00:00:00 is more than"),
        (frozen(receive_time="2025-13-01T00:00:00"), "receive_time: "),
        (frozen(receive_time="2025-03-03T12:00:01"), "receive_time: 2025-03-03T12:00:01 is more"),
        (frozen(std_sum=None), "std_sum: a frozen reading needs its cumulative volume"),
    ],
)
def test_an_absurd_reading_is_refused_under_the_fields_name_and_nothing_is_stored(
    reading: PushedReading, message: str
):
    uow = FakeReadingsUnitOfWork()
    with pytest.raises(RejectedPush) as refused:
        push(uow, frozen(meter="M2"), reading)
    assert str(refused.value).startswith(message)
    assert uow.book.readings == {} and not uow.committed


def test_a_time_up_to_a_day_ahead_is_a_clock_a_little_fast_and_is_kept():
    uow = FakeReadingsUnitOfWork()
    [stored] = push(uow, frozen(receive_time="2025-03-03T12:00:00"))  # NOW + 24 h, local
    assert stored.new


# -- alarms and events --------------------------------------------------------------------------


def alarm(content: str = "low battery") -> DeviceRecord:
    return DeviceRecord("alarm", "M1", "gas", "2025-03-01T08:00:00", None, 7, content, None)


def test_an_alarm_is_stored_once_and_a_differing_one_kept_as_a_conflict():
    uow = FakeReadingsUnitOfWork()
    first = store_device_record(uow, COMPANY, alarm(), POLICY, now=NOW)
    again = store_device_record(uow, COMPANY, alarm(), POLICY, now=NOW)
    assert first.new and (again.id, again.new, again.conflict) == (first.id, False, False)
    other = store_device_record(uow, COMPANY, alarm("battery empty"), POLICY, now=NOW)
    assert (other.id, other.new, other.conflict) == (first.id, False, True)
    [(conflict_key, (kept, _))] = uow.book.conflicts.items()
    assert conflict_key[0] == "alarm"
    assert json.loads(kept) == {"alarm_content": "low battery"}
    assert json.loads(conflict_key[3]) == {"alarm_content": "battery empty"}


def test_an_alarm_time_in_the_future_is_refused_under_its_name():
    uow = FakeReadingsUnitOfWork()
    record = DeviceRecord("event", "M1", None, "2025-03-09T00:00:00", None, 1, None, None)
    with pytest.raises(RejectedPush, match=r"^event_time: "):
        store_device_record(uow, COMPANY, record, POLICY, now=NOW)


# -- the importer -------------------------------------------------------------------------------


def test_an_import_counts_what_it_stored_found_again_differing_and_refused():
    uow = FakeReadingsUnitOfWork(FakeReadingBook())
    push(uow, frozen("M1"))  # pushed before the file came
    days = [f"2025-03-0{d}T00:00:00" for d in (1, 2)]
    items = [
        Record(1, frozen("M1", days[0])),  # the same as pushed
        Record(2, frozen("M1", days[1])),
        Record(3, frozen("M2", days[0])),
        Record(4, frozen("M3", days[0], remain_money=Decimal("1"))),
        Record(5, None, "meter_comm_no: missing"),
        Record(6, frozen("M4", days[0], std_sum=Decimal("-1"))),
        Record(7, frozen("M1", days[1], remain_money=Decimal("2"))),  # line 2 differing
        Record(8, frozen("M5", "never")),
    ]
    rejected: list[tuple[int, str]] = []
    summary = import_readings(
        uow,
        COMPANY,
        items,
        POLICY,
        batch=2,
        writers=2,
        reject=lambda n, why: rejected.append((n, why)),
        now=NOW,
    )
    assert (summary.read, summary.stored, summary.duplicates) == (8, 3, 2)
    assert (summary.conflicts, summary.rejected) == (1, 3)
    assert [n for n, _ in rejected] == [5, 6, 8]
    assert rejected[0][1] == "meter_comm_no: missing"
    assert rejected[1][1] == "std_sum: a register cannot be negative (-1)"
    assert rejected[2][1].startswith("acquisition_time: ")
    assert len(uow.book.readings) == 4 and len(uow.book.inbox) == 4
    again = import_readings(
        uow, COMPANY, items, POLICY, batch=3, reject=lambda n, why: None, now=NOW
    )
    assert (again.stored, again.duplicates, again.rejected) == (0, 5, 3)
