"""Bounded money (issue 11): no amount or balance can overflow a column or create money.

The attack that broke SQLite (an adjustment of 2^63-1 and its reversal)
is refused; the ledger bounds every customer figure; the storage refuses a
balance UPDATE past the bound by itself; `verify()` reports instead of
crashing when a global account's sum passes 64 bits; and any sequence of
accepted and refused operations with amounts up to 2^63 keeps the ledger
whole, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gasbill.adapters.db.repositories.ledger.writes import add_to_balances
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.errors import AmountOutOfRange, GasbillError, InvalidAmount
from gasbill.domain.ledger import MAX_BALANCE, AccountCode, Balance
from gasbill.domain.money import MoneyLimits, fen_from_yuan_text
from gasbill.service import ledger as service
from tests.integration.test_ledger_db import add_account

HUGE = 2**63 - 1
# limits a careless configuration could set: the ledger's own bound must still hold
OPEN = MoneyLimits(payment_fen=2**64, refund_fen=2**64, adjustment_fen=2**64, top_up_fen=2**64)


def key() -> str:
    return uuid.uuid4().hex


def column_types(uow: UnitOfWork) -> set[str]:
    """The storage types of every balance figure (SQLite keeps a REAL if one overflows)."""
    with uow:
        if uow.session.get_bind().dialect.name != "sqlite":
            return {"integer"}
        rows = uow.session.execute(
            sa.text(
                "SELECT typeof(debits_posted_fen), typeof(credits_posted_fen), "
                "typeof(debits_pending_fen), typeof(credits_pending_fen) FROM ledger_account"
            )
        )
        return {t for row in rows for t in row}


def prepaid_posted(uow: UnitOfWork, account_id: int) -> int:
    return service.account_balances(uow, account_id)["prepaid"].posted


def test_the_overflow_attack_is_refused_and_creates_nothing(uow):
    account_id = add_account(uow, "A1")
    service.record_payment(
        uow,
        account_id=account_id,
        amount_fen=10_000,
        channel="cash",
        idempotency_key=key(),
        actor="clerk",
    )
    for limits in (MoneyLimits(), OPEN):
        with pytest.raises(AmountOutOfRange):
            service.post_adjustment(
                uow,
                account_id=account_id,
                amount_fen=HUGE,
                target="prepaid",
                reason="attack",
                actor="auditor",
                idempotency_key=key(),
                limits=limits,
            )
    assert prepaid_posted(uow, account_id) == 10_000
    assert column_types(uow) == {"integer"}
    assert service.verify_ledger(uow).ok


def test_a_payment_of_2_63_and_one_above_the_maximum_are_refused(uow):
    account_id = add_account(uow, "A1")
    for amount in (HUGE, 2**63, 500_001, 999_999_999_999):
        with pytest.raises(AmountOutOfRange, match=r"maximum|bound"):
            service.record_payment(
                uow,
                account_id=account_id,
                amount_fen=amount,
                channel="cash",
                idempotency_key=key(),
                actor="clerk",
            )
    service.record_payment(
        uow,
        account_id=account_id,
        amount_fen=500_000,
        channel="cash",
        idempotency_key=key(),
        actor="clerk",
    )
    assert prepaid_posted(uow, account_id) == 500_000


def test_refunds_and_adjustments_have_their_own_maxima(uow):
    account_id = add_account(uow, "A1")
    limits = MoneyLimits(payment_fen=5_000, refund_fen=1_000, adjustment_fen=2_000)
    with pytest.raises(AmountOutOfRange, match=r"50\.01 yuan is above the maximum of 50\.00"):
        service.record_payment(
            uow,
            account_id=account_id,
            amount_fen=5_001,
            channel="cash",
            idempotency_key=key(),
            actor="clerk",
            limits=limits,
        )
    service.record_payment(
        uow,
        account_id=account_id,
        amount_fen=5_000,
        channel="cash",
        idempotency_key=key(),
        actor="clerk",
        limits=limits,
    )
    with pytest.raises(AmountOutOfRange, match="refund"):
        service.refund(
            uow,
            account_id=account_id,
            amount_fen=1_001,
            channel="cash",
            reason="r",
            actor="clerk",
            idempotency_key=key(),
            limits=limits,
        )
    for amount in (2_001, -2_001):
        with pytest.raises(AmountOutOfRange, match="adjustment"):
            service.post_adjustment(
                uow,
                account_id=account_id,
                amount_fen=amount,
                target="prepaid",
                reason="r",
                actor="auditor",
                idempotency_key=key(),
                limits=limits,
            )
    assert prepaid_posted(uow, account_id) == 5_000


def test_the_ledger_bounds_a_customer_balance_whatever_the_limits(uow):
    account_id = add_account(uow, "A1")
    adjust = {"target": "prepaid", "reason": "r", "actor": "auditor", "limits": OPEN}
    service.post_adjustment(
        uow, account_id=account_id, amount_fen=MAX_BALANCE, idempotency_key=key(), **adjust
    )
    with pytest.raises(AmountOutOfRange, match="bound"):
        service.post_adjustment(
            uow, account_id=account_id, amount_fen=1, idempotency_key=key(), **adjust
        )
    assert prepaid_posted(uow, account_id) == MAX_BALANCE
    assert service.verify_ledger(uow).ok


def test_storage_refuses_a_balance_past_the_bound_by_itself(uow):
    account_id = add_account(uow, "A1")
    with uow:
        ledger_id = uow.ledger.directory.get(AccountCode.prepaid(str(account_id))).id
        for change in (Balance(credits_posted=MAX_BALANCE + 1), Balance(debits_posted=HUGE)):
            with pytest.raises(AmountOutOfRange):
                add_to_balances(uow.session, {ledger_id: change})
        add_to_balances(uow.session, {ledger_id: Balance(credits_posted=MAX_BALANCE)})
        with pytest.raises(AmountOutOfRange):
            add_to_balances(uow.session, {ledger_id: Balance(credits_posted=1)})
    assert column_types(uow) == {"integer"}


def test_verify_reports_a_sum_past_64_bits_instead_of_crashing(uow):
    """Transfers written past the rules (a restored dump, a manual edit) are found, not fatal."""
    a, b = add_account(uow, "A1"), add_account(uow, "A2")
    with uow:
        ids = {n: uow.ledger.directory.get(AccountCode.prepaid(str(n))).id for n in (a, b)}
        cash = uow.ledger.ensure_account(AccountCode.cash("cash")).id
        for n in range(3):
            uow.session.execute(
                sa.text(
                    "INSERT INTO transfer (id, idempotency_key, debit_account_id, "
                    "credit_account_id, amount_fen, kind, status, reason, actor, effective_at, "
                    "recorded_at) VALUES (:id, :key, :d, :c, :amount, 'payment', 'posted', '', "
                    "'x', :at, :at)"
                ),
                {
                    "id": f"t{n}",
                    "key": f"k{n}",
                    "d": cash,
                    "c": ids[a if n % 2 else b],
                    "amount": HUGE,
                    "at": "2025-03-01 08:00:00",
                },
            )
        uow.commit()
    report = service.verify_ledger(uow)
    assert not report.ok  # the kept prepaid columns do not match: found, reported


def test_yuan_text_is_plain_digits_with_at_most_two_decimals():
    assert fen_from_yuan_text("100") == 10_000
    assert fen_from_yuan_text(" 100.5 ") == 10_050
    assert fen_from_yuan_text("0.01") == 1
    for bad in ("1e3", "-5", "+5", "1,000", "100.001", "NaN", "inf", "", "0x10", "１００", ".5"):
        with pytest.raises(InvalidAmount):
            fen_from_yuan_text(bad)


# -- the property: whatever is asked, the ledger stays whole -------------------------------

AMOUNTS = st.one_of(
    st.integers(1, 2**63),
    st.sampled_from([1, 500_000, 500_001, MAX_BALANCE, MAX_BALANCE + 1, HUGE, 2**63]),
)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["pay", "refund", "adjust+", "adjust-", "reverse"]),
        st.integers(0, 1),  # which account
        AMOUNTS,
        st.booleans(),  # default limits, or none to speak of
    ),
    min_size=1,
    max_size=10,
)


def _step(uow: UnitOfWork, accounts: list[int], done: list[str], step: tuple) -> None:
    op, which, amount, strict = step
    account_id = accounts[which]
    limits = MoneyLimits() if strict else OPEN
    common = {"account_id": account_id, "idempotency_key": key(), "limits": limits}
    if op == "pay":
        t = service.record_payment(uow, amount_fen=amount, channel="cash", actor="c", **common)
    elif op == "refund":
        t = service.refund(uow, amount_fen=amount, channel="cash", reason="r", actor="c", **common)
    elif op.startswith("adjust"):
        sign = 1 if op == "adjust+" else -1
        t = service.post_adjustment(
            uow, amount_fen=sign * amount, target="prepaid", reason="r", actor="a", **common
        )
    else:
        if not done:
            return
        t = service.reverse_transfer(
            uow,
            transfer_id=done[amount % len(done)],
            reason="r",
            actor="a",
            idempotency_key=key(),
        )
    done.append(t.id)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
def test_any_sequence_keeps_the_ledger_whole(uow, steps):
    with uow:
        found = uow.session.execute(sa.text("SELECT id FROM account ORDER BY id")).all()
    accounts = [r[0] for r in found] or [add_account(uow, "A1"), add_account(uow, "A2")]
    done: list[str] = []
    for step in steps:
        with contextlib.suppress(GasbillError):  # refused: nothing recorded
            _step(uow, accounts, done, step)
        report = service.verify_ledger(uow)
        assert report.ok, report.problems
        assert report.posted_total == report.pending_total == 0
        assert column_types(uow) == {"integer"}
