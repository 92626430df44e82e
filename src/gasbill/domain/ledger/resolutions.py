"""The transfers that resolve a hold (post, void) or undo a posted one (reversal)."""

from __future__ import annotations

from datetime import datetime

from gasbill.domain.errors import InvalidResolution, ReversalRefused
from gasbill.domain.ledger.transfers import (
    HoldAction,
    Transfer,
    TransferKind,
    TransferStatus,
    check_amount,
    new_transfer_id,
)

_RESOLVED_BY = {
    HoldAction.POST: TransferStatus.POST_PENDING,
    HoldAction.VOID: TransferStatus.VOID_PENDING,
}


def resolve_hold(
    hold: Transfer,
    action: HoldAction,
    amount: int | None = None,
    *,
    key: str,
    at: datetime,
    effective_at: datetime | None = None,
    reason: str = "",
    actor: str = "",
    transfer_id: str | None = None,
) -> Transfer:
    """The post (of `amount`, the whole hold by default) or void that resolves `hold`."""
    if not hold.is_hold:
        raise InvalidResolution(f"only a pending transfer can be posted or voided: {hold}")
    action = HoldAction(action)
    if amount is None:
        amount = hold.amount
    _check_resolution_amount(hold, action, check_amount(amount))
    return Transfer(
        id=transfer_id or new_transfer_id(),
        idempotency_key=key,
        debit_account=hold.debit_account,
        credit_account=hold.credit_account,
        amount=amount,
        kind=hold.kind,  # a posted top-up is still a top-up
        effective_at=at if effective_at is None else effective_at,
        recorded_at=at,
        status=_RESOLVED_BY[action],
        pending_id=hold.id,
        reason=reason,
        actor=actor,
    )


def _check_resolution_amount(hold: Transfer, action: HoldAction, amount: int) -> None:
    if action is HoldAction.POST and amount > hold.amount:
        raise InvalidResolution(f"cannot post {amount} fen of a hold of {hold.amount}: {hold.id}")
    if action is HoldAction.VOID and amount != hold.amount:
        raise InvalidResolution(f"a void releases the whole hold of {hold.amount} fen: {hold.id}")


def reverse(
    original: Transfer,
    *,
    reason: str,
    actor: str,
    key: str,
    at: datetime,
    effective_at: datetime | None = None,
    transfer_id: str | None = None,
) -> Transfer:
    """The transfer that undoes `original`: same amount, accounts swapped."""
    check_reversible(original)
    return Transfer(
        id=transfer_id or new_transfer_id(),
        idempotency_key=key,
        debit_account=original.credit_account,
        credit_account=original.debit_account,
        amount=original.amount,
        kind=TransferKind.REVERSAL,
        effective_at=at if effective_at is None else effective_at,
        recorded_at=at,
        reverses=original.id,
        reason=reason,
        actor=actor,
    )


def check_reversible(original: Transfer) -> None:
    """Refuse a hold, a void or a reversal: only what moved money can be undone."""
    if original.is_hold:
        raise ReversalRefused(f"a hold is voided, not reversed: {original.id}")
    if original.status is TransferStatus.VOID_PENDING:
        raise ReversalRefused(f"a void moved nothing to reverse: {original.id}")
    if original.kind is TransferKind.REVERSAL:
        # one level only: a reversal of a reversal makes chains no auditor can follow
        raise ReversalRefused(
            f"a reversal is final; record the movement again instead: {original.id}"
        )


def fits_hold(resolution: Transfer, hold: Transfer) -> bool:
    """Same accounts and kind; a post of at most, a void of exactly, the held amount."""
    if (resolution.debit_account, resolution.credit_account, resolution.kind) != (
        hold.debit_account,
        hold.credit_account,
        hold.kind,
    ):
        return False
    if resolution.status is TransferStatus.POST_PENDING:
        return resolution.amount <= hold.amount
    return resolution.amount == hold.amount
