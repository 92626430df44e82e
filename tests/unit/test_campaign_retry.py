"""A clerk's retry of a campaign's failed meters (service.campaign_retry) on fakes, without
a database: each failed meter of an active account gets the change's ladder again as a new
setprice, its row starts over, the campaign runs again, and the retry is audited.

Accounts on price-change-example (thresholds 300/600 m³ a year from January 1, prorated
by day at an opening): opened 2025-01-01, a whole cycle; opened 2025-03-10, 297 of 365
days left (22 in March + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30 + 31), so 300 × 297 / 365
= 244.1 → 244 m³ and 600 × 297 / 365 = 488.2 → 488 m³, whole m³ down.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.commands import CtrlType, SetPrice
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.campaign_retry import CampaignRetry, retry_failed_meters
from gasbill.service.commands.queue import CommandPolicy
from tests.conftest import ROOT
from tests.factories import ZONE_NAME, at
from tests.fakes import (
    AuditEntry,
    FakeAccount,
    FakeBinding,
    FakeCampaign,
    FakeCampaignMeter,
    FakeCommand,
    FakeMeter,
    FakeStore,
    FakeUnitOfWork,
)

CATALOG = TariffCatalog(ROOT / "tariffs", ZONE_NAME)
TARIFF = "price-change-example"
RISE = "2025-07 increase"  # 3.20/3.84/4.80 from 2025-07-01
NOW = at(2025, 7, 10)


def given_up(command_id: int, meter_id: int) -> FakeCommand:
    """The setprice the outbox gave up on."""
    return FakeCommand(
        command_id,
        f"D{command_id}",
        "1001",
        meter_id,
        f"M{meter_id - 100}",
        str(CtrlType.SET_PRICE),
        None,
        "attention",
        next_attempt_at=at(2025, 7, 3),
        timeout_at=at(2025, 7, 6),
        created_at=at(2025, 7, 3),
        finished_at=at(2025, 7, 6),
    )


def world(status: str = "completed", label: str = RISE) -> FakeStore:
    store = FakeStore(campaigns=[FakeCampaign(1, TARIFF, label, at(2025, 7, 1), status)])
    opened = {1: date(2025, 1, 1), 2: date(2025, 1, 1), 3: date(2025, 3, 10), 4: date(2025, 1, 1)}
    for account_id, opened_on in opened.items():
        store.accounts[account_id] = FakeAccount(
            account_id, billing_mode="meter", tariff_id=TARIFF, opened_on=opened_on
        )
        store.meters[100 + account_id] = FakeMeter(100 + account_id, comm_no=f"M{account_id}")
        store.bindings.append(FakeBinding(account_id, 100 + account_id, at(2025, 1, 1)))
    store.accounts[2].status = "closed"
    for account_id in (1, 2, 3):
        store.commands[account_id] = given_up(account_id, 100 + account_id)
        store.campaign_meters.append(
            FakeCampaignMeter(
                1,
                100 + account_id,
                account_id,
                "failed",
                f"setprice #{account_id} attention after 6 attempt(s)",
                setprice_id=account_id,
                command_status="attention",
                confirmed_at=at(2025, 7, 4) if account_id == 3 else None,
            )
        )
    store.campaign_meters.append(
        FakeCampaignMeter(1, 104, 4, "verified", verified_at=at(2025, 7, 5), getprice_id=9)
    )
    return store


def retry(store: FakeStore, campaign_id: int = 1) -> CampaignRetry:
    return retry_failed_meters(
        FakeUnitOfWork(store),  # type: ignore[arg-type]
        campaign_id,
        catalog=CATALOG,
        policy=CommandPolicy(),
        actor="clerk",
        now=NOW,
    )


def ladder_of(store: FakeStore, command_id: int) -> tuple[list[str], list[Decimal]]:
    """The first three prices of the setprice's ladder, and its two thresholds in m³."""
    intent = store.commands[command_id].intent
    assert isinstance(intent, SetPrice)
    return (
        [str(p.value) for p in intent.ladder.prices[:3]],
        [v.value for v in intent.ladder.ladders[:2]],
    )


def test_each_failed_meter_of_an_active_account_gets_the_ladder_again_and_starts_over():
    store = world()

    outcome = retry(store)

    assert outcome.retried == [101, 103]
    assert outcome.still_failed == [(102, "the account is closed or gone")]
    by_meter = {m.meter_id: m for m in store.campaign_meters}
    for meter_id, command_id in ((101, 4), (103, 5)):
        again = by_meter[meter_id]
        assert (again.status, again.setprice_id, again.getprice_id) == ("queued", command_id, None)
        assert (again.command_status, again.last_error) == ("queued", "")
        assert (again.confirmed_at, again.verified_at, again.updated_at) == (None, None, NOW)
    assert by_meter[102].status == "failed" and by_meter[102].setprice_id == 2
    assert (by_meter[104].status, by_meter[104].getprice_id) == ("verified", 9)
    assert ladder_of(store, 4) == (["3.20", "3.84", "4.80"], [300, 600])
    assert ladder_of(store, 5) == (["3.20", "3.84", "4.80"], [244, 488])  # prorated
    new = store.commands[5]
    assert (new.meter_comm_no, new.account_id, new.campaign_id) == ("M3", 3, 1)
    assert new.reason == "campaign #1: 2025-07 increase (retried)"
    assert sorted(store.commands) == [1, 2, 3, 4, 5]


def test_the_completed_campaign_runs_again_and_the_retry_is_audited():
    store = world()

    retry(store)

    assert store.campaigns[0].status == "running"
    assert store.audit == [
        AuditEntry(
            "clerk",
            "campaign.retry_failed",
            "campaign",
            1,
            None,
            {"retried": [101, 103], "still_failed": 1},
            NOW,
        )
    ]


def test_a_retry_with_nothing_to_send_leaves_the_campaign_completed_but_is_audited():
    store = world()
    for account_id in (1, 3):
        store.accounts[account_id].status = "closed"

    outcome = retry(store)

    assert (outcome.retried, len(outcome.still_failed)) == ([], 3)
    assert store.campaigns[0].status == "completed"
    assert sorted(store.commands) == [1, 2, 3]
    assert [e.after for e in store.audit] == [{"retried": [], "still_failed": 3}]


def test_an_unknown_campaign_or_a_change_gone_from_the_tariff_changes_nothing():
    store = world()
    with pytest.raises(NotFound, match="no campaign 7"):
        retry(store, 7)
    store.campaigns[0].label = "2031 imaginary"
    with pytest.raises(Conflict, match="'2031 imaginary' is no longer in the tariff"):
        retry(store)
    assert (sorted(store.commands), store.audit) == ([1, 2, 3], [])


def test_a_full_ladder_campaign_sends_the_full_thresholds_again():
    # opened 2025-03-10: prorated in 2025, the full ladder at the boundary of 2026-01-01
    store = world("running", label=f"{RISE} full ladder 2026-01-01")
    store.campaigns[0].effective_at = at(2026, 1, 1)

    outcome = retry(store)

    assert outcome.retried == [101, 103]
    assert ladder_of(store, 5) == (["3.20", "3.84", "4.80"], [300, 600])
    assert store.commands[5].reason == f"campaign #1: {RISE} full ladder 2026-01-01 (retried)"
