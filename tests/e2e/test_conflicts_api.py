"""Push conflicts in the exceptions queue over HTTP: listed beside the stored reading, accepted
by an auditor (re-rated), dismissed by a clerk; the wrong role is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.push_models import MeterDataIn
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.service.ingest import IngestPolicy, store_readings
from tests.e2e.staff_helpers import API, METER, assert_error, open_account

pytestmark = pytest.mark.db
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def push(engine, day: str, m3: str) -> None:
    reading = MeterDataIn.model_validate(
        {
            "meter_comm_no": METER,
            "data_type": 1,
            "acquisition_time": f"{day} 00:00:00",
            "std_sum": Decimal(m3),
            "work_sum": Decimal(m3),
        }
    ).record()
    store_readings(
        UnitOfWork(engine),
        "1001",
        [reading],
        IngestPolicy(ZONE, parse_time=parse_platform_time),
        now=NOW,
    )


def test_conflicts_are_reviewed_in_the_exceptions_queue(client, clerk, auditor, engine):
    account = open_account(client, clerk)
    for day, m3 in (("2025-01-02", "14.0"), ("2025-01-03", "16.0"), ("2025-01-04", "17.0")):
        push(engine, day, m3)
    for _ in range(2):
        push(engine, "2025-01-03", "16.5")  # a correction, sent twice
    push(engine, "2025-01-04", "99.0")  # another, to be dismissed

    queue = client.get(f"{API}/exceptions", headers=clerk)
    assert queue.status_code == 200, queue.text
    first, second = queue.json()
    assert first["kind"] == second["kind"] == "push_conflict"
    assert first["account_id"] == account["id"]
    assert first["conflict"]["times_seen"] == 2
    assert first["conflict"]["stored"]["std_sum"] == 16_000
    assert first["conflict"]["corrected"]["std_sum"] == 16_500

    refused = client.post(first["conflict"]["accept"], json={"reason": "ok"}, headers=clerk)
    assert_error(refused, 403, "forbidden")
    blank = client.post(first["conflict"]["accept"], json={"reason": " "}, headers=auditor)
    assert_error(blank, 422, "invalid_request")
    accepted = client.post(
        first["conflict"]["accept"], json={"reason": "platform corrected it"}, headers=auditor
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["conflict"]["status"] == "accepted"
    again = client.post(first["conflict"]["accept"], json={"reason": "again"}, headers=auditor)
    assert_error(again, 409, "conflict")

    dismissed = client.post(
        second["conflict"]["dismiss"], json={"reason": "a misread; the meter agrees"}, headers=clerk
    )
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["resolved_by"] == "clerk"
    assert client.get(f"{API}/exceptions", headers=clerk).json() == []
    done = client.get(f"{API}/exceptions/conflicts", params={"status": "all"}, headers=auditor)
    assert [c["conflict"]["status"] for c in done.json()] == ["accepted", "dismissed"]
    missing = client.post(
        f"{API}/exceptions/conflicts/999/dismiss", json={"reason": "x"}, headers=clerk
    )
    assert_error(missing, 404, "not_found")
