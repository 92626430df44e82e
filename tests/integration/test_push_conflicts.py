"""Corrected re-pushes: one conflict per reading and value, counted, whatever path they take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gasbill.adapters.db.repositories.readings import reading_transactions
from gasbill.adapters.platform.push_models import MeterDataIn
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.service.ingest import IngestPolicy, reading_row, store_readings, write_reading_rows
from gasbill.service.ingest_records import PushedReading

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = IngestPolicy(SHANGHAI, parse_time=parse_platform_time)
NOW = datetime(2025, 3, 1, tzinfo=UTC)
DAY = datetime(2025, 2, 1, tzinfo=SHANGHAI)
METER = "12345678901234"


def reading(litres: int, day: int = 0) -> PushedReading:
    return MeterDataIn.model_validate(
        {
            "meter_comm_no": METER,
            "data_type": 1,
            "acquisition_time": f"{DAY + timedelta(days=day):%Y-%m-%d %H:%M:%S}",
            "std_sum": Decimal(litres).scaleb(-3),
        }
    ).record()


def conflicts(engine) -> list[tuple[int, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, second, times_seen FROM push_conflict ORDER BY id")
        ).all()
    return [(int(i), s, int(n)) for i, s, n in rows]


def test_a_correction_re_sent_200_times_is_one_conflict_seen_200_times(engine, uow):
    first = store_readings(uow, "1001", [reading(100_000)], POLICY, now=NOW)
    assert first[0].new
    for i in range(200):
        again = store_readings(
            uow, "1001", [reading(100_500)], POLICY, now=NOW + timedelta(minutes=i)
        )
        assert again[0].conflict and again[0].id == first[0].id
    (only,) = conflicts(engine)
    assert only[2] == 200
    with engine.connect() as conn:
        last_seen, status = conn.execute(
            sa.text("SELECT last_seen_at, status FROM push_conflict")
        ).one()
    if isinstance(last_seen, str):
        last_seen = datetime.fromisoformat(last_seen)
    assert last_seen.replace(tzinfo=UTC) == (NOW + timedelta(minutes=199)).replace(tzinfo=UTC)
    assert status == "open"


def test_a_third_value_is_a_second_conflict_of_the_same_reading(engine, uow):
    store_readings(uow, "1001", [reading(100_000)], POLICY, now=NOW)
    for litres in (100_500, 100_700, 100_500, 100_700, 100_000):
        store_readings(uow, "1001", [reading(litres)], POLICY, now=NOW)
    assert [n for _, _, n in conflicts(engine)] == [2, 2]


def test_group_commit_counts_the_same_correction_on_one_row(engine):
    rows = [reading_row("1001", reading(100_000), POLICY, NOW)]
    write_reading_rows(reading_transactions(engine), rows)
    for _ in range(3):
        batch = [reading_row("1001", reading(100_500), POLICY, NOW) for _ in range(2)]
        write_reading_rows(reading_transactions(engine), batch)
    assert [n for _, _, n in conflicts(engine)] == [6]


def test_the_migration_merges_the_rows_written_one_per_arrival(tmp_path):
    """Rows from before e4f5a6b7c8d9 (one per arrival) become one per value, counted."""
    from gasbill.adapters.db.migrations import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "d1e2f3a4b5c6")
    engine = sa.create_engine(url)
    key = '["12345678901234",1,"2025-02-01T00:00:00+08:00"]'
    values = [
        ('{"std_sum":100500}', "2025-03-01 00:00:00", 0),
        ('{"std_sum":100500}', "2025-03-02 00:00:00", 0),
        ('{"std_sum":100500}', "2025-03-03 00:00:00", 0),
        ('{"std_sum":100700}', "2025-03-04 00:00:00", 1),
    ]
    with engine.begin() as conn:
        for second, at, reviewed in values:
            conn.execute(
                sa.text(
                    "INSERT INTO push_conflict (kind, company_no, natural_key, first, second, "
                    "received_at, reviewed) VALUES ('reading', '1001', :k, :f, :s, :at, :r)"
                ),
                {"k": key, "f": '{"std_sum":100000}', "s": second, "at": at, "r": reviewed},
            )
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT times_seen, status, last_seen_at FROM push_conflict ORDER BY id")
        ).all()
    engine.dispose()
    assert [(n, s) for n, s, _ in rows] == [(3, "open"), (1, "dismissed")]
    assert str(rows[0][2]).startswith("2025-03-03")
