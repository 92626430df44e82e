"""Closing an account (service.closing) on a fake unit of work: the meter unbound at its
final register, what the account still holds paid back, the valve closed; and what stops
a closing before anything is written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.domain.accounts import AccountError
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountCode, HoldAction
from gasbill.domain.money import Volume
from gasbill.service import ledger
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.closing import close_account
from gasbill.service.commands.followups import resolve_hold_of
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from tests.fakes import FakeAccount, FakeBinding, FakeMeter, FakeStore, FakeUnitOfWork

AT = datetime(2025, 5, 1, 9, tzinfo=UTC)
POLICY = CommandPolicy()
PREPAID, CREDIT = AccountCode.prepaid("7"), AccountCode.meter_credit("7")


def world(mode: str = "system", paid: int = 3_000) -> FakeStore:
    store = FakeStore(
        accounts={7: FakeAccount(7, billing_mode=mode)},
        meters={3: FakeMeter(3)},
        bindings=[FakeBinding(7, 3, AT - timedelta(days=90), opening_litres=100_000)],
    )
    store.ledger.set_overdraft_allowance(PREPAID, 0)
    if paid:
        ledger.record_payment(
            FakeUnitOfWork(store),
            account_id=7,
            amount_fen=paid,
            channel="counter",
            idempotency_key="p1",
            actor="clerk1",
            at=AT - timedelta(days=1),
        )
    return store


def close(store: FakeStore, final: Volume | None = None, account_id: int = 7):
    uow = FakeUnitOfWork(store)
    closure = close_account(
        uow,
        account_id,
        final_register=final,
        channel="counter",
        idempotency_key="c1",
        actor="clerk1",
        now=AT,
        policy=POLICY,
    )
    return closure, uow


def test_closing_unbinds_the_meter_pays_back_prepaid_closes_the_valve_and_is_audited():
    store = world()
    closure, uow = close(store, Volume.of_litres(250_500))

    assert uow.committed
    assert store.accounts[7].status == "closed"
    binding = store.bindings[0]
    assert (binding.unbound_at, binding.final_litres) == (AT, 250_500)
    assert (closure.final_register, closure.refunded_fen) == ("250.500", 3_000)
    assert store.ledger.balance(PREPAID).available == 0
    valve = store.commands[closure.valve_command_id or 0]
    assert (valve.ctrl_type, valve.meter_id, valve.account_id) == (CtrlType.SET_VALVE_OFF, 3, 7)
    (entry,) = [e for e in store.audit if e.action == "account.close"]
    assert entry.after["refunds"] == [t.id for t in closure.refunds]


def test_without_a_final_register_the_latest_frozen_reading_is_the_final_one():
    store = world(paid=0)
    store.frozen_registers[("1001", "12345678901", AT - timedelta(days=2))] = 180_000
    store.frozen_registers[("1001", "12345678901", AT - timedelta(days=1))] = 181_250

    closure, _ = close(store)

    assert closure.final_register == "181.250"
    assert store.bindings[0].final_litres == 181_250
    assert closure.refunds == ()


def test_a_meter_mode_account_is_also_paid_back_what_its_meter_credit_holds():
    store = world("meter", paid=0)
    store.ledger.set_overdraft_allowance(CREDIT, 0)
    ledger.record_payment(
        FakeUnitOfWork(store),
        account_id=7,
        amount_fen=2_000,
        channel="counter",
        idempotency_key="p2",
        actor="clerk1",
        at=AT,
    )
    # 1,200 fen moved to the meter and confirmed (the hold posted)
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        top_up = queue_top_up(uow, account, 1_200, key="t", actor="c", now=AT, policy=POLICY)
        resolve_hold_of(uow, top_up, HoldAction.POST, AT)
        top_up.status = "done"
        uow.commit()

    closure, _ = close(store, Volume.of_litres(120_000))

    assert closure.refunded_fen == 2_000
    sources = sorted(t.debit_account.kind for t in closure.refunds)
    assert sources == ["meter_credit", "prepaid"]


def test_a_final_register_below_the_meters_opening_is_refused_and_nothing_is_kept():
    store = world()
    with pytest.raises(AccountError, match="below the opening"):
        close(store, Volume.of_litres(99_999))
    assert store.accounts[7].status == "active" and store.bindings[0].unbound_at is None
    assert store.commands == {}


def test_a_top_up_still_in_flight_stops_the_closing():
    store = world("meter")
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        queue_top_up(uow, account, 1_000, key="t", actor="c", now=AT, policy=POLICY)
        uow.commit()

    with pytest.raises(Conflict, match="still queued"):
        close(store, Volume.of_litres(120_000))
    assert store.accounts[7].status == "active"


def test_a_meter_being_settled_stops_the_closing():
    store = world("meter")
    uow = FakeUnitOfWork(store)
    with uow:
        prepay = uow.commands.prepay_state(3)
        prepay.blocked_by = 41
        uow.commands.save_prepay(prepay)
        uow.commit()

    with pytest.raises(Conflict, match="#41 is being settled"):
        close(store, Volume.of_litres(120_000))


def test_a_closed_or_unknown_account_cannot_be_closed():
    store = world()
    close(store, Volume.of_litres(120_000))
    with pytest.raises(Conflict, match="already closed"):
        close(store, Volume.of_litres(120_000))
    with pytest.raises(NotFound):
        close(store, account_id=99)
