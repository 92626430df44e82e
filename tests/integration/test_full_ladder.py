"""A meter opened prorated gets the full ladder at the next cycle boundary (issue 10 §4).

Through the campaigns job, the outbox and a scripted platform, then billing
and the true-up: the setprice is queued once, and from its confirmation the
shadow charges equal the tariff in force to the fen.
"""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from gasbill.adapters.db.tables.commands import Command
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType, SetPrice
from gasbill.domain.ledger import AccountCode
from gasbill.service.billing import bill_accounts
from gasbill.service.campaign_progress import campaigns
from gasbill.service.true_up import post_true_ups
from tests.integration.billing_helpers import daily_series, make_account, store_readings
from tests.integration.test_campaigns import (
    TARIFF,
    ScriptedPlatform,
    campaign_run,
    local,
    report,
    send,
)

PRORATED, WAITING = (f"123456789100{i:02d}" for i in range(1, 3))
FULL = "2025-07 increase full ladder 2026-01-01"
# Oct 1: 80 m³; Jan 1: 80 m³ (the meter, on 75/151 m³, charges 5 m³ in tier 2); Jan 3: 100 m³
USE = [80_000] + [0] * 91 + [80_000, 0, 100_000, 0]
PRORATED_DAY = 75 * 320 + 5 * 384  # 80 m³ on 75/151 m³
IN_FORCE = {"2025-10-01": PRORATED_DAY, "2026-01-01": 80 * 320, "2026-01-03": 100 * 320}


@pytest.fixture
def platform():
    return ScriptedPlatform()


@pytest.fixture
def fleet(uow, catalog):
    opened = date(2025, 10, 1)  # 92 of 365 days left: thresholds 75 and 151 m³ on the meter
    return {
        comm_no: make_account(uow, catalog, number=f"F{k}", comm_no=comm_no,
                              mode=BillingMode.METER, tariff=TARIFF, opened=opened)
        for k, comm_no in enumerate((PRORATED, WAITING), start=1)
    }  # fmt: skip


def setprices(uow):
    with uow:
        query = sa.select(Command).where(Command.ctrl_type == str(CtrlType.SET_PRICE))
        return list(uow.session.exec(query).scalars())


def charge_days(uow):
    with uow:
        rows = uow.session.execute(sa.text("SELECT account_id, day, posted_fen FROM charge_day"))
        return {(a, str(d)): fen for a, d, fen in rows.all() if fen}


def test_no_full_ladder_before_the_boundary(uow, engine, catalog, fleet):
    outcome = campaign_run(engine, catalog, local(2025, 12, 31, 23))
    assert (outcome.created, outcome.enrolled) == ([], 0)
    assert setprices(uow) == []


def test_the_full_ladder_is_queued_once_and_the_shadow_follows_the_meter(
    uow, engine, catalog, platform, fleet
):
    prorated, waiting = fleet[PRORATED], fleet[WAITING]
    t1 = local(2026, 1, 1, 1)
    first = campaign_run(engine, catalog, t1)
    again = campaign_run(engine, catalog, local(2026, 1, 1, 2))
    assert (first.enrolled, again.enrolled) == (2, 0)
    queued = setprices(uow)
    assert sorted(c.account_id for c in queued) == [prorated, waiting]
    sent = queued[0].intent
    assert isinstance(sent, SetPrice)
    assert [int(v.value) for v in sent.ladder.ladders[:2]] == [300, 600]  # the full ladder
    assert [str(p.value) for p in sent.ladder.prices[:3]] == ["3.20", "3.84", "4.80"]
    assert [(c.label, c.total) for c in campaigns(uow)] == [(FULL, 2)]

    send(engine, platform, t1)
    report(uow, platform.wake(PRORATED), local(2026, 1, 3))  # confirmed Jan 3 00:00
    campaign_run(engine, catalog, local(2026, 1, 3, 1))
    assert len(setprices(uow)) == 2  # nothing queued again; WAITING's still waits
    for comm_no in (PRORATED, WAITING):
        store_readings(uow, comm_no, daily_series(date(2025, 10, 1), USE))
    now = local(2026, 1, 5, 1)
    bill_accounts(uow, [prorated, waiting], catalog=catalog, now=now)

    days = charge_days(uow)
    # the shadow: what each meter held, 75/151 m³ until it confirmed the full ladder
    assert {d: f for (a, d), f in days.items() if a == prorated} == {
        "2025-10-01": PRORATED_DAY,
        "2026-01-01": PRORATED_DAY,
        "2026-01-03": IN_FORCE["2026-01-03"],  # confirmed: the tariff in force, to the fen
    }
    waiting_jan3 = (151 - 80) * 384 + (180 - 151) * 480  # 80 → 180 m³ on 75/151
    assert {d: f for (a, d), f in days.items() if a == waiting} == {
        "2025-10-01": PRORATED_DAY,
        "2026-01-01": PRORATED_DAY,
        "2026-01-03": waiting_jan3,
    }

    outcome = post_true_ups(uow, [prorated, waiting], catalog=catalog, now=now)
    assert outcome.accounts == 2
    assert outcome.refunded_fen == 2 * (PRORATED_DAY - 80 * 320) + waiting_jan3 - 100 * 320
    with uow:
        balances = {a: uow.ledger.balances_of(a) for a in (prorated, waiting)}
    for account in (prorated, waiting):
        charged = -balances[account][AccountCode.meter_credit(str(account))].posted
        refunded = balances[account][AccountCode.prepaid(str(account))].posted
        assert charged - refunded == sum(IN_FORCE.values())  # charges + true-ups = in force
    again_posted = post_true_ups(uow, [prorated, waiting], catalog=catalog, now=now)
    assert (again_posted.charged_fen, again_posted.refunded_fen) == (0, 0)
