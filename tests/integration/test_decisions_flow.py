"""Warnings and valves against a real database: once per crossing, never in quiet times."""

from __future__ import annotations

import importlib
import os
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlmodel import col, select

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.tables.accounts import Account
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.tables.decisions import BalanceWarning, DecisionState
from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.config import DecisionSettings
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType, SetRemain
from gasbill.domain.decisions import LowBalanceWarning, ValveOff, ValveOn
from gasbill.domain.money import Money
from gasbill.domain.outbox import CommandStatus
from gasbill.service.billing import bill_accounts
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from gasbill.service.decisions import (
    DisplaySync,
    decide_account,
    on_valve_command_ended,
    sweep,
)
from gasbill.service.decisions.account import DecisionRun
from gasbill.service.decisions.outcomes import SweepOutcome
from gasbill.service.decisions.sweep import decide_batch
from gasbill.service.ledger import record_payment
from gasbill.service.notify import DeliveryFailed, DeliveryPolicy, deliver_pending
from tests.factories import ZONE, ZONE_NAME
from tests.integration.billing_helpers import (
    COMPANY,
    daily_series,
    make_account,
    store_readings,
)

METER = "12345678901234"
CODEC = Codec(ZONE)
POLICY = CommandPolicy()
HOLIDAY = date(2025, 1, 8)  # a Wednesday
SETTINGS = DecisionSettings(
    warning_days=3,
    rearm_margin_fen=500,
    grace_hours=24,
    quiet_hours_start=time(18),
    quiet_hours_end=time(8),
    holidays=(HOLIDAY,),
)


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=ZONE).astimezone(UTC)


def pay(uow: UnitOfWork, account: int, fen: int, key: str) -> None:
    record_payment(
        uow,
        account_id=account,
        amount_fen=fen,
        channel="counter",
        idempotency_key=key,
        actor="clerk",
    )


def use(uow, catalog, account: int, first: date, litres: list[int], start: int = 0) -> int:
    """Frozen readings from `first`, billed; returns the register at the end."""
    series = daily_series(first, litres, start)
    store_readings(uow, METER, series)
    bill_accounts(uow, [account], catalog=catalog, now=series[-1][0])
    return series[-1][1]


def decide(uow: UnitOfWork, account: int, now: datetime, settings=SETTINGS) -> list:
    with uow:
        decisions = decide_account(
            uow,
            account,
            settings=settings,
            command_policy=POLICY,
            now=now,
            zone=ZONE_NAME,
        )
        uow.commit()
    return decisions


def state(uow: UnitOfWork, account: int) -> DecisionState:
    with uow:
        row = uow.session.get(DecisionState, account)
        assert row is not None
        return row


def warnings(uow: UnitOfWork, account: int | None = None) -> list[BalanceWarning]:
    with uow:
        query = select(BalanceWarning).order_by(col(BalanceWarning.id))
        if account is not None:
            query = query.where(BalanceWarning.account_id == account)
        return list(uow.session.exec(query).all())


def commands(uow: UnitOfWork, ctrl_type: CtrlType) -> list[Command]:
    with uow:
        return list(
            uow.session.exec(
                select(Command).where(Command.ctrl_type == str(ctrl_type)).order_by(col(Command.id))
            ).all()
        )


def end_command(uow: UnitOfWork, command_id: int, status: CommandStatus, now: datetime) -> None:
    """What results.py does at a command's ending, then the hook it calls."""
    with uow:
        command = CommandStore(uow.session).get(command_id, lock=True)
        assert command is not None
        command.status, command.finished_at = status, now
        CommandStore(uow.session).save(command)
        on_valve_command_ended(uow, command, now)
        uow.commit()


def run_sweep(engine, now: datetime, settings=SETTINGS):
    return sweep(
        lambda: UnitOfWork(engine),
        settings=settings,
        command_policy=POLICY,
        now=now,
        zone=ZONE_NAME,
        batch=2,
    )


# -- warnings ---------------------------------------------------------------------------


def test_a_warning_fires_once_per_crossing_and_rearms_after_recovery(uow, engine, catalog):
    account = make_account(uow, catalog)
    pay(uow, account, 5000, "p1")
    register = use(uow, catalog, account, date(2025, 1, 1), [1000] * 10)  # 26.10 yuan
    assert decide(uow, account, local(2025, 1, 11, 10)) == []  # 23.90 left, ~9 days
    register = use(uow, catalog, account, date(2025, 1, 11), [1000] * 3, register)
    now = local(2025, 1, 14, 10)
    decisions = decide(uow, account, now)  # 16.07 left
    assert [type(d) for d in decisions] == [LowBalanceWarning]
    outcome = run_sweep(engine, now + timedelta(hours=1))
    run_sweep(engine, now + timedelta(hours=2))
    assert outcome.accounts == 1 and outcome.warnings == 0 and outcome.failures == []
    (first,) = warnings(uow, account)
    assert (first.level, first.reason, first.balance_fen) == ("low", "by_amount", 1607)
    assert first.days_left == "6.1"  # 16.07 / 2.61 a day
    assert first.delivered_at is None and first.next_attempt_at == now

    pay(uow, account, 3000, "p2")  # 46.07: above 20 + 5, re-armed
    assert decide(uow, account, now + timedelta(hours=3)) == []
    assert state(uow, account).low_fired_by is None
    use(uow, catalog, account, date(2025, 1, 14), [1000] * 10, register)  # 19.97
    decide(uow, account, local(2025, 1, 24, 10))
    decide(uow, account, local(2025, 1, 24, 11))
    assert [w.balance_fen for w in warnings(uow, account)] == [1607, 1997]


def test_days_of_gas_left_warn_before_the_amount_does(uow, catalog):
    account = make_account(uow, catalog)
    with uow:
        row = uow.accounts.get(account)
        assert row is not None
        row.warning_fen = 0
        uow.session.add(row)
        uow.commit()
    pay(uow, account, 8000, "p1")
    use(uow, catalog, account, date(2025, 1, 1), [3000] * 8)  # 7.83 a day; 62.64 used
    (decided,) = decide(uow, account, local(2025, 1, 9, 10))  # 17.36 left: 2.2 days
    (warning,) = warnings(uow, account)
    assert decided.reason == "by_days" and str(decided.days_left) == "2.2"
    assert (warning.reason, warning.days_left) == ("by_days", "2.2")


# -- the valve -----------------------------------------------------------------------------


def test_the_valve_closes_after_grace_outside_quiet_times_and_reopens_after_payment(uow, catalog):
    account = make_account(uow, catalog)
    pay(uow, account, 1000, "p1")
    use(uow, catalog, account, date(2025, 1, 1), [1000] * 5)  # 13.05 used: -3.05
    first = local(2025, 1, 6, 10)  # Monday
    assert [type(d) for d in decide(uow, account, first)] == [LowBalanceWarning]
    assert state(uow, account).below_cutoff_since == first
    assert decide(uow, account, local(2025, 1, 7, 9)) == []  # within the 24 h grace
    assert decide(uow, account, local(2025, 1, 7, 20)) == []  # quiet hours
    assert decide(uow, account, local(2025, 1, 8, 3)) == []  # quiet hours past midnight
    assert decide(uow, account, local(2025, 1, 8, 10)) == []  # a holiday
    assert commands(uow, CtrlType.SET_VALVE_OFF) == []

    closing = local(2025, 1, 9, 10)
    (off,) = decide(uow, account, closing)
    assert isinstance(off, ValveOff)
    (command,) = commands(uow, CtrlType.SET_VALVE_OFF)
    assert command.account_id == account and command.status == CommandStatus.QUEUED
    assert "at or below cut-off 0.00" in command.reason and "-3.05" in command.reason
    row = state(uow, account)
    assert (row.valve_position, row.closed_by, row.valve_command_id) == (
        "close_pending",
        "closed_by_us",
        command.id,
    )
    assert decide(uow, account, closing + timedelta(hours=1)) == []  # never twice
    assert command.id is not None
    end_command(uow, command.id, CommandStatus.DONE, closing + timedelta(hours=5))
    row = state(uow, account)
    assert (row.valve_position, row.closed_by, row.valve_command_id) == (
        "closed",
        "closed_by_us",
        None,
    )

    pay(uow, account, 2000, "p2")  # 16.95
    reopening = local(2025, 1, 9, 22)  # quiet hours do not hold a reopening back
    (on,) = decide(uow, account, reopening)
    assert isinstance(on, ValveOn)
    (opener,) = commands(uow, CtrlType.SET_VALVE_ON)
    assert opener.status == CommandStatus.QUEUED and "reopen threshold" in opener.reason
    assert state(uow, account).valve_position == "open_pending"
    assert opener.id is not None
    end_command(uow, opener.id, CommandStatus.DONE, reopening + timedelta(hours=2))
    row = state(uow, account)
    assert (row.valve_position, row.closed_by, row.below_cutoff_since) == ("open", None, None)
    assert decide(uow, account, reopening + timedelta(days=1)) == []


def close_queued(uow, catalog) -> tuple[int, int]:
    account = make_account(uow, catalog)
    use(uow, catalog, account, date(2025, 1, 1), [1000] * 2)  # never paid: -5.22
    decide(uow, account, local(2025, 1, 6, 10))
    decide(uow, account, local(2025, 1, 7, 11))
    (command,) = commands(uow, CtrlType.SET_VALVE_OFF)
    assert command.id is not None
    return account, command.id


def test_a_payment_before_the_close_goes_out_cancels_it(uow, catalog):
    account, _ = close_queued(uow, catalog)
    pay(uow, account, 1000, "p1")
    assert decide(uow, account, local(2025, 1, 7, 12)) == []
    (command,) = commands(uow, CtrlType.SET_VALVE_OFF)
    assert command.status == CommandStatus.CANCELLED
    row = state(uow, account)
    assert (row.valve_position, row.closed_by, row.valve_command_id) == ("open", None, None)
    assert commands(uow, CtrlType.SET_VALVE_ON) == []


def test_a_failed_close_stays_pending_while_retried_and_a_cancel_restarts_the_grace(uow, catalog):
    account, close = close_queued(uow, catalog)
    retried = local(2025, 1, 7, 13)
    end_command(uow, close, CommandStatus.QUEUED, retried)  # the outbox sends it again
    assert state(uow, account).valve_position == "close_pending"
    assert decide(uow, account, local(2025, 1, 7, 14)) == []
    cancelled = local(2025, 1, 7, 15)
    end_command(uow, close, CommandStatus.CANCELLED, cancelled)  # a person cancels it
    row = state(uow, account)
    assert (row.valve_position, row.below_cutoff_since) == ("open", cancelled)
    assert decide(uow, account, local(2025, 1, 8, 14)) == []  # the holiday
    assert decide(uow, account, local(2025, 1, 9, 14))  # a new grace period has passed
    assert len(commands(uow, CtrlType.SET_VALVE_OFF)) == 2


def test_setremain_keeps_the_display_in_step_with_one_command_waiting(uow, catalog):
    settings = SETTINGS.model_copy(update={"sync_display_with_setremain": True})
    account = make_account(uow, catalog)
    pay(uow, account, 5000, "p1")
    decisions = decide(uow, account, local(2025, 1, 1, 10), settings)
    assert next(d for d in decisions if isinstance(d, DisplaySync)).replaced is False
    assert decide(uow, account, local(2025, 1, 1, 11), settings) == []  # nothing changed
    use(uow, catalog, account, date(2025, 1, 1), [1000] * 2)
    (sync,) = decide(uow, account, local(2025, 1, 3, 10), settings)
    assert isinstance(sync, DisplaySync) and sync.replaced
    (command,) = commands(uow, CtrlType.SET_REMAIN)
    assert command.intent == SetRemain(Money(Decimal("44.78")))
    assert command.id is not None
    with uow:  # the dispatcher sends it: the next change queues a new one
        sent = CommandStore(uow.session).get(command.id)
        assert sent is not None
        sent.status, sent.ctrl_id = CommandStatus.SENT, 7
        uow.session.add(sent)
        uow.commit()
    pay(uow, account, 100, "p2")
    decide(uow, account, local(2025, 1, 3, 11), settings)
    assert [c.status for c in commands(uow, CtrlType.SET_REMAIN)] == ["sent", "queued"]


# -- meter mode -------------------------------------------------------------------------------


def reading(uow: UnitOfWork, at: datetime, remain_milli: int) -> None:
    with uow:
        uow.session.add(
            MeterReading(
                company_no=COMPANY,
                meter_comm_no=METER,
                data_type=2,
                acquisition_time=at,
                data_guid=os.urandom(16),
                remain_money=remain_milli,
            )
        )
        uow.commit()


def test_meter_mode_goes_by_the_reported_balance_then_the_ledger_when_stale(uow, catalog):
    account = make_account(uow, catalog, mode=BillingMode.METER)
    now = local(2025, 1, 10, 10)
    reading(uow, now - timedelta(hours=3), 15_500)  # the meter holds 15.50
    assert [w.reason for w in decide(uow, account, now)] == ["by_amount"]
    row = state(uow, account)
    assert (row.balance_fen, row.balance_source) == (1550, "meter_reading")

    pay(uow, account, 3000, "p1")
    with uow:  # a top-up in flight counts: the meter has not got it yet
        found = uow.accounts.get(account)
        assert found is not None
        queue_top_up(uow, found, 3000, key="t1", actor="clerk", now=now, policy=POLICY)
        uow.commit()
    assert decide(uow, account, now + timedelta(hours=1)) == []
    assert state(uow, account).balance_fen == 4550
    assert state(uow, account).low_fired_by is None  # re-armed above 20 + 5

    later = now + timedelta(hours=50)  # no reading for 48 h: the ledger's meter_credit
    assert decide(uow, account, later) == []
    row = state(uow, account)
    assert (row.balance_fen, row.balance_source) == (3000, "meter_credit")
    reading(uow, later - timedelta(hours=1), -12_000)  # a fresh report: -12.00 + 30.00
    assert [w.balance.fen for w in decide(uow, account, later)] == [1800]


def test_the_sweep_skips_closed_accounts_and_reports_failures(uow, engine, catalog):
    account = make_account(uow, catalog)
    other = make_account(uow, catalog, number="A2", comm_no="12345678901235")
    with uow:
        row = uow.session.get(Account, other)
        assert row is not None
        row.status = "closed"
        uow.session.add(row)
        uow.commit()
    outcome = run_sweep(engine, local(2025, 1, 2, 10))
    assert (outcome.accounts, outcome.warnings, outcome.failures) == (1, 1, [])
    assert [w.account_id for w in warnings(uow)] == [account]


# -- delivery ---------------------------------------------------------------------------------


class FakeNotifier:
    def __init__(self, fail: dict[int, DeliveryFailed | Exception] | None = None) -> None:
        self.sent: list[int] = []
        self.fail = dict(fail or {})

    def deliver(self, warning) -> None:
        error = self.fail.pop(warning.id, None)
        if error is not None:
            raise error
        self.sent.append(warning.id)


def three_warnings(uow, catalog) -> list[int]:
    ids = []
    for n in range(3):
        account = make_account(uow, catalog, number=f"A{n}", comm_no=f"1234567890123{n}")
        decide(uow, account, local(2025, 1, 2, 10))
        ids += [w.id for w in warnings(uow, account)]
    return ids


def test_each_warning_is_delivered_once_and_a_failed_one_is_retried(uow, engine, catalog):
    first, second, third = three_warnings(uow, catalog)
    now = local(2025, 1, 2, 11)
    factory = lambda: UnitOfWork(engine)  # noqa: E731
    policy = DeliveryPolicy(max_attempts=3, retry_base=timedelta(minutes=1))
    notifier = FakeNotifier({second: DeliveryFailed("gateway down"), third: RuntimeError("bug")})
    outcome = deliver_pending(factory, notifier, now=now, batch=10, policy=policy)
    assert (outcome.claimed, outcome.delivered, outcome.retried) == (3, 1, 2)
    assert notifier.sent == [first]
    assert deliver_pending(factory, notifier, now=now, policy=policy).claimed == 0  # not yet due
    later = deliver_pending(factory, notifier, now=now + timedelta(minutes=2), policy=policy)
    assert later.delivered == 2 and notifier.sent == [first, second, third]
    assert deliver_pending(factory, notifier, now=now + timedelta(days=1)).claimed == 0
    rows = {w.id: w for w in warnings(uow)}
    assert rows[first].delivered_at == now and rows[first].attempts == 1
    assert rows[second].delivered_at == now + timedelta(minutes=2)
    assert (rows[second].attempts, rows[second].last_error) == (2, "gateway down")
    assert all(w.next_attempt_at is None for w in rows.values())


def test_a_final_failure_or_too_many_attempts_gives_up(uow, engine, catalog):
    first, second, _ = three_warnings(uow, catalog)
    now = local(2025, 1, 2, 11)
    factory = lambda: UnitOfWork(engine)  # noqa: E731
    policy = DeliveryPolicy(max_attempts=2, retry_base=timedelta(minutes=1))
    notifier = FakeNotifier(
        {first: DeliveryFailed("400 bad phone", retryable=False), second: DeliveryFailed("503")}
    )
    deliver_pending(factory, notifier, now=now, policy=policy)
    notifier.fail[second] = DeliveryFailed("503 again")
    outcome = deliver_pending(factory, notifier, now=now + timedelta(minutes=5), policy=policy)
    assert (outcome.claimed, outcome.given_up) == (1, 1)
    rows = {w.id: w for w in warnings(uow)}
    for gone in (first, second):
        assert rows[gone].delivered_at is None and rows[gone].next_attempt_at is None
        assert rows[gone].given_up_at is not None
    assert deliver_pending(factory, notifier, now=now + timedelta(days=1)).claimed == 0


def test_a_claim_whose_lease_ran_out_is_delivered_again_but_stamped_once(uow, engine, catalog):
    (first, *_) = three_warnings(uow, catalog)
    now = local(2025, 1, 2, 11)
    factory = lambda: UnitOfWork(engine)  # noqa: E731
    policy = DeliveryPolicy(lease=timedelta(minutes=5))

    class Slow(FakeNotifier):
        """While the first delivery hangs past its lease, another worker delivers too."""

        def deliver(self, warning) -> None:
            super().deliver(warning)
            if warning.id == first and self.sent.count(first) == 1:
                deliver_pending(factory, self, now=now + timedelta(minutes=6), policy=policy)

    notifier = Slow()
    deliver_pending(factory, notifier, now=now, policy=policy)
    assert notifier.sent.count(first) == 2  # at least once: the receiver drops the repeat
    (row,) = [w for w in warnings(uow) if w.id == first]
    assert row.delivered_at == now + timedelta(minutes=6)  # the first stamp stays
    assert row.attempts == 2


def test_a_failing_decision_rolls_back_its_batch_and_the_others_are_decided_alone(
    uow, engine, catalog, monkeypatch
):
    account_module = importlib.import_module("gasbill.service.decisions.account")
    sweep_module = importlib.import_module("gasbill.service.decisions.sweep")

    accounts = [
        make_account(uow, catalog, number=f"A{n}", comm_no=f"1234567890123{n}") for n in range(3)
    ]
    failing = accounts[1]
    real = account_module.decide_on

    def decide_on(uow, facts, run):
        if facts.account.id == failing:
            raise RuntimeError("boom")
        return real(uow, facts, run)

    monkeypatch.setattr(account_module, "decide_on", decide_on)
    monkeypatch.setattr(sweep_module, "decide_on", decide_on)
    outcome = run_sweep(engine, local(2025, 1, 2, 10))
    assert outcome.accounts == 2
    assert outcome.failures == [(failing, "RuntimeError: boom")]
    assert sorted({w.account_id for w in warnings(uow)}) == [accounts[0], accounts[2]]


def test_a_batch_of_many_cut_offs_decides_every_account(uow, engine, catalog, monkeypatch):
    # facts are loaded a window at a time, and again after each valve decision commits
    monkeypatch.setattr(
        importlib.import_module("gasbill.service.decisions.sweep"), "FACTS_WINDOW", 2
    )
    accounts = []
    for n in range(5):
        comm_no = f"1234567890123{n}"
        account = make_account(uow, catalog, number=f"A{n}", comm_no=comm_no)
        series = daily_series(date(2025, 1, 1), [1000] * 2)  # never paid: -5.22
        store_readings(uow, comm_no, series)
        bill_accounts(uow, [account], catalog=catalog, now=series[-1][0])
        accounts.append(account)
    outcome = SweepOutcome()
    for now in (local(2025, 1, 6, 10), local(2025, 1, 7, 11)):  # below cut-off, past grace
        with uow:
            decide_batch(uow, accounts, DecisionRun(SETTINGS, POLICY, now, ZONE_NAME), outcome)
    assert sorted(c.account_id for c in commands(uow, CtrlType.SET_VALVE_OFF)) == accounts
    assert sorted(w.account_id for w in warnings(uow)) == accounts
    assert outcome.accounts == 10 and outcome.failures == []
