"""Reviewing a corrected reading: accepting re-rates and posts only the difference; dismissing
moves no money."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.adapters.platform.push_models import MeterDataIn
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.service.accounts import Conflict
from gasbill.service.ingest import IngestPolicy, store_readings
from gasbill.service.push_conflicts import accept_correction, dismiss_conflict, list_conflicts
from tests.factories import ZONE
from tests.integration.billing_helpers import daily_series, make_account
from tests.integration.billing_helpers import store_readings as store_series
from tests.integration.test_billing import NOW, expected, posted_by_day, prepaid_fen

METER = "12345678901234"
POLICY = IngestPolicy(ZONE, parse_time=parse_platform_time)
USE = [1_200, 2_500, 900, 3_100, 1_700, 2_200, 1_400, 2_800, 1_000, 2_000]


def push(uow, at, litres: int) -> None:
    reading = MeterDataIn.model_validate(
        {
            "meter_comm_no": METER,
            "data_type": 1,
            "acquisition_time": f"{at.astimezone(ZONE):%Y-%m-%d %H:%M:%S}",
            "std_sum": Decimal(litres).scaleb(-3),
            "work_sum": Decimal(litres).scaleb(-3),
        }
    ).record()
    store_readings(uow, "1001", [reading], POLICY, now=NOW)


@pytest.fixture
def billed(uow, catalog):
    """An account billed for ten days, and day 5's reading re-pushed 3 times 4 m³ higher."""
    from gasbill.service.billing import bill_accounts

    account = make_account(uow, catalog)
    series = daily_series(date(2025, 1, 1), USE)
    store_series(uow, METER, series)
    bill_accounts(uow, [account], catalog=catalog, now=NOW)
    at, litres = series[5]
    for _ in range(3):
        push(uow, at, litres + 4_000)
    corrected = [(t, v + 4_000 if i == 5 else v) for i, (t, v) in enumerate(series)]
    return account, series, corrected


def test_a_correction_is_listed_beside_the_stored_reading(uow, billed):
    account, series, _ = billed
    (found,) = list_conflicts(uow)
    assert found.account_id == account
    assert found.conflict.times_seen == 3
    assert found.stored["std_sum"] == series[5][1]
    assert found.corrected["std_sum"] == series[5][1] + 4_000
    assert f"std_sum {Decimal(series[5][1] + 4_000).scaleb(-3)}" in found.detail()


def test_accepting_re_rates_and_posts_exactly_the_difference(engine, uow, catalog, billed):
    account, series, corrected = billed
    before = prepaid_fen(uow, account)
    assert posted_by_day(uow, account) == {k: v for k, v in expected(catalog, series).items() if v}
    (found,) = list_conflicts(uow)
    accepted = accept_correction(
        uow,
        found.conflict.id,
        reason="the platform corrected day 5",
        actor="ada",
        catalog=catalog,
        now=NOW + timedelta(hours=1),
    )
    want = {k: v for k, v in expected(catalog, corrected).items() if v}
    assert posted_by_day(uow, account) == want
    old_total = sum(expected(catalog, series).values())
    assert before - prepaid_fen(uow, account) == sum(want.values()) - old_total
    assert accepted.billing is not None and accepted.billing.transfers
    assert all("push conflict" in t.reason and t.actor == "ada" for t in accepted.billing.transfers)
    assert list_conflicts(uow) == []
    with engine.connect() as conn:
        std_sum = conn.execute(
            sa.select(MeterReading.std_sum).where(MeterReading.acquisition_time == series[5][0])
        ).scalar_one()
        action, after = conn.execute(
            sa.text("SELECT action, after FROM audit_log ORDER BY seq DESC LIMIT 1")
        ).one()
    assert std_sum == series[5][1] + 4_000
    assert action == "push_conflict.accept"
    assert json.loads(after)["re_rated"]["account_id"] == account
    # accepting again is refused
    with pytest.raises(Conflict):
        accept_correction(uow, found.conflict.id, reason="again", actor="ada", catalog=catalog)


def test_dismissing_changes_no_money(engine, uow, catalog, billed):
    account, series, _ = billed
    before = prepaid_fen(uow, account)
    days = posted_by_day(uow, account)
    (found,) = list_conflicts(uow)
    row = dismiss_conflict(
        uow, found.conflict.id, reason="meter was being read by hand", actor="bo"
    )
    assert (row.status, row.reviewed, row.reviewed_by) == ("dismissed", True, "bo")
    assert prepaid_fen(uow, account) == before and posted_by_day(uow, account) == days
    assert list_conflicts(uow) == []
    # the same correction again counts on the dismissed conflict and reopens nothing
    push(uow, series[5][0], series[5][1] + 4_000)
    assert list_conflicts(uow) == []
    assert list_conflicts(uow, status=None)[0].conflict.times_seen == 4
    with pytest.raises(Conflict):
        dismiss_conflict(uow, found.conflict.id, reason="again", actor="bo")
