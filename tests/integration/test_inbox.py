"""Exactly-once billing from ingest: a stored frozen reading is billed once, even across a crash."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gasbill.adapters.db.repositories.inbox import InboxStore
from gasbill.adapters.platform.push_models import MeterDataIn
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.domain.ledger import AccountCode
from gasbill.service.inbox import work_inbox
from gasbill.service.ingest import IngestPolicy, store_readings
from tests.integration.billing_helpers import daily_series, make_account

METER = "12345678901234"
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = IngestPolicy(SHANGHAI, parse_time=parse_platform_time)
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def push_series(uow, series, comm_no=METER):
    readings = [
        MeterDataIn.model_validate(
            {
                "meter_comm_no": comm_no,
                "data_type": 1,
                "acquisition_time": at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
                "std_sum": Decimal(litres).scaleb(-3),
            }
        ).record()
        for at, litres in series
    ]
    return store_readings(uow, "1001", readings, POLICY, now=NOW)


def charged(uow, account):
    with uow:
        return -uow.ledger.balances_of(account)[AccountCode.prepaid(str(account))].posted


def pending(uow):
    with uow:
        return InboxStore(uow.session).pending()


SERIES = daily_series(date(2025, 1, 1), [1500, 2500, 800, 3000, 1200, 900])


def test_stored_readings_are_billed_once_by_the_worker(uow, catalog):
    account = make_account(uow, catalog)
    push_series(uow, SERIES)
    assert pending(uow) == len(SERIES)
    outcome = work_inbox(uow, catalog=catalog, now=NOW)
    assert outcome.claimed == len(SERIES)
    total = charged(uow, account)
    assert total > 0
    assert pending(uow) == 0
    assert work_inbox(uow, catalog=catalog, now=NOW).claimed == 0
    push_series(uow, SERIES)  # the platform pushes them all again
    assert pending(uow) == 0
    assert charged(uow, account) == total


def test_a_crash_between_storing_and_billing_loses_nothing(uow, catalog):
    account = make_account(uow, catalog)
    push_series(uow, SERIES)  # stored and committed; the process dies before any billing
    # ... a new process starts and works the inbox
    work_inbox(uow, catalog=catalog, now=NOW)
    reference = charged(uow, account)
    assert reference > 0
    assert pending(uow) == 0


def test_a_crash_inside_the_worker_bills_nothing_twice(uow, catalog, monkeypatch):
    account = make_account(uow, catalog)
    push_series(uow, SERIES)

    def die(self, outcomes, at):
        raise SystemExit("killed between billing and marking the inbox handled")

    with monkeypatch.context() as patch:
        patch.setattr(InboxStore, "mark_handled", die)
        with pytest.raises(SystemExit):
            work_inbox(uow, catalog=catalog, now=NOW)
    assert charged(uow, account) == 0  # the billing rolled back with the crash
    assert pending(uow) == len(SERIES)
    work_inbox(uow, catalog=catalog, now=NOW)
    once = charged(uow, account)
    work_inbox(uow, catalog=catalog, now=NOW)
    assert charged(uow, account) == once > 0


def test_late_and_out_of_order_readings_are_placed_by_their_time(uow, catalog):
    account = make_account(uow, catalog)
    push_series(uow, [SERIES[0], SERIES[3], SERIES[6]])
    work_inbox(uow, catalog=catalog, now=NOW)
    gap_total = charged(uow, account)
    push_series(uow, [SERIES[5], SERIES[1], SERIES[2], SERIES[4]])
    work_inbox(uow, catalog=catalog, now=NOW)
    push_series(uow, SERIES)
    assert pending(uow) == 0
    # same usage, same (first-tier) price: the total does not change, the days do
    assert charged(uow, account) == gap_total
    with uow:
        days = uow.session.execute(
            sa.text("SELECT day, posted_fen FROM charge_day WHERE account_id = :a ORDER BY day"),
            {"a": account},
        ).all()
    assert [fen for _, fen in days] == [392, 652, 209, 783, 313, 235]


def test_readings_of_an_unknown_meter_wait_as_exceptions_until_it_is_bound(uow, catalog):
    push_series(uow, SERIES, comm_no="55555555555555")
    outcome = work_inbox(uow, catalog=catalog, now=NOW)
    assert outcome.unknown_meter == len(SERIES)
    with uow:
        rows = uow.session.execute(
            sa.text("SELECT kind, meter_comm_no, detail FROM billing_exception")
        ).all()
    # one exception for the meter, not one per reading: its count, first and last reading
    assert [(kind, meter) for kind, meter, _ in rows] == [("unknown_meter", "55555555555555")]
    assert rows[0][2].startswith(f"{len(SERIES)} frozen readings")
    push_series(uow, [(SERIES[-1][0] + (SERIES[1][0] - SERIES[0][0]), 99_000)], "55555555555555")
    work_inbox(uow, catalog=catalog, now=NOW)
    with uow:
        details = uow.session.execute(sa.text("SELECT detail FROM billing_exception")).all()
    assert len(details) == 1 and details[0][0].startswith(f"{len(SERIES) + 1} frozen readings")
    account = make_account(uow, catalog, comm_no="55555555555555")
    from gasbill.service.billing import bill_accounts

    bill_accounts(uow, [account], catalog=catalog, now=NOW)
    assert charged(uow, account) > 0
