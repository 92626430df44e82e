"""The command outbox against a scripted platform: lost replies, unknown endings, reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.client import PlatformRefused, PlatformRetryable
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.platform.jsontext import loads_exact
from gasbill.adapters.platform.wire import BatchOutcome, BatchResultItem, CtrlDataRecord
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlState
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Volume
from gasbill.domain.outbox import CommandStatus
from gasbill.service.accounts import NewAccount, create_customer
from gasbill.service.commands.actions import cancel_command, retry_command
from gasbill.service.commands.dispatch import dispatch
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from gasbill.service.commands.reports import ReportItem, poll_silent, receive_report
from gasbill.service.ledger import record_payment
from gasbill.service.opening import open_with_payment
from tests.integration.billing_helpers import make_account

ZONE = ZoneInfo("Asia/Shanghai")
METER_MODE = BillingMode.METER
CODEC = Codec(ZONE)
POLICY = CommandPolicy(max_attempts=3)
T0 = datetime(2025, 3, 1, 2, tzinfo=UTC)
METER = "12345678901234"
# the platform sends return_data as an object or as a string holding JSON; strings here
APPLIED = json.dumps({"success": 170, "reason": 0, "calc_type": 0, "remain": 150.0})
REFUSED = json.dumps({"success": 187, "reason": 2, "calc_type": 0, "remain": 0})


class ScriptedPlatform:
    """The platform's side of the outbox, in memory, with faults on request."""

    def __init__(self) -> None:
        self.records: dict[int, CtrlDataRecord] = {}
        self.lose_next_reply = False
        self.refuse_next = False
        self.adds = 0
        self.before_reply = None  # called with each record added, before AddMulti answers

    def add_commands(self, commands):  # the outbox's port, over the wire's AddMulti
        return self.add_multi([CODEC.outgoing(c) for c in commands])

    def add_multi(self, commands):
        if self.refuse_next:
            self.refuse_next = False
            raise PlatformRefused("platform busy, try later", status=200)
        outcomes = []
        for position, command in enumerate(commands):
            self.adds += 1
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
        for ctrl_id in (o.item.ctrl_id for o in outcomes):
            if self.before_reply is not None:
                self.before_reply(self.records[ctrl_id])
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise PlatformRetryable("connection reset: the reply was lost")
        return outcomes

    def find_by_define_no(self, define_no):
        return [r for r in self.records.values() if r.ctrl_define_no == define_no]

    def get_model(self, ctrl_id):
        return self.records.get(ctrl_id)

    def cancel(self, ctrl_id):
        record = self.records[ctrl_id]
        if record.ctrl_state != 0:
            raise PlatformRefused("only a waiting command can be cancelled")
        self.records[ctrl_id] = record.model_copy(update={"ctrl_state": 5})
        return ctrl_id

    def retry(self, ctrl_id):
        self.records[ctrl_id] = self.records[ctrl_id].model_copy(update={"ctrl_state": 0})
        return ctrl_id

    def finish(self, ctrl_id, state, return_data=None):
        self.records[ctrl_id] = self.records[ctrl_id].model_copy(
            update={"ctrl_state": state, "return_data": return_data}
        )
        return self.records[ctrl_id]

    def data_of(self, ctrl_id):
        return loads_exact(self.records[ctrl_id].ctrl_data)


@pytest.fixture
def platform():
    return ScriptedPlatform()


@pytest.fixture
def account(uow, catalog):
    account_id = make_account(uow, catalog, mode=BillingMode.METER)
    record_payment(
        uow,
        account_id=account_id,
        amount_fen=100_000,
        channel="counter",
        idempotency_key="pay-1",
        actor="clerk",
        at=T0,
    )
    return account_id


def top_up(uow, account_id, fen, key, at=T0):
    with uow:
        account = uow.accounts.get(account_id)
        command = queue_top_up(uow, account, fen, key=key, actor="clerk", now=at, policy=POLICY)
        uow.commit()
    return command.id


def run(engine, platform, at=T0):
    return dispatch(lambda: UnitOfWork(engine), platform, CODEC, policy=POLICY, now=at)


def report(uow, record, at=T0):
    item = ReportItem(
        record.ctrl_id,
        record.target_comm_no,
        CtrlState(record.ctrl_state),
        record.return_data,
        "",
        {"return_data": record.return_data, "ctrl_feedback_msg": ""},
    )
    return receive_report(uow, CODEC, "1001", item, policy=POLICY, now=at)


def command(uow, command_id):
    with uow:
        return CommandStore(uow.session).get(command_id)


def balances(uow, account_id):
    with uow:
        found = uow.ledger.balances_of(account_id)
    return (
        found[AccountCode.prepaid(str(account_id))],
        found[AccountCode.meter_credit(str(account_id))],
    )


def test_a_top_up_confirmed_by_the_meter_posts_its_hold(uow, engine, platform, account):
    first = top_up(uow, account, 50_000, "t1")
    prepaid, _ = balances(uow, account)
    assert (prepaid.posted, prepaid.available) == (100_000, 50_000)
    assert run(engine, platform).sent == 1
    assert platform.data_of(1) == {"charge_value": 500, "total_value": 500, "charge_times": 1}
    assert report(uow, platform.finish(1, 3, APPLIED)) == ""
    prepaid, meter_credit = balances(uow, account)
    assert (prepaid.posted, prepaid.pending, meter_credit.posted) == (50_000, 0, 50_000)
    assert command(uow, first).status == CommandStatus.DONE
    report(uow, platform.records[1])  # the platform reports it again
    report(uow, platform.records[1].model_copy(update={"ctrl_state": 1}))  # and an old state
    assert balances(uow, account)[1].posted == 50_000
    second = top_up(uow, account, 20_000, "t2")
    run(engine, platform)
    assert platform.data_of(2) == {"charge_value": 200, "total_value": 700, "charge_times": 2}
    assert command(uow, second).status == CommandStatus.SENT


def test_a_lost_add_reply_is_found_by_define_no_not_sent_twice(uow, engine, platform, account):
    first = top_up(uow, account, 30_000, "t1")
    platform.lose_next_reply = True
    outcome = run(engine, platform)
    assert outcome.sent == 0
    assert command(uow, first).status == CommandStatus.SENDING
    report(uow, platform.finish(1, 3, APPLIED))  # the report beats us to the ctrl_id: kept
    later = run(engine, platform, T0 + POLICY.lookup_after + timedelta(seconds=1))
    assert (later.found_again, platform.adds) == (1, 1)
    assert command(uow, first).status == CommandStatus.DONE
    assert balances(uow, account)[1].posted == 30_000


def test_a_report_that_beat_the_add_reply_is_applied_when_the_reply_is_recorded(
    uow, engine, platform, account, catalog
):
    second = make_account(uow, catalog, number="A2", comm_no="22345678901234", mode=METER_MODE)
    record_payment(
        uow,
        account_id=second,
        amount_fen=5_000,
        channel="counter",
        idempotency_key="pay-2",
        actor="clerk",
        at=T0,
    )
    first, other = top_up(uow, account, 30_000, "t1"), top_up(uow, second, 5_000, "t2")
    early = command(uow, first).define_no
    kept = []  # the first's report comes while AddMulti is still answering: kept
    platform.before_reply = lambda record: (
        kept.append(report(uow, platform.finish(record.ctrl_id, 3, APPLIED)))
        if record.ctrl_define_no == early
        else None
    )
    assert run(engine, platform).sent == 2
    assert kept == ["kept until the command is known"]
    done = command(uow, first)
    assert (done.status, done.outcome) == (CommandStatus.DONE, "applied")
    assert balances(uow, account)[1].posted == 30_000
    assert command(uow, other).status == CommandStatus.SENT
    assert balances(uow, second)[1].posted == 0


def test_an_add_that_never_arrived_is_sent_again_with_the_same_define_no(
    uow, engine, platform, account
):
    first = top_up(uow, account, 30_000, "t1")
    platform.refuse_next = True
    run(engine, platform)
    queued = command(uow, first)
    assert queued.status == CommandStatus.QUEUED
    run(engine, platform, queued.next_attempt_at)
    assert platform.records[1].ctrl_define_no == queued.define_no
    assert command(uow, first).status == CommandStatus.SENT


@pytest.mark.parametrize("ending", [(6, None), (4, None), (3, "not json"), (99, None)])
def test_an_unknown_ending_is_settled_by_the_meters_counters(
    uow, engine, platform, account, ending
):
    first = top_up(uow, account, 40_000, "t1")
    run(engine, platform)
    report(uow, platform.finish(1, *ending))
    assert command(uow, first).status == CommandStatus.UNKNOWN
    second = top_up(uow, account, 10_000, "t2")
    run(engine, platform)  # only the settling read may go
    assert [r.ctrl_type for r in platform.records.values()] == [
        "iotmeterv1.prepay.remotecharge",
        "iotmeterv1.prepay.getchargestate",
    ]
    counters = {
        "card_charge_times": 0,
        "card_charge_value": 0,
        "card_total_value": 0,
        "remote_charge_times": 1,
        "remote_charge_value": 400,
        "remote_total_value": 400,
    }
    report(uow, platform.finish(2, 3, counters))
    assert command(uow, first).outcome == "applied"
    assert balances(uow, account)[1].posted == 40_000
    run(engine, platform)
    assert platform.data_of(3) == {"charge_value": 100, "total_value": 500, "charge_times": 2}
    assert command(uow, second).status == CommandStatus.SENT


def test_a_settled_top_up_that_never_reached_the_meter_is_voided(uow, engine, platform, account):
    first = top_up(uow, account, 40_000, "t1")
    run(engine, platform)
    report(uow, platform.finish(1, 6))
    run(engine, platform)
    counters = {
        "card_charge_times": 0,
        "card_charge_value": 0,
        "card_total_value": 0,
        "remote_charge_times": 0,
        "remote_charge_value": 0,
        "remote_total_value": 0,
    }
    report(uow, platform.finish(2, 3, counters))
    assert command(uow, first).outcome == "not_applied"
    prepaid, meter_credit = balances(uow, account)
    assert (prepaid.available, meter_credit.posted) == (100_000, 0)
    with uow:
        kinds = [k for (k,) in uow.session.execute(sa.text("SELECT kind FROM billing_exception"))]
    assert kinds == ["top_up_not_applied"]


def test_a_refused_top_up_voids_its_hold_and_asks_a_clerk(uow, engine, platform, account):
    first = top_up(uow, account, 40_000, "t1")
    run(engine, platform)
    report(uow, platform.finish(1, 3, REFUSED))
    assert command(uow, first).status == CommandStatus.REFUSED
    assert balances(uow, account)[0].available == 100_000


def test_a_waiting_top_up_can_be_cancelled_and_its_hold_voided(uow, engine, platform, account):
    first = top_up(uow, account, 40_000, "t1")
    run(engine, platform)
    cancel_command(uow, platform, first, actor="clerk", now=T0)
    assert command(uow, first).status == CommandStatus.CANCELLED
    assert balances(uow, account)[0].available == 100_000


def test_silent_commands_are_polled(uow, engine, platform, account):
    first = top_up(uow, account, 40_000, "t1")
    run(engine, platform)
    platform.finish(1, 3, APPLIED)  # the report never comes
    later = T0 + POLICY.poll_after + timedelta(minutes=1)
    assert poll_silent(lambda: UnitOfWork(engine), platform, CODEC, policy=POLICY, now=later) == 1
    assert command(uow, first).status == CommandStatus.DONE


def test_repeated_failures_end_with_a_person_who_can_retry(uow, engine, platform, account):
    first = top_up(uow, account, 40_000, "t1")
    at = T0
    for _ in range(POLICY.max_attempts):
        platform.refuse_next = True
        run(engine, platform, at)
        at = command(uow, first).next_attempt_at
    assert command(uow, first).status == CommandStatus.ATTENTION
    retry_command(uow, platform, first, actor="clerk", now=at)
    run(engine, platform, at)
    assert command(uow, first).status == CommandStatus.SENT


def test_no_top_up_goes_to_an_opened_meter_before_its_counters_are_read(uow, engine, catalog):
    """The baseline read after an opening blocks the meter: a top-up sent while it was
    being retried would carry counters that leave out the opening (and be mis-settled)."""
    platform = ScriptedPlatform()
    customer = create_customer(uow, name="new household", actor="clerk")
    opened = open_with_payment(
        uow,
        NewAccount(
            customer_id=customer.id,
            number="N1",
            company_no="1001",
            billing_mode=BillingMode.METER,
            tariff_id="beijing-residential",
            opened_on=T0.date(),
            meter_comm_no=METER,
            opening_register=Volume.of_litres(0),
            bound_at=T0,
            persons=3,
        ),
        initial_fen=10_000,
        channel="counter",
        idempotency_key="open-1",
        actor="clerk",
        now=T0,
        catalog=catalog,
        policy=POLICY,
    )
    account_id = opened.account.id
    run(engine, platform)
    report(uow, platform.finish(1, 3, json.dumps({"success": 0, "remain": 100.0})))
    record_payment(
        uow,
        account_id=account_id,
        amount_fen=20_000,
        channel="counter",
        idempotency_key="pay-2",
        actor="clerk",
        at=T0,
    )
    top = top_up(uow, account_id, 20_000, "t1")
    run(engine, platform)
    assert platform.records[2].ctrl_type == "iotmeterv1.prepay.getchargestate"
    report(uow, platform.finish(2, 3, "not counters"))  # unreadable: read again later
    for minutes in (1, 60):
        run(engine, platform, at=T0 + timedelta(minutes=minutes))
    kinds = [r.ctrl_type.rsplit(".", 1)[1] for r in platform.records.values()]
    assert kinds == ["openaccount", "getchargestate", "getchargestate"]  # never the top-up
    assert command(uow, top).status == CommandStatus.QUEUED
    counters = {
        "card_charge_times": 0,
        "card_charge_value": 0,
        "card_total_value": 0,
        "remote_charge_times": 1,  # the opening counts as the meter's first remote top-up
        "remote_charge_value": 100,
        "remote_total_value": 100,
    }
    report(uow, platform.finish(3, 3, counters), at=T0 + timedelta(minutes=60))
    run(engine, platform, at=T0 + timedelta(minutes=61))
    assert platform.data_of(4) == {"charge_value": 200, "total_value": 300, "charge_times": 2}


def test_a_top_up_waiting_behind_one_in_flight_is_not_due_until_that_one_ends(
    uow, engine, platform, account
):
    """The dispatcher's one read (`anything_to_send`) agrees with `dispatchable`: a meter
    whose prepay command is in flight has nothing to send, and a run claims nothing."""
    top_up(uow, account, 10_000, "t1")
    second = top_up(uow, account, 20_000, "t2")
    assert run(engine, platform).sent == 1
    with uow:
        assert not CommandStore(uow.session).anything_to_send(T0, T0 - POLICY.lookup_after)
    assert run(engine, platform).claimed == 0
    assert command(uow, second).status == CommandStatus.QUEUED
    report(uow, platform.finish(1, 3, APPLIED))
    with uow:
        assert CommandStore(uow.session).anything_to_send(T0, T0 - POLICY.lookup_after)
    assert run(engine, platform).sent == 1
    assert command(uow, second).status == CommandStatus.SENT
