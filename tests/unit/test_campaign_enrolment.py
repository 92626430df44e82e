"""Campaign enrolment (service.campaigns._enrol) on fakes, without a database: which meters
get the price change's setprice, once, and what a run does when another worker holds the
campaign or the change is not in the tariff.

The claim between two real workers and the batched inserts are in
tests/integration/test_campaigns.py.
"""

from __future__ import annotations

from datetime import date, timedelta

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.commands import CtrlType, SetPrice
from gasbill.service import campaigns
from gasbill.service.campaigns import CampaignOutcome, _enrol
from gasbill.service.commands.queue import CommandPolicy
from tests.conftest import ROOT
from tests.factories import ZONE_NAME, at
from tests.fakes import (
    FakeAccount,
    FakeBinding,
    FakeCampaign,
    FakeMeter,
    FakeStore,
    FakeUnitOfWork,
)

CATALOG = TariffCatalog(ROOT / "tariffs", ZONE_NAME)
TARIFF = CATALOG.get("price-change-example")  # 3.00 -> 3.20 yuan/m³ from 2025-07-01
NOW = at(2025, 7, 3)
CAMPAIGN = 1


def add_account(store: FakeStore, account_id: int, **fields: object) -> None:
    values: dict[str, object] = {
        "billing_mode": "meter",
        "tariff_id": TARIFF.id,
        "opened_on": date(2025, 1, 1),
        "number": f"A{account_id}",
    }
    values.update(fields)
    store.accounts[account_id] = FakeAccount(account_id, **values)  # type: ignore[arg-type]
    store.meters[100 + account_id] = FakeMeter(100 + account_id, comm_no=f"M{account_id}")
    store.bindings.append(FakeBinding(account_id, 100 + account_id, bound_at=at(2025, 1, 1)))


def world() -> FakeStore:
    store = FakeStore()
    store.campaigns.append(
        FakeCampaign(CAMPAIGN, TARIFF.id, "2025-07 increase", effective_at=at(2025, 7, 1))
    )
    add_account(store, 1)
    add_account(store, 2, opened_on=date(2025, 3, 10))  # a prorated ladder of its own
    add_account(store, 3, billing_mode="system")  # billed by us: its meter holds no prices
    add_account(store, 4, tariff_id="beijing-residential")  # another tariff
    add_account(store, 5, status="closed")
    add_account(store, 6, opened_on=date(2025, 7, 2))  # opened with the new prices already
    return store


def enrol(store: FakeStore, *, batch_size: int = 50) -> CampaignOutcome:
    outcome = CampaignOutcome()
    [campaign] = [c for c in store.campaigns if c.id == CAMPAIGN]
    policy = CommandPolicy(batch_size=batch_size)
    _enrol(
        lambda: FakeUnitOfWork(store),  # type: ignore[arg-type, return-value]
        campaign,  # type: ignore[arg-type]
        TARIFF,
        policy,
        NOW,
        timedelta(0),
        outcome,
    )
    return outcome


def setprices(store: FakeStore) -> dict[int | None, object]:
    return {
        c.account_id: c.intent
        for c in store.commands.values()
        if c.ctrl_type == CtrlType.SET_PRICE and c.campaign_id == CAMPAIGN
    }


def test_each_active_meter_mode_meter_on_the_tariff_lacking_the_change_gets_a_setprice():
    store = world()

    outcome = enrol(store)

    assert outcome.enrolled == 2
    assert sorted(setprices(store)) == [1, 2]
    rows = {r.account_id: r for r in store.campaign_meters}
    assert sorted(rows) == [1, 2]
    assert {r.status for r in rows.values()} == {"queued"}
    assert {r.setprice_id for r in rows.values()} == {
        c.id for c in store.commands.values() if c.campaign_id == CAMPAIGN
    }
    assert store.campaigns[0].status == "running"  # every page done


def test_each_meter_gets_its_own_ladder_the_new_prices_in_it():
    store = world()

    enrol(store)

    sent = setprices(store)
    assert sent[1] != sent[2]  # opened in March: thresholds prorated by day
    [command] = [c for c in store.commands.values() if c.account_id == 1]
    assert (command.meter_comm_no, command.reason) == ("M1", "campaign #1: 2025-07 increase")
    decoded = command.intent
    assert isinstance(decoded, SetPrice)
    assert [str(p.value) for p in decoded.ladder.prices[:3]] == ["3.20", "3.84", "4.80"]


def test_enrolling_again_sends_nothing_more_a_run_cut_short_resumes(monkeypatch):
    store = world()
    monkeypatch.setattr(campaigns, "PAGE_BATCHES", 4)
    enrol(store, batch_size=1)  # pages of 4 accounts: two pages, then the empty one
    commands = dict(store.commands)

    again = enrol(store)

    assert again.enrolled == 0
    assert store.commands == commands
    assert len(store.campaign_meters) == 2


def test_a_campaign_another_worker_enrols_is_left_to_it():
    store = world()
    store.enrolment_claims_held.add(CAMPAIGN)

    outcome = enrol(store)

    assert (outcome.enrolled, store.commands, store.campaign_meters) == (0, {}, [])
    assert store.campaigns[0].status == "enrolling"


def test_a_change_missing_from_the_tariff_is_an_error_and_enrols_nobody():
    store = world()
    store.campaigns[0].label = "2031 imaginary"

    outcome = enrol(store)

    assert outcome.errors == ["campaign 1: '2031 imaginary' is not in the tariff"]
    assert (outcome.enrolled, store.commands) == (0, {})
