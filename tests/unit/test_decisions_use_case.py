"""The decisions' use case (service.decisions: decide_account, sweep) on fakes, without a
database: warnings once per crossing, the valve closed after the grace period and outside
quiet hours, the meter's reported balance in meter mode, the forecast's daily use and price.

What only a database shows (the facts loaded in batches and locked, the sweep's
transactions against concurrent writers) is in tests/integration/test_decisions_flow.py.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from gasbill.config import DecisionSettings
from gasbill.domain.commands import CtrlType
from gasbill.domain.decisions import LowBalanceWarning, ValveOff
from gasbill.domain.ledger import AccountCode, TransferKind
from gasbill.domain.money import Money, Price, Volume
from gasbill.service.accounts import NotFound
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.decisions import decide_account, recent_use, sweep
from gasbill.service.decisions.balance import judge_balance
from gasbill.service.transfers import new_transfer
from tests.fakes import (
    FakeAccount,
    FakeBinding,
    FakeChargeDay,
    FakeMeter,
    FakeStore,
    FakeUnitOfWork,
)

A, M = 7, 70
# 10:00 in Beijing: outside the default quiet hours (18:00 to 08:00)
NOW = datetime(2025, 3, 3, 2, tzinfo=UTC)
SETTINGS = DecisionSettings()
POLICY = CommandPolicy()


def world(*, mode: str = "system", meter: bool = True) -> FakeStore:
    store = FakeStore()
    store.accounts[A] = FakeAccount(A, billing_mode=mode)
    if meter:
        store.meters[M] = FakeMeter(M, comm_no="88600000000007")
        store.bindings.append(FakeBinding(A, M, bound_at=NOW - timedelta(days=30)))
    return store


def move(store: FakeStore, fen: int, key: str) -> None:
    """Money into the account's prepaid balance (a payment), or out of it if negative."""
    prepaid, cash = AccountCode.prepaid(str(A)), AccountCode.cash("counter")
    revenue = AccountCode.revenue()
    store.ledger.apply(
        new_transfer(
            key=key,
            debit=cash if fen > 0 else prepaid,
            credit=prepaid if fen > 0 else revenue,
            amount=abs(fen),
            kind=TransferKind.PAYMENT if fen > 0 else TransferKind.CHARGE,
            now=NOW - timedelta(days=1),
            at=None,
            reason="test",
            actor="test",
        ),
        enforce_limits=False,
    )


def decide(store: FakeStore, now: datetime = NOW, account_id: int = A) -> list[object]:
    uow = FakeUnitOfWork(store)
    with uow:
        made = decide_account(
            uow,
            account_id,
            settings=SETTINGS,
            command_policy=POLICY,
            now=now,
            zone="Asia/Shanghai",
        )
        uow.commit()
    return list(made)


def warnings(store: FakeStore) -> list[tuple[str, str]]:
    return [(w.level, w.reason) for w in store.warnings.values()]


def test_a_low_balance_warns_once_per_crossing_and_rearms_after_recovery():
    store = world()
    move(store, 1500, "pay-1")  # 15 yuan: at or below the 20 yuan warning

    first = decide(store)
    again = decide(store, NOW + timedelta(hours=1))
    move(store, 5000, "pay-2")  # 65 yuan: past the threshold and its margin
    recovered = decide(store, NOW + timedelta(hours=2))
    move(store, -5000, "charge-1")  # back to 15 yuan
    crossed_again = decide(store, NOW + timedelta(hours=3))

    assert [type(d) for d in first] == [LowBalanceWarning]
    assert again == recovered == []
    assert [type(d) for d in crossed_again] == [LowBalanceWarning]
    assert warnings(store) == [("low", "by_amount"), ("low", "by_amount")]
    state = store.decision_states[A]
    assert (state.balance_fen, state.balance_source, state.decided_at) == (
        1500,
        "prepaid",
        NOW + timedelta(hours=3),
    )


def test_below_zero_says_it_once_for_both_levels():
    store = world()
    move(store, -100, "charge-1")

    made = decide(store)

    assert warnings(store) == [("below_zero", "below_zero")]
    assert len(made) == 1
    assert store.decision_states[A].low_fired_by == "by_amount"  # no second notice


def test_the_valve_closes_after_the_grace_period_and_the_command_is_queued_and_audited():
    store = world()
    move(store, -100, "charge-1")  # below the cut-off (0)

    decide(store)
    within_grace = decide(store, NOW + timedelta(hours=23))
    after_grace = decide(store, NOW + timedelta(hours=25))

    assert not any(isinstance(d, ValveOff) for d in within_grace)
    assert [type(d) for d in after_grace] == [ValveOff]
    (command,) = store.commands.values()
    assert (command.ctrl_type, command.account_id, command.actor) == (
        str(CtrlType.SET_VALVE_OFF),
        A,
        "decisions",
    )
    state = store.decision_states[A]
    assert state.valve_command_id == command.id
    assert [e.action for e in store.audit] == ["valve.off"]


def test_no_valve_is_closed_in_quiet_hours():
    store = world()
    move(store, -100, "charge-1")
    decide(store)

    at_night = decide(store, NOW + timedelta(hours=25 + 9))  # 20:00 in Beijing

    assert not any(isinstance(d, ValveOff) for d in at_night)
    assert store.commands == {}


def test_meter_mode_goes_by_the_meters_reported_balance_while_it_is_fresh():
    store = world(mode="meter")
    store.remains[("1001", "88600000000007")] = [
        (NOW - timedelta(days=40), Money("500")),  # before the binding: not this account's
        (NOW - timedelta(hours=3), Money("12.345")),
    ]

    decide(store)

    state = store.decision_states[A]
    assert (state.balance_fen, state.balance_source) == (1235, "meter_reading")
    assert warnings(store) == [("low", "by_amount")]
    assert store.commands == {}  # meter mode: the meter closes its own valve


def test_judge_balance_reads_the_same_reported_balance_as_the_decision():
    store = world(mode="meter")
    store.remains[("1001", "88600000000007")] = [(NOW - timedelta(hours=3), Money("12.345"))]
    uow = FakeUnitOfWork(store)
    with uow:
        account, meter = store.accounts[A], store.meters[M]
        judged = judge_balance(uow, account, meter, settings=SETTINGS, now=NOW)
    assert (judged.balance, judged.source) == (Money("12.345"), "meter_reading")


def test_recent_use_is_the_last_days_billed_and_the_highest_tier_of_the_last_charge():
    store = world()
    for offset in range(20):
        day = date(2025, 2, 1) + timedelta(days=offset)
        lines = json.dumps([[0, 1, 2610, 1000, 2610000], [0, 2, 3300, 200, 660000]])
        store.charge_days[(A, "c", day)] = FakeChargeDay(
            A, "c", day, litres=1000 + offset, lines=lines if offset < 19 else "[]"
        )
    uow = FakeUnitOfWork(store)
    with uow:
        daily, price = recent_use(uow, A)
    assert daily == [Volume.of_litres(1000 + offset) for offset in range(6, 20)]
    assert price == Price.of_milli(3300)


def test_a_closed_account_is_not_decided_and_an_unknown_one_is_not_found():
    store = world()
    store.accounts[A].status = "closed"
    move(store, -100, "charge-1")

    assert decide(store) == []
    assert store.warnings == {}
    with pytest.raises(NotFound):
        decide(store, account_id=99)


def test_the_sweep_decides_every_active_account_in_pages_and_commits():
    store = world()
    for account_id in (8, 9, 10):
        store.accounts[account_id] = FakeAccount(account_id, number=f"A{account_id}")
    store.accounts[9].status = "closed"
    move(store, 1000, "pay-1")

    outcome = sweep(
        lambda: FakeUnitOfWork(store),
        settings=SETTINGS,
        command_policy=POLICY,
        now=NOW,
        zone="Asia/Shanghai",
        batch=2,
    )

    assert (outcome.accounts, outcome.batches) == (3, 2)
    assert sorted(w.account_id for w in store.warnings.values()) == [7, 8, 10]  # all at <= 20
    assert sorted(store.decision_states) == [7, 8, 10]
