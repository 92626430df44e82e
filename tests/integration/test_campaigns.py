"""Tariff campaigns through the outbox, against a scripted platform, and the true-up they leave."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.platform.wire import BatchOutcome, BatchResultItem, CtrlDataRecord
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlState, CtrlType, SetPrice, ladder_price_for
from gasbill.domain.ledger import AccountCode
from gasbill.domain.outbox import CommandStatus
from gasbill.service.billing import bill_accounts
from gasbill.service.campaign_progress import campaign_progress, campaigns
from gasbill.service.campaigns import run_campaigns
from gasbill.service.commands.dispatch import dispatch
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.commands.reports import ReportItem, receive_report
from gasbill.service.true_up import post_true_ups, run_true_ups
from tests.integration.billing_helpers import daily_series, make_account, store_readings

ZONE = ZoneInfo("Asia/Shanghai")
CODEC = Codec(ZONE)
POLICY = CommandPolicy(max_attempts=2)
TARIFF = "price-change-example"
LATE, FAILING, SYSTEM, OTHER = (f"123456789000{i:02d}" for i in range(1, 5))
OK = "{}"


def local(y, m, d, hh=0):
    return datetime(y, m, d, hh, tzinfo=ZONE).astimezone(UTC)


class ScriptedPlatform:
    """The platform and its meters, in memory: each meter holds the ladder it last applied."""

    def __init__(self) -> None:
        self.records: dict[int, CtrlDataRecord] = {}
        self.ladders: dict[str, str] = {}

    def add_commands(self, commands):  # the outbox's port, over the wire's AddMulti
        return self.add_multi([CODEC.outgoing(c) for c in commands])

    def add_multi(self, commands):
        outcomes = []
        for position, command in enumerate(commands):
            ctrl_id = len(self.records) + 1
            self.records[ctrl_id] = CtrlDataRecord(
                ctrl_id=ctrl_id,
                ctrl_define_no=command.ctrl_define_no,
                target_comm_no=command.target_comm_no,
                ctrl_type=command.ctrl_type,
                ctrl_data=command.ctrl_data,
                ctrl_state=0,
            )
            item = BatchResultItem(
                ctrl_id=ctrl_id, target_comm_no=command.target_comm_no, result=True, message=""
            )
            outcomes.append(BatchOutcome(position, item, True))
        return outcomes

    def find_by_define_no(self, define_no):
        return [r for r in self.records.values() if r.ctrl_define_no == define_no]

    def get_model(self, ctrl_id):
        return self.records.get(ctrl_id)

    def cancel(self, ctrl_id):
        raise NotImplementedError

    def retry(self, ctrl_id):
        raise NotImplementedError

    def waiting(self, comm_no):
        return [
            r for r in self.records.values() if r.target_comm_no == comm_no and r.ctrl_state == 0
        ]

    def wake(self, comm_no, *, fail=False):
        """The meter wakes up and runs what waits for it; the records as they end."""
        ended = []
        for record in self.waiting(comm_no):
            if fail:
                update = {"ctrl_state": 4, "ctrl_feedback_msg": "meter did not answer"}
            elif record.ctrl_type == CtrlType.SET_PRICE:
                self.ladders[comm_no] = record.ctrl_data
                update = {"ctrl_state": 3, "return_data": OK}
            else:  # getprice
                update = {"ctrl_state": 3, "return_data": self.ladders.get(comm_no)}
            self.records[record.ctrl_id] = record.model_copy(update=update)
            ended.append(self.records[record.ctrl_id])
        return ended


@pytest.fixture
def platform():
    return ScriptedPlatform()


@pytest.fixture
def fleet(uow, catalog):
    opened = date(2025, 1, 1)
    return {
        LATE: make_account(uow, catalog, number="A1", comm_no=LATE, mode=BillingMode.METER,
                           tariff=TARIFF, opened=opened),
        FAILING: make_account(uow, catalog, number="A2", comm_no=FAILING, mode=BillingMode.METER,
                              tariff=TARIFF, opened=opened),
        SYSTEM: make_account(uow, catalog, number="A3", comm_no=SYSTEM, tariff=TARIFF,
                             opened=opened),
        OTHER: make_account(uow, catalog, number="A4", comm_no=OTHER, mode=BillingMode.METER,
                            tariff="beijing-residential", opened=opened),
    }  # fmt: skip


def campaign_run(engine, catalog, at, lead=timedelta(0)):
    factory = lambda: UnitOfWork(engine)  # noqa: E731
    return run_campaigns(factory, catalog=catalog, codec=CODEC, policy=POLICY, now=at, lead=lead)


def send(engine, platform, at):
    return dispatch(lambda: UnitOfWork(engine), platform, CODEC, policy=POLICY, now=at)


def report(uow, records, at):
    for record in records:
        item = ReportItem(
            record.ctrl_id,
            record.target_comm_no,
            CtrlState(record.ctrl_state),
            record.return_data,
            record.ctrl_feedback_msg or "",
            {"return_data": record.return_data, "ctrl_feedback_msg": record.ctrl_feedback_msg},
        )
        assert receive_report(uow, CODEC, "1001", item, policy=POLICY, now=at) == ""


def commands(uow):
    with uow:
        return list(uow.session.exec(sa.select(Command).order_by(Command.id)).scalars())


def test_a_campaign_pushes_confirms_verifies_and_reports_its_failures(
    uow, engine, catalog, platform, fleet
):
    t1 = local(2025, 7, 1, 1)
    first = campaign_run(engine, catalog, t1)
    assert (len(first.created), first.enrolled) == (1, 2)
    again = campaign_run(engine, catalog, t1 + timedelta(minutes=5))
    assert (again.created, again.enrolled) == ([], 0)
    queued = commands(uow)
    assert sorted(c.meter_comm_no for c in queued) == [LATE, FAILING]  # not system, not others
    version = catalog.get(TARIFF).versions[1]
    ladder = ladder_price_for(version, 3, month=7)
    assert {c.intent for c in queued} == {SetPrice(ladder)}
    assert {c.campaign_id for c in queued} == {first.created[0]}
    campaign_id = first.created[0]

    assert send(engine, platform, t1).sent == 2
    assert campaign_run(engine, catalog, t1).enrolled == 0
    assert campaign_progress(uow, campaign_id).sent == 2

    day2 = local(2025, 7, 2)  # a day late
    report(uow, platform.wake(LATE), day2)
    report(uow, platform.wake(FAILING, fail=True), day2)
    step = campaign_run(engine, catalog, day2)
    assert step.confirmed == 1
    for hour in range(1, 4):  # the outbox retries the failing meter, then gives up
        at = day2 + timedelta(hours=hour)
        send(engine, platform, at)
        report(uow, platform.wake(LATE), at)
        report(uow, platform.wake(FAILING, fail=True), at)
    done = campaign_run(engine, catalog, day2 + timedelta(hours=4))
    assert (done.verified, done.failed, done.completed) == (1, 1, [campaign_id])

    progress = campaign_progress(uow, campaign_id)
    assert progress.summary == "1 of 2 confirmed, 1 verified, 1 failed"
    assert (progress.total, progress.label, progress.status) == (2, "2025-07 increase", "completed")
    [failure] = progress.failures
    assert failure.meter_comm_no == FAILING
    assert "attention" in failure.reason and "meter did not answer" in failure.reason
    assert [(p.campaign_id, p.total, p.verified) for p in campaigns(uow)] == [(campaign_id, 2, 1)]
    types = [(c.meter_comm_no, c.ctrl_type.rsplit(".", 1)[1], c.status) for c in commands(uow)]
    assert (LATE, "getprice", CommandStatus.DONE) in types
    assert (FAILING, "setprice", CommandStatus.ATTENTION) in types

    # a later run finds nothing to do; an account opened after the change was opened with it
    make_account(uow, catalog, number="A5", comm_no="12345678900005", mode=BillingMode.METER,
                 tariff=TARIFF, opened=date(2025, 7, 5))  # fmt: skip
    later = campaign_run(engine, catalog, local(2025, 7, 6))
    assert (later.created, later.enrolled, later.confirmed, later.failed) == ([], 0, 0, 0)


def test_a_getprice_answering_another_ladder_fails_the_meter(uow, engine, catalog, platform, fleet):
    t1 = local(2025, 7, 1, 1)
    campaign_id = campaign_run(engine, catalog, t1).created[0]
    send(engine, platform, t1)
    report(uow, platform.wake(LATE), t1)
    campaign_run(engine, catalog, t1)
    send(engine, platform, t1)
    platform.ladders[LATE] = platform.ladders[LATE].replace('"price1":3.2', '"price1":3')
    report(uow, platform.wake(LATE), t1)
    assert campaign_run(engine, catalog, t1).failed == 1
    [failure] = campaign_progress(uow, campaign_id).failures
    assert failure.meter_comm_no == LATE and "not the ladder sent" in failure.reason


def test_a_campaign_goes_out_ahead_only_within_the_lead_time(engine, catalog, fleet):
    before = local(2025, 6, 29)
    assert campaign_run(engine, catalog, before).created == []
    ahead = campaign_run(engine, catalog, before, lead=timedelta(days=3))
    assert (len(ahead.created), ahead.enrolled) == (1, 2)


def test_the_true_up_of_a_meter_confirmed_late_is_posted_once(
    uow, engine, catalog, platform, fleet
):
    late, failing = fleet[LATE], fleet[FAILING]
    use = [1_500] * 190  # Jan 1 .. Jul 9, tier 1 all along
    for comm_no in (LATE, FAILING):
        store_readings(uow, comm_no, daily_series(date(2025, 1, 1), use[:181]))
    bill_accounts(uow, [late, failing], catalog=catalog, now=local(2025, 7, 1, 1))

    t1 = local(2025, 7, 1, 1)
    campaign_id = campaign_run(engine, catalog, t1).created[0]
    send(engine, platform, t1)
    report(uow, platform.wake(LATE), local(2025, 7, 2))  # confirmed a day late
    campaign_run(engine, catalog, local(2025, 7, 2))
    for comm_no in (LATE, FAILING):  # FAILING never confirms
        store_readings(uow, comm_no, daily_series(date(2025, 1, 1), use)[181:])
    now = local(2025, 7, 10, 1)
    bill_accounts(uow, [late, failing], catalog=catalog, now=now)

    first = post_true_ups(uow, [late, failing, fleet[SYSTEM]], catalog=catalog, now=now)
    assert first.accounts == 2
    assert (first.charged_fen, first.refunded_fen) == (30 + 9 * 30, 0)  # 1.5 m³ × 0.20 a day
    second = post_true_ups(uow, [late, failing], catalog=catalog, now=now)
    assert (second.charged_fen, second.refunded_fen, second.transfers) == (0, 0, [])
    job = run_true_ups(lambda: UnitOfWork(engine), catalog=catalog, now=now, batch=1)
    # nothing billed since: both marks hold, and neither account is re-rated
    assert (job.accounts, job.skipped, job.transfers) == (0, 2, [])

    with uow:
        balances = {a: uow.ledger.balances_of(a) for a in (late, failing)}
        rows = uow.session.execute(
            sa.text("SELECT account_id, day, posted_fen, campaign_id FROM true_up_day")
        ).all()
    prepaid = {a: b[AccountCode.prepaid(str(a))].posted for a, b in balances.items()}
    meter_credit = {a: b[AccountCode.meter_credit(str(a))].posted for a, b in balances.items()}
    assert prepaid == {late: -30, failing: -270}
    # the meter deducted Jul 1 at the old price, then the new one: the shadow did the same
    assert meter_credit[late] == -(182 * 450 + 8 * 480)
    assert meter_credit[failing] == -(190 * 450)
    assert sorted((a, str(d), fen, c) for a, d, fen, c in rows if a == late) == [
        (late, "2025-07-01", 30, campaign_id)
    ]
