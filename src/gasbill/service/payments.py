"""A clerk's payment: money in, and for a meter-mode account a remote top-up of it.

Recording the payment, holding the amount for the meter and queuing the
`remotecharge` happen in one transaction: the customer's money is never
taken without the top-up being queued, nor queued twice for one payment
(the same Idempotency-Key replays the first result).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gasbill.crashpoints import crash_point
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import AccountCode, Transfer
from gasbill.domain.money import MoneyLimits
from gasbill.jsontext import loads_exact
from gasbill.service.accounts import NotFound
from gasbill.service.commands.progress import command_progress
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from gasbill.service.ports import CommandRecord, UnitOfWork
from gasbill.service.transfers import DEFAULT_LIMITS, describe, payment_transfer, record_once

# what runs on the account after its balance changed, in the same transaction (decisions)
# decide(uow, account_id, now): the account's decisions, in the payment's unit of work
# (they still take the concrete unit of work: issue 14, the decisions' ports)
Decide = Callable[..., object]


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    payment: Transfer
    top_up_id: int | None
    new: bool


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
    is recorded (`AmountOutOfRange`).
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
        if account.billing_mode == BillingMode.METER:
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


def _audit(
    uow: UnitOfWork, payment: Transfer, account_id: int, top_up: CommandRecord | None, now: datetime
) -> None:
    uow.audit.record(
        actor=payment.actor,
        action="ledger.payment",
        entity="account",
        entity_id=account_id,
        after={**describe(payment), "top_up": top_up.id if top_up is not None else None},
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
