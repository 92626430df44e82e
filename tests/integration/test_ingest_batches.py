"""Readings stored a batch at a time (group commit, import): the same outcomes as one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gasbill.adapters.db.repositories.readings import reading_transactions
from gasbill.adapters.db.repositories.readings_postgres import COPY_FROM_ROWS
from gasbill.adapters.platform.push_models import MeterDataIn
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.service.ingest import IngestPolicy, Stored, reading_row, write_reading_rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = IngestPolicy(SHANGHAI, parse_time=parse_platform_time)
NOW = datetime(2025, 3, 1, tzinfo=UTC)
DAY = datetime(2025, 2, 1, tzinfo=SHANGHAI)


def row(meter: str, day: int, litres: int, data_type: int = 1) -> dict:
    reading = MeterDataIn.model_validate(
        {
            "meter_comm_no": meter,
            "data_type": data_type,
            "acquisition_time": f"{DAY + timedelta(days=day):%Y-%m-%d %H:%M:%S}",
            "std_sum": Decimal(litres).scaleb(-3),
        }
    ).record()
    return reading_row("1001", reading, POLICY, NOW)


def count(engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one()


def latest(engine, meter: str) -> tuple[int, datetime]:
    with engine.connect() as conn:
        data_type, at = conn.execute(
            sa.text(
                "SELECT data_type, acquisition_time FROM meter_latest WHERE meter_comm_no = :m"
            ),
            {"m": meter},
        ).one()
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return data_type, at if at.tzinfo else at.replace(tzinfo=UTC)


def test_a_batch_stores_each_reading_once_and_queues_the_frozen_ones(engine):
    rows = [row("11111111111111", d, 1000 * d) for d in range(5)]
    rows += [row("22222222222222", d, 500 * d) for d in (3, 1, 2)]  # out of order
    rows.append(row("22222222222222", 4, 2100, data_type=0))  # real time: not billed
    outcomes = write_reading_rows(reading_transactions(engine), rows)
    assert all(isinstance(o, Stored) and o.new for o in outcomes)
    assert len({o.id for o in outcomes}) == len(rows)
    assert count(engine, "meter_reading") == 9
    assert count(engine, "billing_inbox") == 8
    # each meter's latest is the newest of the batch, whatever the order it came in
    assert latest(engine, "11111111111111") == (1, (DAY + timedelta(days=4)).astimezone(UTC))
    assert latest(engine, "22222222222222") == (0, (DAY + timedelta(days=4)).astimezone(UTC))


def test_the_same_reading_twice_in_a_batch_is_stored_once_and_both_get_its_id(engine):
    first, again, changed = row("1" * 14, 0, 100), row("1" * 14, 0, 100), row("1" * 14, 0, 999)
    a, b, c = write_reading_rows(reading_transactions(engine), [first, again, changed])
    assert isinstance(a, Stored) and isinstance(b, Stored) and isinstance(c, Stored)
    assert (a.new, b.new, c.new) == (True, False, False)
    assert a.id == b.id == c.id
    assert (b.conflict, c.conflict) == (False, True)
    assert count(engine, "meter_reading") == 1
    assert count(engine, "billing_inbox") == 1
    assert count(engine, "push_conflict") == 1


def test_a_batch_of_readings_already_stored_stores_nothing_new(engine):
    rows = [row("1" * 14, d, 100 * d) for d in range(3)]
    ids = [o.id for o in write_reading_rows(reading_transactions(engine), rows)]
    again = write_reading_rows(
        reading_transactions(engine), [row("1" * 14, d, 100 * d) for d in range(3)]
    )
    assert [o.id for o in again] == ids
    assert not any(o.new for o in again)
    assert count(engine, "billing_inbox") == 3


def test_a_row_the_database_refuses_fails_alone_and_its_batch_is_stored(engine):
    good = [row("1" * 14, d, 100 * d) for d in range(3)]
    poison = row("2" * 14, 0, 100)
    poison["std_sum"] = 10**20  # beyond a 64-bit column: the whole statement fails
    outcomes = write_reading_rows(reading_transactions(engine), [good[0], poison, *good[1:]])
    assert isinstance(outcomes[1], Exception)
    assert all(isinstance(o, Stored) and o.new for i, o in enumerate(outcomes) if i != 1)
    assert count(engine, "meter_reading") == 3
    assert count(engine, "billing_inbox") == 3
    assert count(engine, "meter_latest", "WHERE meter_comm_no = '22222222222222'") == 0


def test_a_large_batch_of_new_readings_is_copied_in_whole(engine):
    """On PostgreSQL, batches of COPY_FROM_ROWS or more go by COPY (straight in when all new)."""
    rows = [row(f"{m:014d}", d, 100 * d + m) for m in range(300) for d in range(2)]
    assert len(rows) >= COPY_FROM_ROWS
    outcomes = write_reading_rows(reading_transactions(engine), rows)
    assert all(isinstance(o, Stored) and o.new for o in outcomes)
    assert count(engine, "meter_reading") == 600
    assert count(engine, "billing_inbox") == 600
    assert count(engine, "meter_latest") == 300
    assert latest(engine, f"{7:014d}") == (1, (DAY + timedelta(days=1)).astimezone(UTC))


def test_a_large_batch_with_some_readings_stored_stores_the_rest_and_keeps_conflicts(engine):
    first = [row(f"{m:014d}", 0, m) for m in range(100)]
    write_reading_rows(reading_transactions(engine), first)
    again = [row(f"{m:014d}", d, m if d == 0 else 50 + m) for m in range(300) for d in range(2)]
    again[0]["std_sum"] = 999_999  # meter 0's first day, stored already, now different
    outcomes = write_reading_rows(reading_transactions(engine), again)
    assert sum(o.new for o in outcomes) == 500
    assert sum(o.conflict for o in outcomes) == 1
    assert count(engine, "meter_reading") == 600
    assert count(engine, "billing_inbox") == 600
    assert count(engine, "push_conflict") == 1
    assert latest(engine, f"{0:014d}") == (1, (DAY + timedelta(days=1)).astimezone(UTC))
