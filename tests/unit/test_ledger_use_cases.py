"""The ledger's use cases (service.ledger: payments, refunds, adjustments, reversals, holds)
on a fake unit of work over the domain's in-memory ledger: what each records, audits and
commits, and what each refuses before writing anything.

The database's side (locks, races on a key, kept balance columns) is in
tests/integration/test_ledger_db.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gasbill.domain.errors import (
    AlreadyReversed,
    AmountOutOfRange,
    IdempotencyConflict,
    InvalidTransfer,
    OverdraftRefused,
)
from gasbill.domain.ledger import AccountCode, TransferKind, TransferStatus
from gasbill.domain.money import MoneyLimits
from gasbill.service import ledger as service
from gasbill.service.accounts import NotFound
from tests.fakes import FakeAccount, FakeStore, FakeUnitOfWork

PREPAID = AccountCode.prepaid("7")
CREDIT = AccountCode.meter_credit("7")
AT = datetime(2025, 2, 1, 9, tzinfo=UTC)


@pytest.fixture
def store() -> FakeStore:
    store = FakeStore(accounts={7: FakeAccount(7)})
    store.ledger.set_overdraft_allowance(PREPAID, 0)  # as an opened account's prepaid is
    return store


def pay(store: FakeStore, fen: int = 10_000, key: str = "p1", **extra):
    uow = FakeUnitOfWork(store)
    transfer = service.record_payment(
        uow,
        account_id=7,
        amount_fen=fen,
        channel="counter",
        idempotency_key=key,
        actor="clerk1",
        at=AT,
        **extra,
    )
    return transfer, uow


def test_a_payment_credits_prepaid_is_audited_and_committed(store):
    transfer, uow = pay(store)
    assert uow.committed
    assert (transfer.debit_account, transfer.credit_account) == (
        AccountCode.cash("counter"),
        PREPAID,
    )
    assert transfer.idempotency_key == "payment:p1" and transfer.effective_at == AT
    assert store.ledger.balance(PREPAID).available == 10_000
    (entry,) = store.audit
    assert (entry.action, entry.entity, entry.entity_id) == ("ledger.payment", "account", 7)
    assert entry.after["amount_fen"] == 10_000


def test_the_same_payment_again_is_the_first_one_and_writes_nothing(store):
    first, _ = pay(store)
    again, uow = pay(store)
    assert again == first and not uow.committed
    assert store.ledger.balance(PREPAID).available == 10_000 and len(store.audit) == 1


def test_the_same_key_for_another_amount_is_a_conflict(store):
    pay(store)
    with pytest.raises(IdempotencyConflict):
        pay(store, fen=9_999)
    assert store.ledger.balance(PREPAID).available == 10_000


def test_a_payment_to_no_account_or_above_the_maximum_writes_nothing(store):
    with pytest.raises(NotFound):
        service.record_payment(
            FakeUnitOfWork(store),
            account_id=8,
            amount_fen=100,
            channel="counter",
            idempotency_key="x",
            actor="clerk1",
        )
    with pytest.raises(AmountOutOfRange):
        pay(store, fen=50_001, limits=MoneyLimits(payment_fen=50_000))
    assert store.ledger.transfers == () and store.audit == []


def test_a_refund_is_at_most_what_is_available(store):
    pay(store, 1_000)
    uow = FakeUnitOfWork(store)
    with pytest.raises(OverdraftRefused):
        service.refund(
            uow,
            account_id=7,
            amount_fen=1_001,
            channel="counter",
            reason="moving",
            actor="clerk1",
            idempotency_key="r1",
        )
    refunded = service.refund(
        uow,
        account_id=7,
        amount_fen=1_000,
        channel="counter",
        reason="moving",
        actor="clerk1",
        idempotency_key="r1",
    )
    assert refunded.credit_account == AccountCode.refunds() and refunded.reason == "counter: moving"
    assert store.ledger.balance(PREPAID).available == 0


def test_a_closed_accounts_remaining_credit_is_still_refunded_and_a_debt_adjusted(store):
    """Closing pays back what the account holds; money found on it later (an auditor's
    correction) goes back by a refund, and a debt it was left with can be written off by an
    adjustment: neither asks whether the account is active (a payment does: payments.py)."""
    store.accounts[7].status = "closed"
    service.post_adjustment(
        FakeUnitOfWork(store),
        account_id=7,
        amount_fen=400,
        target="prepaid",
        reason="voucher found after the closing",
        actor="auditor",
        idempotency_key="a1",
    )
    refunded = service.refund(
        FakeUnitOfWork(store),
        account_id=7,
        amount_fen=400,
        channel="counter",
        reason="what was left",
        actor="clerk1",
        idempotency_key="r1",
    )
    assert refunded.debit_account == PREPAID and store.ledger.balance(PREPAID).available == 0
    with pytest.raises(OverdraftRefused):
        service.refund(
            FakeUnitOfWork(store),
            account_id=7,
            amount_fen=1,
            channel="counter",
            reason="more",
            actor="clerk1",
            idempotency_key="r2",
        )


@pytest.mark.parametrize(
    ("target", "fen"), [("revenue", 100), ("prepaid", 0), ("prepaid", True), ("nonsense", 5)]
)
def test_an_adjustment_targets_a_customer_account_by_a_non_zero_whole_amount(store, target, fen):
    with pytest.raises(InvalidTransfer):
        service.post_adjustment(
            FakeUnitOfWork(store),
            account_id=7,
            amount_fen=fen,
            target=target,
            reason="r",
            actor="admin",
            idempotency_key="a1",
        )


def test_a_negative_adjustment_debits_the_customer_past_any_limit(store):
    adjusted = service.post_adjustment(
        FakeUnitOfWork(store),
        account_id=7,
        amount_fen=-300,
        target="prepaid",
        reason="meter misread",
        actor="admin",
        idempotency_key="a1",
    )
    assert (adjusted.debit_account, adjusted.amount) == (PREPAID, 300)
    assert adjusted.kind is TransferKind.ADJUSTMENT
    assert store.ledger.balance(PREPAID).available == -300


def test_a_reversal_swaps_the_accounts_once(store):
    payment, _ = pay(store)
    uow = FakeUnitOfWork(store)
    undone = service.reverse_transfer(
        uow, transfer_id=payment.id, reason="wrong account", actor="admin", idempotency_key="v1"
    )
    assert (undone.debit_account, undone.credit_account) == (PREPAID, AccountCode.cash("counter"))
    assert undone.reverses == payment.id and store.ledger.balance(PREPAID).available == 0
    with pytest.raises(AlreadyReversed):
        service.reverse_transfer(
            uow, transfer_id=payment.id, reason="again", actor="admin", idempotency_key="v2"
        )
    with pytest.raises(NotFound):
        service.reverse_transfer(
            uow, transfer_id="nope", reason="r", actor="admin", idempotency_key="v3"
        )


def test_a_hold_reserves_prepaid_and_is_posted_in_part_or_voided(store):
    pay(store, 5_000)
    uow = FakeUnitOfWork(store)

    def hold(key: str, fen: int):
        return service.place_hold(
            uow, account_id=7, amount_fen=fen, idempotency_key=key, actor="outbox"
        )

    with pytest.raises(OverdraftRefused):
        hold("h0", 5_001)
    first = hold("h1", 3_000)
    assert first.status is TransferStatus.PENDING
    assert store.ledger.balance(PREPAID).available == 2_000
    service.post_hold(uow, hold_id=first.id, amount_fen=2_000, idempotency_key="h1", actor="outbox")
    assert store.ledger.balance(CREDIT).posted == 2_000
    assert store.ledger.balance(PREPAID).available == 3_000  # the rest released
    second = hold("h2", 1_000)
    service.void_hold(uow, hold_id=second.id, idempotency_key="h2", actor="outbox")
    assert store.ledger.balance(PREPAID).available == 3_000
    assert [e.action for e in store.audit][-4:] == [
        "ledger.hold",
        "ledger.post",
        "ledger.hold",
        "ledger.void",
    ]


def test_balances_and_lines_of_an_account(store):
    pay(store, 700, key="a")
    pay(store, 300, key="b")
    uow = FakeUnitOfWork(store)
    assert service.account_balances(uow, 7)["prepaid"].available == 1_000
    lines = service.account_transfers(uow, 7, limit=1)
    assert [t.amount for t in lines] == [300]  # newest first
    assert service.verify_ledger(uow).posted_total == 0
    with pytest.raises(NotFound):
        service.account_balances(uow, 8)
