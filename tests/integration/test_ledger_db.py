"""The ledger against a real database: idempotency, holds, reversals, limits, races, verify."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gasbill.adapters.db.repositories.idempotency import IdempotencyStore
from gasbill.adapters.db.repositories.ledger import SqlLedger
from gasbill.adapters.db.tables.ledger import IdempotencyRecord
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.errors import (
    AlreadyReversed,
    HoldAlreadyResolved,
    IdempotencyConflict,
    InvalidAccountCode,
    InvalidTransfer,
    OverdraftRefused,
    ReversalRefused,
    UnknownLedgerAccount,
)
from gasbill.domain.ledger import (
    AccountCode,
    Balance,
    Transfer,
    TransferKind,
    TransferStatus,
    new_transfer_id,
)
from gasbill.service import ledger as service
from gasbill.service.accounts import NotFound
from gasbill.service.ports import CommitConflict, NewAccountRow

T0 = datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
REVENUE = AccountCode.revenue("gas")


def add_account(uow: UnitOfWork, number: str) -> int:
    """An account with its two ledger accounts, as `open_account` makes them."""
    with uow:
        customer = uow.accounts.add_customer(name=f"customer {number}")
        assert customer.id is not None
        account = uow.accounts.add(
            NewAccountRow(
                number=number,
                customer_id=customer.id,
                company_no="1001",
                billing_mode="system",
                tariff_id="beijing-residential",
                persons=1,
                opened_on=date(2025, 1, 1),
                warning_fen=2000,
                cutoff_fen=0,
                reopen_fen=0,
            )
        )
        assert account.id is not None
        ledger = SqlLedger(uow.session)
        ledger.ensure_account(
            AccountCode.prepaid(str(account.id)), account_id=account.id, allowance=0
        )
        ledger.ensure_account(AccountCode.meter_credit(str(account.id)), account_id=account.id)
        uow.commit()
        return account.id


def prepaid(account_id: int) -> AccountCode:
    return AccountCode.prepaid(str(account_id))


def meter(account_id: int) -> AccountCode:
    return AccountCode.meter_credit(str(account_id))


def balances(uow: UnitOfWork, account_id: int) -> dict[str, Balance]:
    return service.account_balances(uow, account_id)


def pay(uow: UnitOfWork, account_id: int, amount: int, key: str, **kw: Any) -> Transfer:
    fields: dict[str, Any] = {"channel": "wechat", "actor": "clerk1", "at": T0}
    fields.update(kw)
    return service.record_payment(
        uow, account_id=account_id, amount_fen=amount, idempotency_key=key, **fields
    )


def charge(account_id: int, amount: int, key: str) -> Transfer:
    return Transfer(
        id=new_transfer_id(),
        idempotency_key=key,
        debit_account=prepaid(account_id),
        credit_account=REVENUE,
        amount=amount,
        kind=TransferKind.CHARGE,
        effective_at=T0,
        recorded_at=T0,
        actor="billing",
    )


def assert_verified(uow: UnitOfWork) -> None:
    report = service.verify_ledger(uow)
    assert report.ok, report.problems
    assert (report.posted_total, report.pending_total) == (0, 0)


def in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..n-1) in n threads released at once; results or raised exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


# -- idempotency ------------------------------------------------------------------


def test_a_payment_recorded_twice_with_one_key_makes_one_transfer(uow):
    account = add_account(uow, "A1")
    first = pay(uow, account, 5000, "k1", memo="counter")
    again = pay(uow, account, 5000, "k1", memo="counter", at=T0 + timedelta(hours=1))
    assert again == first
    assert first.idempotency_key == "payment:k1"
    assert first.debit_account == AccountCode.cash("wechat")
    assert balances(uow, account)["prepaid"].posted == 5000
    with uow:
        assert len(uow.ledger.transfers_of(account)) == 1
        assert [e.action for e in uow.audit.entries()] == ["ledger.payment"]
    assert_verified(uow)


def test_the_same_key_with_another_request_is_a_conflict(uow):
    account = add_account(uow, "A1")
    pay(uow, account, 5000, "k1")
    with pytest.raises(IdempotencyConflict):
        pay(uow, account, 5001, "k1")
    with pytest.raises(IdempotencyConflict):
        pay(uow, account, 5000, "k1", channel="alipay")
    other = add_account(uow, "A2")
    with pytest.raises(IdempotencyConflict):
        pay(uow, other, 5000, "k1")
    # keys are namespaced per operation: a refund may reuse a payment's key
    refund = service.refund(
        uow,
        account_id=account,
        amount_fen=100,
        channel="wechat",
        reason="moved away",
        actor="clerk1",
        idempotency_key="k1",
    )
    assert refund.idempotency_key == "refund:k1"
    assert balances(uow, account)["prepaid"].posted == 4900


def test_unknown_accounts_and_transfers_are_not_found(uow):
    with pytest.raises(NotFound):
        pay(uow, 999, 100, "k")
    with pytest.raises(NotFound):
        service.account_balances(uow, 999)
    with pytest.raises(NotFound):
        service.reverse_transfer(
            uow, transfer_id="nope", reason="typo", actor="aud", idempotency_key="r"
        )
    with pytest.raises(NotFound):
        service.post_hold(uow, hold_id="nope", idempotency_key="p", actor="job")


def test_a_customer_ledger_account_must_have_been_opened(uow):
    with uow, pytest.raises(UnknownLedgerAccount):
        uow.ledger.record(charge(42, 100, "charge:x"))
    with pytest.raises(InvalidAccountCode):
        pay(uow, add_account(uow, "A1"), 100, "k", channel="bad channel")


def test_transfers_read_back_exactly_as_recorded(uow):
    account = add_account(uow, "A1")
    t = charge(account, 1234, "charge:1")
    with uow:
        assert uow.ledger.record(t, enforce_limits=False) is t
        uow.commit()
    with uow:
        ledger = uow.ledger
        assert ledger.transfer(t.id) == t
        assert ledger.transfer_by_key("charge:1") == t
        assert ledger.balance(prepaid(account)) == Balance(debits_posted=1234)
        assert ledger.balance(REVENUE) == Balance(credits_posted=1234)
        assert type(ledger.balance(REVENUE).credits_posted) is int


# -- concurrency ---------------------------------------------------------------------


def test_concurrent_payments_on_one_account_all_land(engine):
    account = add_account(UnitOfWork(engine), "A1")
    results = in_threads(
        6,
        lambda i: pay(UnitOfWork(engine), account, 100 + i, f"k{i}", channel=f"ch{i % 2}"),
    )
    assert all(isinstance(r, Transfer) for r in results), results
    uow = UnitOfWork(engine)
    assert balances(uow, account)["prepaid"].posted == sum(100 + i for i in range(6))
    assert_verified(uow)


def test_concurrent_requests_with_one_key_make_one_transfer(engine):
    account = add_account(UnitOfWork(engine), "A1")
    # `at` left to the clock: each request has its own, the first one's counts
    results = in_threads(
        5, lambda i: pay(UnitOfWork(engine), account, 700, "same", at=None, channel="new")
    )
    assert all(isinstance(r, Transfer) for r in results), results
    assert len({r.id for r in results}) == 1
    uow = UnitOfWork(engine)
    assert balances(uow, account)["prepaid"].posted == 700
    with uow:
        assert len(list(uow.audit.entries())) == 1
    assert_verified(uow)


def test_concurrent_post_and_void_of_one_hold_resolve_it_once(engine):
    uow = UnitOfWork(engine)
    account = add_account(uow, "A1")
    pay(uow, account, 1000, "p")
    hold = service.place_hold(
        uow, account_id=account, amount_fen=600, idempotency_key="h", actor="job", at=T0
    )

    def resolve(i: int) -> Transfer:
        unit = UnitOfWork(engine)
        if i % 2:
            return service.void_hold(unit, hold_id=hold.id, idempotency_key=f"v{i}", actor="job")
        return service.post_hold(unit, hold_id=hold.id, idempotency_key=f"p{i}", actor="job")

    results = in_threads(4, resolve)
    won = [r for r in results if isinstance(r, Transfer)]
    assert len(won) == 1, results
    assert all(isinstance(r, HoldAlreadyResolved) for r in results if r not in won)
    moved = 600 if won[0].status is TransferStatus.POST_PENDING else 0
    assert balances(uow, account)["prepaid"] == Balance(debits_posted=moved, credits_posted=1000)
    assert_verified(uow)


# -- holds, reversals, limits --------------------------------------------------------------


def test_a_hold_is_posted_or_voided_at_most_once(uow):
    account = add_account(uow, "A1")
    pay(uow, account, 1000, "p")
    hold = service.place_hold(
        uow, account_id=account, amount_fen=600, idempotency_key="h1", actor="job"
    )
    assert hold.status is TransferStatus.PENDING
    assert balances(uow, account)["prepaid"].available == 400
    assert balances(uow, account)["meter_credit"].pending == 600
    with pytest.raises(OverdraftRefused):
        service.place_hold(
            uow, account_id=account, amount_fen=401, idempotency_key="h2", actor="job"
        )
    posted = service.post_hold(
        uow, hold_id=hold.id, amount_fen=550, idempotency_key="t1", actor="job"
    )
    assert (
        service.post_hold(uow, hold_id=hold.id, amount_fen=550, idempotency_key="t1", actor="job")
        == posted
    )
    with pytest.raises(HoldAlreadyResolved):
        service.post_hold(uow, hold_id=hold.id, idempotency_key="t2", actor="job")
    with pytest.raises(HoldAlreadyResolved):
        service.void_hold(uow, hold_id=hold.id, idempotency_key="t3", actor="job")
    got = balances(uow, account)
    assert (got["prepaid"].posted, got["prepaid"].available) == (450, 450)
    assert (got["meter_credit"].posted, got["meter_credit"].pending) == (550, 0)
    second = service.place_hold(
        uow, account_id=account, amount_fen=450, idempotency_key="h3", actor="job"
    )
    service.void_hold(uow, hold_id=second.id, idempotency_key="t4", actor="job", reason="0xbb")
    assert balances(uow, account)["prepaid"].available == 450
    assert_verified(uow)


def test_a_transfer_is_reversed_at_most_once(uow):
    account = add_account(uow, "A1")
    payment = pay(uow, account, 1000, "p")
    hold = service.place_hold(
        uow, account_id=account, amount_fen=100, idempotency_key="h", actor="job"
    )

    def undo(transfer_id: str, key: str) -> Transfer:
        return service.reverse_transfer(
            uow, transfer_id=transfer_id, reason="wrong account", actor="aud", idempotency_key=key
        )

    reversal = undo(payment.id, "r1")
    assert (reversal.debit_account, reversal.credit_account) == (
        payment.credit_account,
        payment.debit_account,
    )
    assert undo(payment.id, "r1") == reversal
    with pytest.raises(AlreadyReversed):
        undo(payment.id, "r2")
    with pytest.raises(ReversalRefused):
        undo(reversal.id, "r3")
    with pytest.raises(ReversalRefused):
        undo(hold.id, "r4")
    assert balances(uow, account)["prepaid"] == Balance(
        debits_posted=1000, credits_posted=1000, debits_pending=100
    )
    assert_verified(uow)


def test_refunds_are_limited_to_the_available_balance(uow):
    account = add_account(uow, "A1")
    pay(uow, account, 1000, "p")
    service.place_hold(uow, account_id=account, amount_fen=300, idempotency_key="h", actor="j")

    def refund(amount: int, key: str) -> Transfer:
        return service.refund(
            uow,
            account_id=account,
            amount_fen=amount,
            channel="wechat",
            reason="closing",
            actor="clerk1",
            idempotency_key=key,
        )

    with pytest.raises(OverdraftRefused):
        refund(701, "r1")
    done = refund(700, "r2")
    assert done.credit_account == AccountCode.refunds()
    assert done.reason == "wechat: closing"
    assert refund(700, "r2") == done  # a replay is not refused for the balance it took
    assert balances(uow, account)["prepaid"].available == 0
    assert_verified(uow)


def test_adjustments_are_signed_and_need_a_reason(uow):
    account = add_account(uow, "A1")

    def adjust(amount: int, target: str, key: str, reason: str = "meter audit") -> Transfer:
        return service.post_adjustment(
            uow,
            account_id=account,
            amount_fen=amount,
            target=target,
            reason=reason,
            actor="aud",
            idempotency_key=key,
        )

    up = adjust(500, "prepaid", "a1")
    assert (up.debit_account, up.credit_account) == (AccountCode.adjustments(), prepaid(account))
    down = adjust(-200, "meter_credit", "a2")  # may go below zero: it records a decision
    assert (down.debit_account, down.amount) == (meter(account), 200)
    for amount, target in ((0, "prepaid"), (5, "revenue"), (5, "cash")):
        with pytest.raises(InvalidTransfer):
            adjust(amount, target, "a3")
    with pytest.raises(InvalidTransfer):
        adjust(5, "prepaid", "a4", reason="")
    got = balances(uow, account)
    assert (got["prepaid"].posted, got["meter_credit"].posted) == (500, -200)
    assert_verified(uow)


# -- batches and groups ---------------------------------------------------------------


def test_record_many_writes_a_batch_and_replays_what_it_knows(uow):
    accounts = [add_account(uow, f"A{i}") for i in range(5)]
    batch = [charge(a, 100 * (i + 1), f"charge:{a}") for i, a in enumerate(accounts)]
    batch.append(charge(accounts[0], 7, "charge:extra"))
    with uow:
        assert uow.ledger.record_many(batch) == batch
        uow.commit()
    replay = [charge(a, 100 * (i + 1), f"charge:{a}") for i, a in enumerate(accounts)]
    new = charge(accounts[1], 9, "charge:new")
    with uow:
        got = uow.ledger.record_many([*replay, new, new])
        uow.commit()
    assert got == [*batch[:5], new, new]
    assert balances(uow, accounts[0])["prepaid"].posted == -107
    assert balances(uow, accounts[1])["prepaid"].posted == -209
    with uow, pytest.raises(IdempotencyConflict):
        uow.ledger.record_many(
            [charge(accounts[2], 1, "charge:late"), charge(accounts[2], 1, f"charge:{accounts[2]}")]
        )
    with uow:
        assert uow.ledger.transfer_by_key("charge:late") is None
        assert uow.ledger.balance(REVENUE).posted == 100 + 200 + 300 + 400 + 500 + 7 + 9
    assert_verified(uow)


def test_record_many_with_limits_refuses_the_whole_batch(uow):
    account = add_account(uow, "A1")
    pay(uow, account, 150, "p")
    batch = [charge(account, 100, "c1"), charge(account, 100, "c2")]
    with uow, pytest.raises(OverdraftRefused):
        uow.ledger.record_many(batch, enforce_limits=True)
    assert balances(uow, account)["prepaid"].posted == 150


def test_a_group_is_recorded_whole_or_not_at_all(uow):
    account = add_account(uow, "A1")
    pay(uow, account, 1000, "p")
    payment = Transfer(
        id=new_transfer_id(),
        idempotency_key="g:pay",
        debit_account=AccountCode.cash("bank"),
        credit_account=prepaid(account),
        amount=500,
        kind=TransferKind.PAYMENT,
        effective_at=T0,
        recorded_at=T0,
    )
    topup = Transfer(
        id=new_transfer_id(),
        idempotency_key="g:hold",
        debit_account=prepaid(account),
        credit_account=meter(account),
        amount=1600,
        kind=TransferKind.TOP_UP,
        effective_at=T0,
        recorded_at=T0,
        status=TransferStatus.PENDING,
    )
    with uow, pytest.raises(OverdraftRefused):
        uow.ledger.record_group([payment, topup])
    with uow:
        assert uow.ledger.transfer_by_key("g:pay") is None
        smaller = Transfer(**{**_fields(topup), "amount": 1500})
        recorded = uow.ledger.record_group([payment, smaller])
        assert uow.ledger.record_group([payment, smaller]) == recorded
        uow.commit()
    assert balances(uow, account)["prepaid"].available == 0
    assert_verified(uow)


def _fields(t: Transfer) -> dict[str, Any]:
    return {name: getattr(t, name) for name in t.__dataclass_fields__}


# -- reading and verifying ---------------------------------------------------------------


def test_an_accounts_ledger_lines_are_newest_first(uow):
    account = add_account(uow, "A1")
    other = add_account(uow, "A2")
    pay(uow, other, 1, "o")
    made = [pay(uow, account, 10 + i, f"k{i}") for i in range(5)]
    lines = service.account_transfers(uow, account)
    assert lines == made[::-1]
    assert service.account_transfers(uow, account, offset=1, limit=2) == made[3:1:-1]


def test_verify_detects_a_tampered_balance_column(uow):
    account = add_account(uow, "A1")
    pay(uow, account, 1000, "p")
    with uow:
        uow.ledger.record(charge(account, 300, "c"), enforce_limits=False)
        uow.commit()
    assert_verified(uow)
    with uow:
        uow.session.execute(
            sa.text(
                "UPDATE ledger_account SET credits_posted_fen = credits_posted_fen + 1 "
                "WHERE code = :code"
            ),
            {"code": str(prepaid(account))},
        )
        uow.commit()
    report = service.verify_ledger(uow)
    assert not report.ok
    assert report.posted_total == 1
    assert any(str(prepaid(account)) in p for p in report.problems)
    assert any("sum to zero" in p for p in report.problems)


def test_global_balances_are_derived_and_everything_sums_to_zero(uow):
    a, b = add_account(uow, "A1"), add_account(uow, "A2")
    pay(uow, a, 1000, "p1")
    pay(uow, b, 2000, "p2", channel="alipay")
    with uow:
        uow.ledger.record_many([charge(a, 300, "c1"), charge(b, 2500, "c2")])
        uow.commit()
    with uow:
        got = uow.ledger.balances()
    assert got[AccountCode.cash("wechat")].posted == -1000
    assert got[AccountCode.cash("alipay")].posted == -2000
    assert got[REVENUE].posted == 2800
    assert got[prepaid(b)].posted == -500
    assert sum(x.posted for x in got.values()) == 0
    assert all(type(v) is int for x in got.values() for v in vars_of(x))


def vars_of(b: Balance) -> tuple[int, ...]:
    return (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending)


# -- the staff API's stored answers ---------------------------------------------------------


def test_idempotency_store_keeps_the_first_answer(uow):
    with uow:
        store = IdempotencyStore(uow.session)
        assert store.get("k") is None
        store.save("k", "payment", "a" * 64, 201, '{"id": "t1"}')
        uow.commit()
    with uow:
        found = IdempotencyStore(uow.session).get("k")
    assert found is not None
    assert (found.scope, found.request_hash, found.status_code, found.response) == (
        "payment",
        "a" * 64,
        201,
        '{"id": "t1"}',
    )
    with uow, pytest.raises(IntegrityError):
        IdempotencyStore(uow.session).save("k", "payment", "b" * 64, 201, "{}")


def test_a_commit_meeting_a_taken_unique_key_is_the_services_commit_conflict(engine):
    # the service catches its own CommitConflict (two nodes creating one campaign); the
    # API's handler still sees the driver's IntegrityError
    uow = UnitOfWork(engine)
    with uow:
        IdempotencyStore(uow.session).save("k", "payment", "a" * 64, 201, "{}")
        uow.commit()
    with uow:
        taken = IdempotencyRecord(
            key="k", scope="payment", request_hash="b" * 64, status_code=201, response="{}"
        )
        uow.session.add(taken)
        with pytest.raises(CommitConflict) as raised:
            uow.commit()
    assert isinstance(raised.value, IntegrityError) and not uow.committed


def test_a_key_raced_between_global_accounts_is_settled_by_the_unique_index(engine):
    # no customer account to lock: the loser's insert hits the unique key, rolls its
    # savepoint back and answers like a replay (the first transfer, or the conflict)
    def move(i: int) -> Transfer:
        unit = UnitOfWork(engine)
        with unit:
            t = Transfer(
                id=new_transfer_id(),
                idempotency_key="raced",
                debit_account=AccountCode.cash("bank"),
                credit_account=REVENUE,
                amount=500 if i < 4 else 501,
                kind=TransferKind.TRUE_UP,
                effective_at=T0,
                recorded_at=T0,
            )
            got = unit.ledger.record(t)
            unit.commit()
            return got

    setup = UnitOfWork(engine)
    with setup:
        setup.ledger.ensure_account(AccountCode.cash("bank"))
        setup.ledger.ensure_account(REVENUE)
        setup.commit()
    results = in_threads(5, move)
    won = {r.id for r in results if isinstance(r, Transfer)}
    assert len(won) == 1, results
    conflicts = [r for r in results if not isinstance(r, Transfer)]
    assert all(isinstance(r, IdempotencyConflict) for r in conflicts), results
    uow = UnitOfWork(engine)
    with uow:
        assert uow.ledger.balance(REVENUE).posted in (500, 501)
    assert_verified(uow)


def test_a_batch_raced_between_global_accounts_lands_once(engine):
    setup = UnitOfWork(engine)
    with setup:
        setup.ledger.ensure_account(AccountCode.cash("bank"))
        setup.ledger.ensure_account(REVENUE)
        setup.commit()

    def batch() -> list[Transfer]:
        return [
            Transfer(
                id=new_transfer_id(),
                idempotency_key=f"batch:{n}",
                debit_account=AccountCode.cash("bank"),
                credit_account=REVENUE,
                amount=100 + n,
                kind=TransferKind.TRUE_UP,
                effective_at=T0,
                recorded_at=T0,
            )
            for n in range(3)
        ]

    def move(i: int) -> list[Transfer]:
        unit = UnitOfWork(engine)
        with unit:
            got = unit.ledger.record_many(batch())
            unit.commit()
            return got

    results = in_threads(4, move)
    assert all(isinstance(r, list) for r in results), results
    assert len({tuple(t.id for t in r) for r in results}) == 1
    with setup:
        assert setup.ledger.balance(REVENUE).posted == 303
    assert_verified(setup)
