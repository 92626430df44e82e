"""Transfers as the ledger's use cases build them, and recording one exactly once.

Idempotency keys are namespaced per operation (`payment:<key>`, …): the
same key and request returns the first transfer and writes nothing, the
same key with another request raises `IdempotencyConflict`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from gasbill.domain.errors import IdempotencyConflict, InvalidTransfer
from gasbill.domain.ledger import (
    AccountCode,
    Transfer,
    TransferKind,
    TransferStatus,
    new_transfer_id,
)
from gasbill.domain.money import MoneyLimits
from gasbill.service.ports import LedgerRepository

DEFAULT_LIMITS = MoneyLimits()
KEY_MAX = 200  # transfer.idempotency_key


def payment_transfer(
    *,
    account_id: int,
    amount_fen: int,
    channel: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
    at: datetime | None = None,
    memo: str = "",
    limits: MoneyLimits = DEFAULT_LIMITS,
) -> Transfer:
    """The transfer of a payment (cash:<channel> → prepaid), keyed `payment:<key>`.

    Every way a payment is taken (the counter, a meter-mode top-up, an
    account's first payment) builds it here, so one key dedupes them all and
    one maximum bounds them all.
    """
    limits.check("payment", amount_fen)
    return new_transfer(
        key=namespaced("payment", idempotency_key),
        debit=AccountCode.cash(channel),
        credit=AccountCode.prepaid(str(account_id)),
        amount=amount_fen,
        kind=TransferKind.PAYMENT,
        now=now,
        at=at,
        reason=memo,
        actor=actor,
    )


def record_once(
    ledger: LedgerRepository, candidate: Transfer, *, enforce_limits: bool = True
) -> tuple[Transfer, bool]:
    """Record `candidate` unless its key is known: (the transfer, whether it is new).

    A replay is judged on everything but the effective time, which the first
    request set; a concurrent first request that won the key is a replay too.
    For use inside a caller's unit of work (a top-up and its command row, say).
    """
    first = ledger.transfer_by_key(candidate.idempotency_key)
    if first is None:
        try:
            recorded = ledger.record(candidate, enforce_limits=enforce_limits)
        except IdempotencyConflict:
            first = ledger.transfer_by_key(candidate.idempotency_key)
            if first is None:
                raise
        else:
            return recorded, recorded.id == candidate.id
    if first.same_request(replace(candidate, effective_at=first.effective_at)):
        return first, False
    raise IdempotencyConflict(
        f"key {candidate.idempotency_key!r} was used for a different request: {first}"
    )


def move_within_account(
    ledger: LedgerRepository,
    *,
    key: str,
    debit: AccountCode,
    credit: AccountCode,
    amount: int,
    reason: str,
    actor: str,
    now: datetime,
) -> Transfer:
    """Money moved between two ledger accounts of one customer (prepaid and meter_credit),
    recorded once under `key`: an `adjustment` that settles what one owes with what the
    other holds (a closed account's payment, a closing's netting). In the caller's unit of
    work."""
    transfer, _ = record_once(
        ledger,
        new_transfer(
            key=key,
            debit=debit,
            credit=credit,
            amount=amount,
            kind=TransferKind.ADJUSTMENT,
            now=now,
            at=now,
            reason=reason,
            actor=actor,
        ),
    )
    return transfer


def describe(transfer: Transfer) -> dict[str, Any]:
    """A transfer as plain JSON-able values (audit entries, API answers)."""
    return {
        "id": transfer.id,
        "idempotency_key": transfer.idempotency_key,
        "debit": str(transfer.debit_account),
        "credit": str(transfer.credit_account),
        "amount_fen": transfer.amount,
        "kind": str(transfer.kind),
        "status": str(transfer.status),
        "pending_id": transfer.pending_id,
        "reverses": transfer.reverses,
        "reason": transfer.reason,
        "actor": transfer.actor,
        "effective_at": transfer.effective_at.isoformat(),
        "recorded_at": transfer.recorded_at.isoformat(),
    }


def new_transfer(
    *,
    key: str,
    debit: AccountCode,
    credit: AccountCode,
    amount: int,
    kind: TransferKind,
    now: datetime,
    at: datetime | None,
    reason: str,
    actor: str,
    status: TransferStatus = TransferStatus.POSTED,
) -> Transfer:
    return Transfer(
        id=new_transfer_id(),
        idempotency_key=key,
        debit_account=debit,
        credit_account=credit,
        amount=amount,
        kind=kind,
        effective_at=now if at is None else at,
        recorded_at=now,
        status=status,
        reason=reason,
        actor=actor,
    )


def namespaced(operation: str, key: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidTransfer("an idempotency key is a non-empty str")
    namespaced = f"{operation}:{key}"
    if len(namespaced) > KEY_MAX:
        raise InvalidTransfer(f"an idempotency key is at most {KEY_MAX - len(operation) - 1} long")
    return namespaced


def utc_now() -> datetime:
    return datetime.now(UTC)
