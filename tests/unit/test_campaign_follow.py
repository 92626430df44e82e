"""Following a campaign's meters (service.campaign_follow) and the campaign job as a whole
(service.campaigns.run_campaigns) on fakes, without a database: a done setprice confirmed
and a getprice queued, a getprice verifying or failing the ladder, a command the outbox
gave up on failing the meter with its reason, campaigns completed and running again, and a
campaign created once for the change due, ahead only within the lead time.

The outbox and the meters on the other end are in tests/integration/test_campaigns.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.commands import CommandResult, CtrlType, LadderPrice, SetPrice
from gasbill.domain.money import Price, Volume
from gasbill.service.campaign_follow import CampaignOutcome, advance, complete
from gasbill.service.campaigns import _enrol, run_campaigns
from gasbill.service.commands.queue import CommandPolicy
from tests.conftest import ROOT
from tests.factories import ZONE_NAME, at
from tests.fakes import (
    FakeAccount,
    FakeBinding,
    FakeCampaign,
    FakeCampaignMeter,
    FakeMeter,
    FakeStore,
    FakeUnitOfWork,
)

CATALOG = TariffCatalog(ROOT / "tariffs", ZONE_NAME)
TARIFF = CATALOG.get("price-change-example")  # 3.00 -> 3.20 yuan/m³ from 2025-07-01
RISE = "2025-07 increase"
ENROLLED = at(2025, 7, 3)
POLICY = CommandPolicy()
# what an old meter holds: the first half's prices, full thresholds
OLD = LadderPrice(
    tuple(Price(Decimal(p)) for p in ("3.00", "3.60", "4.50", "4.50", "4.50")),
    tuple(Volume(Decimal(v)) for v in ("300", "600", "600", "600")),
    date(2025, 1, 1),
    12,
)


@dataclass
class Answers:
    """The platform adapter's reading of getprice answers: `return_data` names the answer."""

    ladders: dict[str, LadderPrice] = field(default_factory=dict)

    def decode_result(self, ctrl_type: str | None, return_data: object) -> CommandResult:
        assert ctrl_type == CtrlType.GET_PRICE
        return self.ladders[str(return_data)]


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


def enrolled(*account_ids: int) -> FakeStore:
    """Campaign 1 of the July rise, each account's setprice queued (command id = account)."""
    store = FakeStore(campaigns=[FakeCampaign(1, TARIFF.id, RISE, at(2025, 7, 1))])
    for account_id in account_ids:
        add_account(store, account_id)
    _enrol(
        lambda: FakeUnitOfWork(store),  # type: ignore[arg-type, return-value]
        store.campaigns[0],  # type: ignore[arg-type]
        TARIFF,
        POLICY,
        ENROLLED,
        timedelta(0),
        CampaignOutcome(),
    )
    assert [c.id for c in store.commands.values()] == list(account_ids)
    return store


def end(store: FakeStore, command_id: int, status: str, when: datetime, **fields: object) -> None:
    """The outbox ends a command."""
    command = store.commands[command_id]
    command.status, command.finished_at = status, when
    for name, value in fields.items():
        setattr(command, name, value)


def follow(store: FakeStore, now: datetime, answers: Answers | None = None) -> CampaignOutcome:
    outcome = CampaignOutcome()
    factory = lambda: FakeUnitOfWork(store)  # noqa: E731
    advance(factory, answers or Answers(), POLICY, now, outcome)  # type: ignore[arg-type]
    complete(factory, outcome)  # type: ignore[arg-type]
    return outcome


def row(store: FakeStore, account_id: int) -> FakeCampaignMeter:
    [found] = [m for m in store.campaign_meters if m.account_id == account_id]
    return found


def test_a_done_setprice_is_confirmed_and_a_getprice_verifying_it_queued():
    store = enrolled(1, 2)
    end(store, 1, "done", at(2025, 7, 3, 10))

    outcome = follow(store, at(2025, 7, 4))

    assert (outcome.confirmed, outcome.verified, outcome.failed) == (1, 0, 0)
    first = row(store, 1)
    assert (first.status, first.confirmed_at, first.verified_at) == (
        "confirmed",
        at(2025, 7, 3, 10),
        None,
    )
    assert (first.getprice_id, first.command_status, first.updated_at) == (
        3,
        "queued",
        at(2025, 7, 4),
    )
    getprice = store.commands[3]
    assert (getprice.ctrl_type, getprice.meter_comm_no, getprice.account_id) == (
        CtrlType.GET_PRICE,
        "M1",
        1,
    )
    assert (getprice.campaign_id, getprice.reason) == (1, "campaign #1: verify the ladder of #1")
    second = row(store, 2)  # its setprice has not moved: not looked at
    assert (second.status, second.updated_at, second.getprice_id) == ("queued", ENROLLED, None)
    assert store.campaigns[0].status == "running"  # two meters waiting
    assert outcome.completed == []


def test_a_getprice_answering_the_ladder_sent_verifies_the_meter_and_completes_the_campaign():
    store = enrolled(1)
    sent = store.commands[1].intent
    assert isinstance(sent, SetPrice)
    end(store, 1, "done", at(2025, 7, 3, 10))
    follow(store, at(2025, 7, 4))
    end(store, 2, "done", at(2025, 7, 4, 9), return_data="as sent")

    outcome = follow(store, at(2025, 7, 5), Answers({"as sent": sent.ladder}))

    assert (outcome.confirmed, outcome.verified, outcome.failed) == (0, 1, 0)
    first = row(store, 1)
    assert (first.status, first.verified_at, first.last_error) == (
        "verified",
        at(2025, 7, 4, 9),
        "",
    )
    assert first.confirmed_at == at(2025, 7, 3, 10)  # kept
    assert outcome.completed == [1]
    assert store.campaigns[0].status == "completed"


def test_a_getprice_answering_another_ladder_fails_the_meter_naming_what_it_holds():
    store = enrolled(1)
    end(store, 1, "done", at(2025, 7, 3, 10))
    follow(store, at(2025, 7, 4))
    end(store, 2, "done", at(2025, 7, 4, 9), return_data="old")

    outcome = follow(store, at(2025, 7, 5), Answers({"old": OLD}))

    assert (outcome.verified, outcome.failed) == (0, 1)
    first = row(store, 1)
    assert (first.status, first.verified_at) == ("failed", None)
    assert first.last_error == (
        "the meter holds prices 3.00/3.60/4.50/4.50/4.50, ladders 300/600/600/600, "
        "cycle 2025-01-01 × 12, not the ladder sent"
    )
    assert outcome.completed == [1]  # a failed meter waits for nothing: a retry reopens it


def test_a_setprice_the_outbox_gave_up_on_fails_with_why_and_a_sent_one_is_sent():
    store = enrolled(1, 2)
    end(
        store,
        1,
        "attention",
        at(2025, 7, 6),
        attempts=6,
        platform_state=3,
        feedback="device offline",
        last_error="no answer in 72 h",
    )
    store.commands[2].status = "sent"

    outcome = follow(store, at(2025, 7, 6, 1))

    assert (outcome.confirmed, outcome.failed) == (0, 1)
    first, second = row(store, 1), row(store, 2)
    assert (first.status, first.command_status, first.getprice_id) == ("failed", "attention", None)
    assert first.last_error == (
        "setprice #1 attention after 6 attempt(s); last state 3; platform: device offline; "
        "no answer in 72 h"
    )
    assert (second.status, second.command_status) == ("sent", "sent")
    assert store.campaigns[0].status == "running"  # the second still waits

    again = follow(store, at(2025, 7, 7))  # nothing moved since: nothing looked at

    assert (again.confirmed, again.failed, again.completed) == (0, 0, [])
    assert [m.updated_at for m in store.campaign_meters] == [at(2025, 7, 6, 1)] * 2


def test_a_cancelled_getprice_fails_the_meter_and_a_refused_setprice_too():
    store = enrolled(1, 2)
    end(store, 1, "done", at(2025, 7, 3, 10))
    end(store, 2, "refused", at(2025, 7, 3, 11), attempts=1, platform_state=4)
    follow(store, at(2025, 7, 4))
    end(store, 3, "cancelled", at(2025, 7, 4, 8), attempts=0, actor="clerk")

    outcome = follow(store, at(2025, 7, 5))

    assert outcome.failed == 1
    assert row(store, 1).last_error == "getprice #3 cancelled after 0 attempt(s)"
    assert row(store, 2).last_error == "setprice #2 refused after 1 attempt(s); last state 4"
    assert [m.status for m in store.campaign_meters] == ["failed", "failed"]


def test_completing_leaves_enrolling_campaigns_alone_and_runs_a_completed_one_waiting_again():
    store = FakeStore(
        campaigns=[
            FakeCampaign(1, TARIFF.id, RISE, at(2025, 7, 1), status="completed"),
            FakeCampaign(2, TARIFF.id, "later", at(2025, 9, 1), status="running"),
            FakeCampaign(3, TARIFF.id, "enrolling", at(2025, 10, 1)),  # no meter yet
            FakeCampaign(4, TARIFF.id, "nobody", at(2025, 11, 1), status="running"),
        ],
        campaign_meters=[
            FakeCampaignMeter(1, 101, 1, "queued"),  # retried by a clerk
            FakeCampaignMeter(1, 102, 2, "verified"),
            FakeCampaignMeter(2, 101, 1, "verified"),
            FakeCampaignMeter(2, 102, 2, "failed"),
        ],
    )
    outcome = CampaignOutcome()

    complete(lambda: FakeUnitOfWork(store), outcome)  # type: ignore[arg-type, return-value]

    assert [c.status for c in store.campaigns] == ["running", "completed", "enrolling", "completed"]
    assert outcome.completed == [2, 4]


def run(store: FakeStore, now: datetime, lead: timedelta = timedelta(0)) -> CampaignOutcome:
    return run_campaigns(
        lambda: FakeUnitOfWork(store),  # type: ignore[arg-type, return-value]
        catalog=CATALOG,
        codec=Answers(),
        policy=POLICY,
        now=now,
        lead=lead,
    )


def test_the_job_creates_the_campaign_of_the_change_due_once_and_enrols_its_meters():
    store = FakeStore()
    add_account(store, 1)
    add_account(store, 2, opened_on=date(2025, 7, 2))  # opened with the new prices
    add_account(store, 3, billing_mode="system")

    outcome = run(store, at(2025, 7, 3))

    assert (outcome.created, outcome.enrolled, outcome.errors) == ([1], 1, [])
    [campaign] = store.campaigns
    assert (campaign.tariff_id, campaign.label, campaign.effective_at) == (
        TARIFF.id,
        RISE,
        at(2025, 7, 1),
    )
    assert (campaign.created_at, campaign.status) == (at(2025, 7, 3), "running")
    assert [(m.account_id, m.status) for m in store.campaign_meters] == [(1, "queued")]

    again = run(store, at(2025, 7, 4))

    assert (again.created, again.enrolled, len(store.commands)) == ([], 0, 1)


def test_a_campaign_goes_out_ahead_only_within_the_lead_time():
    store = FakeStore()
    add_account(store, 1)

    assert run(store, at(2025, 6, 25), lead=timedelta(days=5)).created == []
    assert store.campaigns == []
    outcome = run(store, at(2025, 6, 25), lead=timedelta(days=6))  # 06-25 + 6 days = 07-01

    assert (outcome.created, outcome.enrolled) == ([1], 1)
    assert store.campaigns[0].effective_at == at(2025, 7, 1)


def test_a_tariff_the_catalog_lacks_is_an_error_the_others_go_on():
    store = FakeStore()
    add_account(store, 1)
    add_account(store, 2, tariff_id="no-such-tariff")

    outcome = run(store, at(2025, 7, 3))

    assert [e.split(":")[0] for e in outcome.errors] == ["tariff no-such-tariff"]
    assert (outcome.created, outcome.enrolled) == ([1], 1)
