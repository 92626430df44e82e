"""The rules a new transfer or group must pass against what is already recorded.

`check_transfer` and `check_group` take a `LedgerView`, so the database
ledger runs the same rules as the in-memory `Ledger`.
"""

from __future__ import annotations

from typing import Protocol

from gasbill.domain.errors import (
    AlreadyReversed,
    DuplicateTransferId,
    HoldAlreadyResolved,
    IdempotencyConflict,
    InvalidResolution,
    OverdraftRefused,
    ReversalRefused,
    UnknownTransfer,
)
from gasbill.domain.ledger.accounts import CUSTOMER_KINDS, AccountCode
from gasbill.domain.ledger.balances import (
    ZERO_BALANCE,
    Balance,
    balance_changes,
    check_bounded,
)
from gasbill.domain.ledger.resolutions import check_reversible, fits_hold
from gasbill.domain.ledger.transfers import Transfer, TransferGroup, TransferKind


class LedgerView(Protocol):
    """What the rules need to know about what is already recorded."""

    def transfer(self, transfer_id: str) -> Transfer | None: ...

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None: ...

    def resolution_of(self, pending_id: str) -> Transfer | None: ...

    def reversal_of(self, transfer_id: str) -> Transfer | None: ...

    def balance(self, account: AccountCode) -> Balance: ...

    def overdraft_allowance(self, account: AccountCode) -> int | None:
        """How far below zero its available balance may go; None: no limit."""
        ...


def check_transfer(
    transfer: Transfer, view: LedgerView, *, enforce_limits: bool = True
) -> Transfer | None:
    """Validate `transfer` against what `view` holds.

    Returns the transfer first recorded under the same key when this is a
    replay (record nothing then), None when it is new and may be recorded.
    Limits apply to new debits (posted or held), never to a post, a void or a
    reversal, which record what has happened; pass `enforce_limits=False`
    for other facts that must be recorded whatever the balance (gas burnt).
    The bound on a customer account's figures (`check_bounded`) applies to
    everything: it keeps storage from overflowing, not a business limit.
    """
    first = view.transfer_by_key(transfer.idempotency_key)
    if first is not None:
        if first.same_request(transfer):
            return first
        raise IdempotencyConflict(
            f"key {transfer.idempotency_key!r} was used for a different transfer: {first}"
        )
    if view.transfer(transfer.id) is not None:
        raise DuplicateTransferId(f"transfer id {transfer.id!r} is already recorded")
    hold = None
    if transfer.pending_id is not None:
        hold = _check_resolves(transfer, transfer.pending_id, view)
    if transfer.reverses is not None:
        _check_reverses(transfer, transfer.reverses, view)
    if enforce_limits and transfer.kind is not TransferKind.REVERSAL and not transfer.is_resolution:
        allowance = view.overdraft_allowance(transfer.debit_account)
        if allowance is not None:
            (account, change), _ = balance_changes(transfer, hold)
            after = view.balance(account) + change
            if after.available < -allowance:
                raise OverdraftRefused(
                    f"{transfer.amount} fen from {account} would leave {after.available} "
                    f"available, below the allowance of -{allowance}"
                )
    for account, change in balance_changes(transfer, hold):
        # only customer accounts keep bounded columns; a global account's balance is summed
        # from all its transfers, so asking for it here made every posting cost O(history)
        if account.kind in CUSTOMER_KINDS:
            check_bounded(account, view.balance(account) + change)
    return None


def _check_resolves(transfer: Transfer, pending_id: str, view: LedgerView) -> Transfer:
    hold = view.transfer(pending_id)
    if hold is None:
        raise UnknownTransfer(f"{transfer.id} resolves unknown hold {pending_id}")
    if not hold.is_hold:
        raise InvalidResolution(f"{pending_id} is not a hold: {hold}")
    earlier = view.resolution_of(pending_id)
    if earlier is not None:
        raise HoldAlreadyResolved(f"hold {pending_id} was already resolved by {earlier}")
    if not fits_hold(transfer, hold):
        raise InvalidResolution(f"{transfer} does not fit its hold {hold}")
    return hold


def _check_reverses(transfer: Transfer, original_id: str, view: LedgerView) -> None:
    original = view.transfer(original_id)
    if original is None:
        raise UnknownTransfer(f"{transfer.id} reverses unknown transfer {original_id}")
    check_reversible(original)
    earlier = view.reversal_of(original_id)
    if earlier is not None:
        raise AlreadyReversed(f"{original_id} was already reversed by {earlier}")
    if (transfer.debit_account, transfer.credit_account, transfer.amount) != (
        original.credit_account,
        original.debit_account,
        original.amount,
    ):
        raise ReversalRefused(f"{transfer} does not mirror {original}")


class StagedView:
    """A view of `base` plus the transfers checked earlier in the same group or batch."""

    def __init__(self, base: LedgerView) -> None:
        self.base = base
        self.by_id: dict[str, Transfer] = {}
        self.by_key: dict[str, Transfer] = {}
        self.resolutions: dict[str, Transfer] = {}
        self.reversals: dict[str, Transfer] = {}
        self.changes: dict[AccountCode, Balance] = {}

    def add(self, transfer: Transfer) -> None:
        hold = self.transfer(transfer.pending_id) if transfer.pending_id else None
        self.by_id[transfer.id] = transfer
        self.by_key[transfer.idempotency_key] = transfer
        if transfer.pending_id is not None:
            self.resolutions[transfer.pending_id] = transfer
        if transfer.reverses is not None:
            self.reversals[transfer.reverses] = transfer
        for account, change in balance_changes(transfer, hold):
            self.changes[account] = self.changes.get(account, ZERO_BALANCE) + change

    def transfer(self, transfer_id: str) -> Transfer | None:
        return self.by_id.get(transfer_id) or self.base.transfer(transfer_id)

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None:
        return self.by_key.get(idempotency_key) or self.base.transfer_by_key(idempotency_key)

    def resolution_of(self, pending_id: str) -> Transfer | None:
        return self.resolutions.get(pending_id) or self.base.resolution_of(pending_id)

    def reversal_of(self, transfer_id: str) -> Transfer | None:
        return self.reversals.get(transfer_id) or self.base.reversal_of(transfer_id)

    def balance(self, account: AccountCode) -> Balance:
        return self.base.balance(account) + self.changes.get(account, ZERO_BALANCE)

    def overdraft_allowance(self, account: AccountCode) -> int | None:
        return self.base.overdraft_allowance(account)


def check_group(
    group: TransferGroup, view: LedgerView, *, enforce_limits: bool = True
) -> tuple[Transfer, ...] | None:
    """Validate a group as one: None if all of it may be recorded, in order.

    A replay of the whole group returns the transfers first recorded. A group
    of which only some keys are known is a conflict: the first one was
    applied whole, so this cannot be the same request.
    """
    firsts = [view.transfer_by_key(t.idempotency_key) for t in group]
    if any(first is not None for first in firsts):
        pairs = zip(firsts, group, strict=True)
        if all(first is not None and first.same_request(t) for first, t in pairs):
            return tuple(first for first in firsts if first is not None)
        raise IdempotencyConflict(
            "a transfer group reuses keys of other or partly applied transfers: "
            + ", ".join(t.idempotency_key for t, f in zip(group, firsts, strict=True) if f)
        )
    staged = StagedView(view)
    for transfer in group:
        check_transfer(transfer, staged, enforce_limits=enforce_limits)
        staged.add(transfer)
    return None
