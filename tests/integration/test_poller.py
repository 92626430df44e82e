"""Query mode: our poller pulls a platform's data (here: our own query API on another database)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi.testclient import TestClient

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.data_client import DataClient
from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.api.lanes import LaneApp
from gasbill.api.platform import PlatformContext, install_platform_api
from gasbill.config import Settings
from gasbill.jobs import JobContext
from gasbill.jobs.registry import run_query_poll
from gasbill.service.ingest import IngestPolicy
from gasbill.service.poller import month_windows, poll_once
from tests.conftest import ROOT

ZONE = ZoneInfo("Asia/Shanghai")
KEYS = {"company_no": "1001", "data_api_key": "496d1bac094f11e79d9c0a0027000010"}
NOW = datetime(2025, 6, 2, 4, tzinfo=UTC)


def test_month_windows_cover_the_span_inside_single_months():
    windows = list(
        month_windows(
            datetime(2025, 4, 29, 16, 30, tzinfo=UTC),
            datetime(2025, 6, 2, 4, 5, tzinfo=UTC),
            IngestPolicy(ZONE, parse_time=parse_platform_time),
        )
    )
    assert windows == [
        {"year": 2025, "month": 4, "start_day": 30, "start_hour": 0, "start_minute": 30},
        {"year": 2025, "month": 5, "start_day": 1, "start_hour": 0, "start_minute": 0},
        {
            "year": 2025,
            "month": 6,
            "start_day": 1,
            "start_hour": 0,
            "start_minute": 0,
            "end_day": 2,
            "end_hour": 12,
            "end_minute": 5,
        },
    ]


def platform_with_week_of_readings(tmp_path, sqlite_template):
    """Our own query API on another database, holding 7 frozen readings and an alarm."""
    platform_db = tmp_path / "platform.db"
    shutil.copyfile(sqlite_template, platform_db)
    platform_engine = make_engine(f"sqlite:///{platform_db}")
    app = LaneApp()
    install_platform_api(
        app, PlatformContext(platform_engine, PushSettings(), ZONE, clock=lambda: NOW)
    )
    client = TestClient(app)
    for day in range(25, 32):
        reply = client.post(
            "/api/Data/MeterData/Add",
            headers=KEYS,
            content=json.dumps(
                {
                    "meter_comm_no": "12345678901234",
                    "data_type": 1,
                    "acquisition_time": f"2025-05-{day} 00:00:00",
                    "std_sum": day * 1.5,
                }
            ),
        )
        assert reply.json()["State"] == "success"
    client.post(
        "/api/Data/DeviceAlarm/Add",
        headers=KEYS,
        content=json.dumps(
            {
                "device_comm_no": "12345678901234",
                "alarm_time": "2025-05-31 10:00:00",
                "alarm_code": 3,
            }
        ),
    )
    return platform_engine, DataClient(client, KEYS["company_no"], KEYS["data_api_key"])


def test_the_poller_stores_each_reading_once_and_keeps_its_mark(engine, tmp_path, sqlite_template):
    platform_engine, source = platform_with_week_of_readings(tmp_path, sqlite_template)
    uow = UnitOfWork(engine)
    wakes: list[int] = []
    first = poll_once(
        uow,
        source,
        "1001",
        IngestPolicy(ZONE, parse_time=parse_platform_time),
        lookback=timedelta(days=10),
        page_size=3,
        now=NOW,
        on_frozen_stored=lambda: wakes.append(1),
    )
    assert first.fetched["reading"] == 7
    assert first.stored == {"reading": 7, "alarm": 1, "event": 0}
    assert len(wakes) == 3  # billing woken after each page of new frozen readings (3 + 3 + 1)
    again = poll_once(
        uow,
        source,
        "1001",
        IngestPolicy(ZONE, parse_time=parse_platform_time),
        page_size=3,
        now=NOW,
        on_frozen_stored=lambda: wakes.append(1),
    )
    assert again.stored == {"reading": 0, "alarm": 0, "event": 0}
    assert len(wakes) == 3  # nothing new: billing is not woken
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM meter_reading")).scalar_one() == 7
        assert conn.execute(sa.text("SELECT COUNT(*) FROM billing_inbox")).scalar_one() == 7
        marks = dict(conn.execute(sa.text("SELECT kind, mark_at FROM poll_mark")).all())
    assert set(marks) == {"reading", "alarm"}
    platform_engine.dispose()


def test_the_query_poll_job_wakes_billing_like_a_push(engine, tmp_path, sqlite_template):
    """What the poll stores is billed at once: the job wakes the inbox through the same
    wakers a push uses (the scheduler's inbox job in this process, NOTIFY for others)."""
    platform_engine, source = platform_with_week_of_readings(tmp_path, sqlite_template)
    settings = Settings(
        tariffs={"dir": ROOT / "tariffs"},
        platform={"company_no": "1001"},
        jobs={"query_poll": {"lookback_hours": 240, "page_size": 500}},
    )
    context = JobContext.build(settings, engine, data_source_factory=lambda: source)
    woken: list[str] = []
    assert context.services is not None
    context.services.wakers.append(lambda: woken.append("inbox"))
    try:
        outcome = run_query_poll(context, NOW)
        assert outcome.stored["reading"] == 7
        assert woken == ["inbox"]
    finally:
        context.close()
        platform_engine.dispose()
