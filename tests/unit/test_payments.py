"""Taking a payment (service.payments) on a fake unit of work: what it records, what it
loads on the meter (and what it pays first), what a replay returns, what it refuses.

The database's side (two clerks at once, the crash points) is in tests/integration and
tests/sim.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.domain.commands import CtrlType
from gasbill.domain.errors import AmountOutOfRange, IdempotencyConflict
from gasbill.domain.ledger import AccountCode, Transfer, TransferKind, TransferStatus
from gasbill.domain.money import MoneyLimits
from gasbill.service.accounts import NotFound
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.payments import take_payment, top_up_progress
from tests.fakes import FakeAccount, FakeBinding, FakeMeter, FakeStore, FakeUnitOfWork

AT = datetime(2025, 4, 1, 10, tzinfo=UTC)
POLICY = CommandPolicy()
PREPAID = AccountCode.prepaid("7")


def world(mode: str = "meter") -> FakeStore:
    store = FakeStore(
        accounts={7: FakeAccount(7, billing_mode=mode)},
        meters={3: FakeMeter(3)},
        bindings=[FakeBinding(7, 3, AT - timedelta(days=60))],
    )
    store.ledger.set_overdraft_allowance(PREPAID, 0)
    return store


def pay(store: FakeStore, fen: int = 5_000, key: str = "k1", **extra):
    uow = FakeUnitOfWork(store)
    outcome = take_payment(
        uow,
        account_id=7,
        amount_fen=fen,
        channel="counter",
        idempotency_key=key,
        actor="clerk1",
        now=AT,
        policy=POLICY,
        **extra,
    )
    return outcome, uow


def test_a_meter_mode_payment_holds_the_amount_for_the_meter_and_queues_its_top_up():
    store = world()
    outcome, uow = pay(store)

    assert uow.committed and outcome.new
    (top_up,) = store.commands.values()
    assert (top_up.id, top_up.ctrl_type, top_up.amount_fen) == (
        outcome.top_up_id,
        CtrlType.REMOTE_CHARGE,
        5_000,
    )
    assert (top_up.meter_id, top_up.account_id, top_up.status) == (3, 7, "queued")
    hold = store.ledger.transfer(top_up.hold_id or "")
    assert hold is not None and hold.status is TransferStatus.PENDING
    assert store.ledger.balance(PREPAID).available == 0  # all of it on its way to the meter
    (entry,) = store.audit
    assert (entry.action, entry.after["top_up"]) == ("ledger.payment", top_up.id)


def test_a_system_mode_payment_stays_in_prepaid_and_queues_nothing():
    store = world("system")
    outcome, _ = pay(store)

    assert outcome.top_up_id is None and store.commands == {}
    assert store.ledger.balance(PREPAID).available == 5_000


def test_what_a_true_up_left_owing_is_paid_first_and_only_the_rest_goes_to_the_meter():
    store = world()
    store.ledger.set_overdraft_allowance(PREPAID, 10_000)
    store.ledger.apply(
        Transfer(
            id="owed",
            idempotency_key="true-up:1",
            debit_account=PREPAID,
            credit_account=AccountCode.revenue(),
            amount=1_200,
            kind=TransferKind.TRUE_UP,
            status=TransferStatus.POSTED,
            effective_at=AT,
            recorded_at=AT,
            reason="true-up",
            actor="system",
        ),
        enforce_limits=False,
    )
    outcome, _ = pay(store, 5_000)

    top_up = store.commands[outcome.top_up_id or 0]
    assert top_up.amount_fen == 3_800
    assert "1200 fen to what was owed" in top_up.reason


def test_a_payment_that_only_covers_what_is_owed_queues_no_top_up():
    store = world()
    store.ledger.set_overdraft_allowance(PREPAID, 10_000)
    store.ledger.apply(
        Transfer(
            id="owed",
            idempotency_key="true-up:1",
            debit_account=PREPAID,
            credit_account=AccountCode.revenue(),
            amount=6_000,
            kind=TransferKind.TRUE_UP,
            status=TransferStatus.POSTED,
            effective_at=AT,
            recorded_at=AT,
            reason="true-up",
            actor="system",
        ),
        enforce_limits=False,
    )
    outcome, _ = pay(store, 5_000)

    assert outcome.top_up_id is None and store.commands == {}


def test_a_replayed_payment_returns_the_first_and_its_top_up_without_writing_again():
    store = world()
    first, _ = pay(store)
    decided: list[int] = []

    again, uow = pay(store, decide=lambda _uow, account_id, _now: decided.append(account_id))

    assert not again.new and not uow.committed
    assert (again.payment.id, again.top_up_id) == (first.payment.id, first.top_up_id)
    assert len(store.commands) == 1 and len(store.audit) == 1
    assert decided == []  # nothing new to decide on


def test_the_same_key_for_another_amount_is_refused():
    store = world()
    pay(store, 5_000)
    with pytest.raises(IdempotencyConflict):
        pay(store, 6_000)


def test_decisions_run_in_the_payments_unit_of_work():
    store = world()
    seen: list[tuple[int, datetime]] = []

    pay(store, decide=lambda _uow, account_id, now: seen.append((account_id, now)))

    assert seen == [(7, AT)]


def test_above_the_maximum_top_up_nothing_is_recorded_on_a_meter_mode_account():
    store = world()
    limits = MoneyLimits(top_up_fen=4_000)
    with pytest.raises(AmountOutOfRange):
        pay(store, 5_000, limits=limits)
    assert store.ledger.transfers == () and store.commands == {}

    outcome, _ = pay(world("system"), 5_000, limits=limits)  # no top-up: only payment's bound
    assert outcome.new


def test_an_unknown_account_is_not_found_and_nothing_is_kept():
    store = world()
    with pytest.raises(NotFound):
        take_payment(
            FakeUnitOfWork(store),
            account_id=99,
            amount_fen=100,
            channel="counter",
            idempotency_key="k",
            actor="clerk1",
            now=AT,
            policy=POLICY,
        )
    assert store.ledger.transfers == ()


def test_a_confirmed_top_up_shows_the_meters_balance_from_its_reply():
    store = world()
    outcome, _ = pay(store)
    top_up = store.commands[outcome.top_up_id or 0]
    top_up.status, top_up.outcome = "done", "applied"
    top_up.return_data = '{"success":170,"remain":"86.50"}'

    view = top_up_progress(top_up)

    assert (view["stage"], view["amount_fen"], view["meter_balance"]) == (
        "confirmed",
        5000,
        "86.50",
    )
