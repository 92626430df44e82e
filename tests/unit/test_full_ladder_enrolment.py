"""Enrolling meters opened prorated onto the full ladder (service.full_ladder) on fakes,
without a database: which meters get it, once, as one campaign per (tariff, boundary).

price-change-example: a yearly cycle from January 1, thresholds 300/600 m³ prorated by day
at an opening, 3.20/3.84/4.80 yuan/m³ since 2025-07-01. A meter opened during 2025 holds
prorated thresholds until the boundary of 2026-01-01; one opened on 2025-01-01 had the
whole cycle. What the meter holds is tested in tests/unit/test_full_ladder.py, the
database's side in tests/integration/test_full_ladder.py.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.commands import CtrlType, SetPrice
from gasbill.domain.tariff import Tariff
from gasbill.service import full_ladder
from gasbill.service.campaigns import _push
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.full_ladder import full_ladders_due
from tests.conftest import ROOT
from tests.factories import ZONE_NAME, at
from tests.fakes import (
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
RISE = CATALOG.get("price-change-example")
FULL = "2025-07 increase full ladder 2026-01-01"
AFTER = at(2026, 1, 3)  # the boundary passed


def world(tariff_id: str = RISE.id) -> FakeStore:
    store = FakeStore()
    opened = {
        1: date(2025, 10, 1),  # prorated: 92 of 365 days
        2: date(2025, 1, 1),  # the whole cycle: nothing to do
        3: date(2025, 3, 10),  # prorated: 297 of 365 days
        4: date(2025, 10, 1),  # billed by us: its meter holds no prices
    }
    for account_id, opened_on in opened.items():
        store.accounts[account_id] = FakeAccount(
            account_id, billing_mode="meter", tariff_id=tariff_id, opened_on=opened_on
        )
        store.meters[100 + account_id] = FakeMeter(100 + account_id, comm_no=f"M{account_id}")
        store.bindings.append(FakeBinding(account_id, 100 + account_id, at(2025, 1, 1)))
    store.accounts[4].billing_mode = "system"
    return store


def due(store: FakeStore, now: datetime, tariff: Tariff = RISE, batch_size: int = 50) -> int:
    return full_ladders_due(
        lambda: FakeUnitOfWork(store),  # type: ignore[arg-type, return-value]
        tariff,
        policy=CommandPolicy(batch_size=batch_size),
        now=now,
        push=_push,
    )


def test_each_meter_opened_prorated_in_the_cycle_that_ended_gets_the_full_ladder_once():
    store = world()

    assert due(store, AFTER) == 2

    [campaign] = store.campaigns
    assert (campaign.id, campaign.tariff_id, campaign.label) == (1, RISE.id, FULL)
    assert (campaign.effective_at, campaign.created_at, campaign.status) == (
        at(2026, 1, 1),
        AFTER,
        "running",
    )
    assert [(m.account_id, m.meter_id, m.status) for m in store.campaign_meters] == [
        (1, 101, "queued"),
        (3, 103, "queued"),
    ]
    for account_id in (1, 3):
        [command] = [c for c in store.commands.values() if c.account_id == account_id]
        assert (command.ctrl_type, command.campaign_id) == (CtrlType.SET_PRICE, 1)
        assert command.reason == f"campaign #1: {FULL}"
        intent = command.intent
        assert isinstance(intent, SetPrice)
        assert [str(p.value) for p in intent.ladder.prices[:3]] == ["3.20", "3.84", "4.80"]
        assert [v.value for v in intent.ladder.ladders[:2]] == [Decimal(300), Decimal(600)]

    assert due(store, at(2026, 1, 4)) == 0  # again: every meter is in
    assert (len(store.campaigns), len(store.commands)) == (1, 2)


def test_pages_of_accounts_are_enrolled_into_the_one_campaign(monkeypatch):
    store = world()
    monkeypatch.setattr(full_ladder, "PAGE_BATCHES", 4)

    assert due(store, AFTER, batch_size=1) == 2  # pages of 4 accounts, then of none

    assert [c.label for c in store.campaigns] == [FULL]
    assert sorted(m.account_id for m in store.campaign_meters) == [1, 3]


def test_nothing_before_the_boundary_nor_a_cycle_later():
    store = world()

    assert due(store, at(2025, 12, 31, 23, 59)) == 0  # the opening cycle is still prorated
    assert due(store, at(2027, 1, 2)) == 0  # the last boundary passed is 2027-01-01
    assert (store.campaigns, store.commands) == ([], {})


def test_a_tariff_another_worker_enrols_or_without_proration_is_left_alone():
    store = world()
    store.full_ladder_claims_held.add(RISE.id)
    assert due(store, AFTER) == 0

    unprorated = CATALOG.get("shanghai-residential")  # opening_proration = "none"
    other = world(unprorated.id)
    assert due(other, AFTER, unprorated) == 0
    assert (store.commands, other.commands) == ({}, {})


def test_a_meter_holding_or_awaiting_a_later_change_needs_no_full_ladder(tmp_path: Path):
    # the same tariff with a rise on 2026-02-01, pushed ahead to account 1's meter (queued)
    # and confirmed by account 3's: its push carries the full thresholds already
    text = (ROOT / "tariffs" / "price-change-example.toml").read_text()
    text = text.replace('id = "price-change-example"', 'id = "rise-2026"')
    text += '\n[[versions]]\nlabel = "2026-02 rise"\neffective_from = 2026-02-01\n'
    text += "prices = [3.40, 4.08, 5.10]\n"
    (tmp_path / "rise-2026.toml").write_text(text)
    tariff = TariffCatalog(tmp_path, ZONE_NAME).get("rise-2026")
    store = world(tariff.id)
    store.campaigns.append(FakeCampaign(1, tariff.id, "2026-02 rise", at(2026, 2, 1), "running"))
    for account_id, status in ((1, "queued"), (3, "done")):
        store.commands[account_id] = FakeCommand(
            account_id,
            f"D{account_id}",
            "1001",
            100 + account_id,
            f"M{account_id}",
            str(CtrlType.SET_PRICE),
            None,
            status,
            next_attempt_at=at(2025, 12, 30),
            timeout_at=at(2026, 1, 2),
            created_at=at(2025, 12, 30),
            finished_at=at(2025, 12, 31) if status == "done" else None,
        )
        store.campaign_meters.append(
            FakeCampaignMeter(1, 100 + account_id, account_id, setprice_id=account_id)
        )

    assert due(store, AFTER, tariff) == 0
    assert [c.label for c in store.campaigns] == ["2026-02 rise"]

    store.commands[1].status = "cancelled"  # account 1's push called off: it needs one

    assert due(store, AFTER, tariff) == 1
    assert [(m.campaign_id, m.account_id) for m in store.campaign_meters][-1] == (2, 1)
    assert store.campaigns[-1].label == FULL
