"""Taking a payment (service.payments) on a fake unit of work: what it records, what it
loads on the meter (and what it pays first), what a replay returns, what it refuses; on a
closed account, only what it still owes.

The database's side (two clerks at once, the crash points) is in tests/integration and
tests/sim.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.commands import CtrlType
from gasbill.domain.errors import AmountOutOfRange, IdempotencyConflict
from gasbill.domain.ledger import AccountCode, HoldAction, Transfer, TransferKind, TransferStatus
from gasbill.domain.money import MoneyLimits, Volume
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.closing import close_account
from gasbill.service.commands.followups import resolve_hold_of
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.payments import take_payment, top_up_progress
from tests.conftest import ROOT
from tests.factories import ZONE_NAME
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


# -- a closed account: a payment settles what it still owes, never more ------------------

CREDIT = AccountCode.meter_credit("7")


def owing(store: FakeStore, payer: AccountCode, fen: int, key: str) -> None:
    """Gas billed to `payer` past what it held (a closing's tail, a true-up)."""
    store.ledger.apply(
        Transfer(
            id=key,
            idempotency_key=f"charge:{key}",
            debit_account=payer,
            credit_account=AccountCode.revenue(),
            amount=fen,
            kind=TransferKind.CHARGE,
            status=TransferStatus.POSTED,
            effective_at=AT - timedelta(days=1),
            recorded_at=AT - timedelta(days=1),
            reason="gas",
            actor="system",
        ),
        enforce_limits=False,
    )


def closed(mode: str = "system", *, prepaid: int = 0, credit: int = 0) -> FakeStore:
    """Account 7 as a closing leaves it: unbound, closed, owing `prepaid` and `credit` fen."""
    store = world(mode)
    store.accounts[7].number = "A0007"
    store.accounts[7].status = "closed"
    store.bindings[0].unbound_at = AT - timedelta(days=1)
    if prepaid:
        owing(store, PREPAID, prepaid, "owed-prepaid")
    if credit:
        owing(store, CREDIT, credit, "owed-credit")
    return store


def refused(store: FakeStore, fen: int, match: str, key: str = "late") -> None:
    before = (store.ledger.transfers, list(store.audit), dict(store.commands))
    with pytest.raises(Conflict, match=match):
        pay(store, fen, key=key)
    assert (store.ledger.transfers, list(store.audit), dict(store.commands)) == before


@pytest.mark.parametrize("mode", ["system", "meter"])
def test_a_closed_account_that_owes_nothing_takes_no_payment_and_keeps_nothing(mode):
    """Before this, a system-mode payment went into the closed account's prepaid (money
    taken for an account that can no longer use it); a meter-mode one met 'has no meter'."""
    store = closed(mode)

    refused(store, 5_000, "account A0007 is closed: it takes no payment")
    refused(store, 1, "it owes nothing")


def test_a_closed_system_mode_account_takes_up_to_what_it_owes_and_no_more():
    store = closed("system", prepaid=958)

    refused(store, 959, r"owes 9\.58 yuan \(958 fen\): a payment of up to 9\.58 yuan settles it")
    first, uow = pay(store, 500, key="k1")

    assert uow.committed and first.new and first.top_up_id is None
    assert (first.payment.credit_account, first.payment.amount) == (PREPAID, 500)
    assert store.ledger.balance(PREPAID).available == -458 and store.commands == {}
    assert first.owed_fen == 458
    (entry,) = store.audit
    assert (entry.action, entry.entity_id, entry.after["id"]) == (
        "ledger.payment",
        7,
        first.payment.id,
    )
    assert (entry.after["top_up"], entry.after["owed_before_fen"]) == (None, 958)

    refused(store, 459, r"owes 4\.58 yuan \(458 fen\)")
    second, _ = pay(store, 458, key="k2")

    assert second.owed_fen == 0 and store.ledger.balance(PREPAID).available == 0
    refused(store, 1, "it takes no payment")


def test_a_closed_meter_mode_accounts_debt_on_meter_credit_is_settled_there():
    """A closing bills the meter's tail to meter_credit (the shadow): what that left owing
    is owed there, so the payment goes through prepaid on to meter_credit, no top-up."""
    store = closed("meter", credit=222)

    refused(store, 223, r"owes 2\.22 yuan \(222 fen\)")
    outcome, uow = pay(store, 222)

    assert uow.committed and outcome.top_up_id is None and store.commands == {}
    assert store.ledger.balance(PREPAID).available == 0
    assert store.ledger.balance(CREDIT).available == 0
    payment, settled = store.ledger.transfers[-2:]
    assert payment.id == outcome.payment.id and payment.credit_account == PREPAID
    assert (settled.debit_account, settled.credit_account, settled.amount) == (
        PREPAID,
        CREDIT,
        222,
    )
    assert settled.kind is TransferKind.ADJUSTMENT and "A0007" in settled.reason
    (entry,) = store.audit
    assert entry.after["settles_meter_credit"] == settled.id
    refused(store, 1, "it takes no payment")


def test_a_settlement_takes_a_payment_key_of_the_longest_length():
    store = closed("meter", credit=222)
    outcome, _ = pay(store, 222, key="k" * 192)  # payment:<192> is the key column's 200
    assert outcome.new and store.ledger.balance(CREDIT).available == 0


def test_on_a_closed_meter_mode_account_what_prepaid_owes_is_paid_first_then_meter_credit():
    store = closed("meter", prepaid=100, credit=300)

    refused(store, 401, r"owes 4\.00 yuan \(400 fen\)")
    first, _ = pay(store, 250, key="k1")

    assert store.ledger.balance(PREPAID).available == 0
    assert store.ledger.balance(CREDIT).available == -150
    assert first.owed_fen == 150
    pay(store, 150, key="k2")
    assert store.ledger.balance(CREDIT).available == 0
    refused(store, 1, "it takes no payment")


def test_a_payment_that_only_covers_prepaid_on_a_closed_meter_mode_account_moves_nothing_on():
    store = closed("meter", prepaid=100, credit=300)
    pay(store, 60)

    assert store.ledger.balance(PREPAID).available == -40
    assert store.ledger.balance(CREDIT).available == -300
    assert len(store.ledger.transfers) == 3  # the two debts and the payment


def test_closing_the_account_then_paying_off_the_meters_tail():
    """The meter-mode account as close_account leaves it: 3.00 yuan loaded on the meter,
    2 m³ since the opening at 2.61 yuan: 5.22 billed to meter_credit, 2.22 owed there."""
    store = world("meter")
    store.bindings[0].opening_litres = 100_000
    loaded, _ = pay(store, 300, key="k0")
    uow = FakeUnitOfWork(store)
    with uow:
        top_up = uow.commands.get(loaded.top_up_id or 0)
        assert top_up is not None
        resolve_hold_of(uow, top_up, HoldAction.POST, AT)
        top_up.status = "done"
        uow.commit()
    closure = close_account(
        FakeUnitOfWork(store),
        7,
        final_register=Volume.of_litres(102_000),
        channel="counter",
        idempotency_key="c1",
        actor="clerk1",
        now=AT + timedelta(hours=1),
        catalog=TariffCatalog(ROOT / "tariffs", ZONE_NAME),
        policy=POLICY,
    )
    assert (closure.billed_fen, closure.refunds) == (522, ())
    assert store.ledger.balance(CREDIT).available == -222

    refused(store, 223, r"owes 2\.22 yuan")
    outcome, _ = pay(store, 222, key="k1")

    assert outcome.new and outcome.top_up_id is None
    assert store.ledger.balance(CREDIT).available == 0
    assert store.ledger.balance(PREPAID).available == 0


@pytest.mark.parametrize("mode", ["system", "meter"])
def test_a_replay_of_a_payment_accepted_before_the_closing_returns_the_first(mode):
    store = world(mode)
    first, _ = pay(store, key="k1")
    store.accounts[7].status = "closed"

    again, uow = pay(store, key="k1")

    assert not again.new and not uow.committed
    assert (again.payment.id, again.top_up_id) == (first.payment.id, first.top_up_id)
    assert len(store.ledger.transfers) == (1 if mode == "system" else 2)
    with pytest.raises(IdempotencyConflict):
        pay(store, 6_000, key="k1")


def test_a_replay_of_a_settling_payment_returns_it_though_nothing_is_owed_now():
    store = closed("meter", credit=222)
    decided: list[int] = []
    first, _ = pay(store, 222, key="k1", decide=lambda _u, account_id, _n: decided.append(1))

    again, uow = pay(store, 222, key="k1")

    assert not again.new and not uow.committed and again.payment.id == first.payment.id
    assert len(store.ledger.transfers) == 3 and len(store.audit) == 1
    assert decided == []  # nothing to decide on a closed account: no meter, no valve


def test_on_a_closed_account_the_maximum_payment_still_holds():
    store = closed("system", prepaid=10_000)
    with pytest.raises(AmountOutOfRange):
        pay(store, 6_000, limits=MoneyLimits(payment_fen=5_000))
    outcome, _ = pay(store, 6_000, limits=MoneyLimits(top_up_fen=5_000))  # no top-up here
    assert outcome.new
