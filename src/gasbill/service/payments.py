"""A clerk's payment: money in, and for a meter-mode account a remote top-up of it.

Recording the payment, holding the amount for the meter and queuing the
`remotecharge` happen in one transaction: the customer's money is never
taken without the top-up being queued, nor queued twice for one payment
(the same Idempotency-Key replays the first result).

A closed account takes a payment only to settle what it still owes (its
closing billed gas past its credit), up to that and no more: there is no
meter to load, and money beyond the debt would be taken for an account that
can no longer use it. In meter mode the closing's tail is owed on
`meter_credit` (the shadow billed it): what the payment settles there moves
on from `prepaid`, after what `prepaid` itself owes (a true-up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gasbill.crashpoints import crash_point
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import ZERO_BALANCE, AccountCode, Transfer
from gasbill.domain.money import Money, MoneyLimits
from gasbill.jsontext import loads_exact
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.commands.progress import command_progress
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from gasbill.service.ports import AccountRecord, CommandRecord, UnitOfWork
from gasbill.service.transfers import (
    DEFAULT_LIMITS,
    describe,
    move_within_account,
    namespaced,
    payment_transfer,
    record_once,
)

# what runs on the account after its balance changed, in the same transaction (decisions)
# decide(uow, account_id, now): the account's decisions, in the payment's unit of work
# (they still take the concrete unit of work: issue 14, the decisions' ports)
Decide = Callable[..., object]


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    payment: Transfer
    top_up_id: int | None
    new: bool
    owed_fen: int | None = None  # a closed account: what it still owes after this payment


def take_payment(
    uow: UnitOfWork,
    *,
    account_id: int,
    amount_fen: int,
    channel: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
    policy: CommandPolicy,
    memo: str = "",
    decide: Decide | None = None,
    limits: MoneyLimits = DEFAULT_LIMITS,
) -> PaymentOutcome:
    """Record the payment; queue its top-up (meter mode); let `decide` react (valve on).

    Above the maximum payment, or (meter mode) the maximum top-up, nothing
    is recorded (`AmountOutOfRange`). On a closed account, only up to what it
    still owes (`Conflict` beyond it, or when it owes nothing); a replay of a
    key already taken returns the first result, closed since or not.
    """
    candidate = payment_transfer(
        account_id=account_id,
        amount_fen=amount_fen,
        channel=channel,
        idempotency_key=idempotency_key,
        actor=actor,
        now=now,
        memo=memo,
        limits=limits,
    )
    with uow:
        account = uow.accounts.get(account_id, lock=True)
        if account is None:
            raise NotFound(f"no account {account_id}")
        if account.status != "active":
            if uow.ledger.transfer_by_key(candidate.idempotency_key) is None:
                return _settle_closed(uow, account, candidate, idempotency_key, now)
        elif account.billing_mode == BillingMode.METER:
            limits.check("top_up", amount_fen)
        payment, new = record_once(uow.ledger, candidate)
        top_up: CommandRecord | None = None
        if new and account.billing_mode == BillingMode.METER:
            load, owed = _after_what_is_owed(uow, account_id, amount_fen)
            if load > 0:
                top_up = queue_top_up(
                    uow,
                    account,
                    load,
                    key=idempotency_key,
                    actor=actor,
                    now=now,
                    policy=policy,
                    reason=f"payment {payment.id}{owed}",
                )
        elif not new:
            top_up = _top_up_of(uow, idempotency_key)
        if new and decide is not None:
            decide(uow, account_id, now)
        if new:
            _audit(uow, payment, account_id, top_up, now)
            crash_point("payment.before_commit")
            uow.commit()
            crash_point("payment.after_commit")
        return PaymentOutcome(payment, top_up.id if top_up is not None else None, new)


def _after_what_is_owed(uow: UnitOfWork, account_id: int, amount_fen: int) -> tuple[int, str]:
    """What a meter-mode payment loads on the meter, and a note of the rest: what a
    price-change true-up left owing in prepaid is paid first."""
    available = uow.ledger.balance(AccountCode.prepaid(str(account_id))).available
    load = min(amount_fen, available)
    owed = f", {amount_fen - load} fen to what was owed" if 0 < load < amount_fen else ""
    return load, owed


def _settle_closed(
    uow: UnitOfWork,
    account: AccountRecord,
    candidate: Transfer,
    idempotency_key: str,
    now: datetime,
) -> PaymentOutcome:
    """A new payment on a closed account: recorded if it settles no more than is owed.

    Its settlement's key (`settle:<key>`) is no longer than the payment's."""
    assert account.id is not None
    prepaid, credit = (
        AccountCode.prepaid(str(account.id)),
        AccountCode.meter_credit(str(account.id)),
    )
    prepaid_fen, credit_fen = held_on_closing(uow, account.id)
    owed, amount = owed_on_closing(prepaid_fen, credit_fen), candidate.amount
    if owed == 0:
        raise Conflict(f"account {account.number} is closed: it takes no payment (it owes nothing)")
    if amount > owed:
        raise Conflict(
            f"account {account.number} is closed and owes {_yuan(owed)} yuan ({owed} fen): "
            f"a payment of up to {_yuan(owed)} yuan settles it, not {_yuan(amount)} yuan"
        )
    payment, new = record_once(uow.ledger, candidate)
    if not new:  # a concurrent request with its key came first
        top_up = _top_up_of(uow, idempotency_key)
        return PaymentOutcome(payment, top_up.id if top_up is not None else None, False)
    # what prepaid owes is settled first; the rest goes on to meter_credit, up to what the
    # meter's tail (the shadow billed past the credit) left owing there
    onward = min(prepaid_fen + amount, -credit_fen)
    settled = None
    if onward > 0:
        settled = move_within_account(
            uow.ledger,
            key=namespaced("settle", idempotency_key),
            debit=prepaid,
            credit=credit,
            amount=onward,
            reason=(
                f"account {account.number} closed: payment {payment.id} settles the gas "
                "its meter's credit was billed past"
            ),
            actor=candidate.actor,
            now=now,
        )
    _audit(
        uow,
        payment,
        account.id,
        None,
        now,
        owed_before_fen=owed,
        settles_meter_credit=settled.id if settled is not None else None,
    )
    crash_point("payment.before_commit")
    uow.commit()
    crash_point("payment.after_commit")
    return PaymentOutcome(payment, None, True, owed_fen=owed - amount)


def held_on_closing(uow: UnitOfWork, account_id: int) -> tuple[int, int]:
    """The account's available prepaid and meter_credit balances, both locked (a closing
    and a closed account's payment read them together)."""
    prepaid = AccountCode.prepaid(str(account_id))
    credit = AccountCode.meter_credit(str(account_id))
    locked = uow.ledger.lock([prepaid, credit])
    return (
        locked.get(prepaid, ZERO_BALANCE).available,
        locked.get(credit, ZERO_BALANCE).available,
    )


def owed_on_closing(prepaid_fen: int, meter_credit_fen: int) -> int:
    """What a closed account owes, from its available prepaid and meter_credit balances:
    what they fall below zero together (the closing paid back whatever either held)."""
    return max(0, -(prepaid_fen + meter_credit_fen))


def _yuan(fen: int) -> str:
    return Money.of_fen(fen).fixed()


def _audit(
    uow: UnitOfWork,
    payment: Transfer,
    account_id: int,
    top_up: CommandRecord | None,
    now: datetime,
    **closed: object,
) -> None:
    uow.audit.record(
        actor=payment.actor,
        action="ledger.payment",
        entity="account",
        entity_id=account_id,
        after={**describe(payment), "top_up": top_up.id if top_up is not None else None, **closed},
        at=now,
    )


def _top_up_of(uow: UnitOfWork, idempotency_key: str) -> CommandRecord | None:
    hold = uow.ledger.transfer_by_key(f"top-up-hold:{idempotency_key}")
    if hold is None:
        return None
    return uow.commands.by_hold(hold.id)


def top_up_progress(command: CommandRecord) -> dict[str, object]:
    """Where a top-up stands, in a clerk's words (see `commands.progress`), and its amounts."""
    view = command_progress(command)
    view |= {
        "amount_fen": command.amount_fen,
        "charge_times": command.charge_times,
        "meter_balance": None,
    }
    if view["stage"] == "confirmed" and command.return_data:
        remain = _remain(command.return_data)
        view["meter_balance"] = str(remain) if remain is not None else None
    return view


def _remain(return_data: str) -> object:
    try:
        data = loads_exact(return_data)
    except ValueError:
        return None
    return data.get("remain") if isinstance(data, dict) else None
