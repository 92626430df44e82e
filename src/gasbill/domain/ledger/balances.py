"""Balances: an account's posted and pending totals, and what a transfer changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gasbill.domain.errors import AmountOutOfRange, UnknownTransfer
from gasbill.domain.ledger.accounts import CUSTOMER_KINDS, AccountCode
from gasbill.domain.ledger.transfers import MAX_BALANCE, Transfer, TransferStatus


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's totals in fen; also used for the change one transfer makes."""

    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    @property
    def posted(self) -> int:
        """Credits minus debits of what has moved."""
        return self.credits_posted - self.debits_posted

    @property
    def pending(self) -> int:
        """Credits minus debits of what holds would move."""
        return self.credits_pending - self.debits_pending

    @property
    def available(self) -> int:
        """What can still be spent: incoming holds are not counted until posted."""
        return self.posted - self.debits_pending

    def __add__(self, other: Balance) -> Balance:
        return Balance(
            self.debits_posted + other.debits_posted,
            self.credits_posted + other.credits_posted,
            self.debits_pending + other.debits_pending,
            self.credits_pending + other.credits_pending,
        )


ZERO_BALANCE = Balance()


def check_bounded(account: AccountCode, balance: Balance) -> Balance:
    """Refuse a customer account's balance with a figure beyond ±MAX_BALANCE fen.

    Customer accounts keep their totals in BigInteger columns; bounding
    every figure far inside 64 bits means no addition in storage can
    overflow (SQLite would silently turn it into a REAL). Global accounts
    keep no column: their balances are summed from transfers when asked.
    """
    if account.kind not in CUSTOMER_KINDS:
        return balance
    figures = (
        balance.debits_posted,
        balance.credits_posted,
        balance.debits_pending,
        balance.credits_pending,
    )
    if any(abs(f) > MAX_BALANCE for f in figures):
        raise AmountOutOfRange(
            f"{account} would reach {balance}, beyond the ledger's bound of "
            f"±{MAX_BALANCE} fen per figure"
        )
    return balance


def balance_changes(
    transfer: Transfer, hold: Transfer | None = None
) -> tuple[tuple[AccountCode, Balance], tuple[AccountCode, Balance]]:
    """What applying `transfer` adds to its debit and its credit account.

    A post or void also needs the `hold` it resolves, whose amount it releases.
    """
    amount = transfer.amount
    released = 0
    if transfer.is_resolution:
        if hold is None or hold.id != transfer.pending_id:
            raise UnknownTransfer(f"{transfer.id} resolves {transfer.pending_id}, not given")
        released = hold.amount
    match transfer.status:
        case TransferStatus.POSTED:
            debit, credit = Balance(debits_posted=amount), Balance(credits_posted=amount)
        case TransferStatus.PENDING:
            debit, credit = Balance(debits_pending=amount), Balance(credits_pending=amount)
        case TransferStatus.POST_PENDING:
            debit = Balance(debits_posted=amount, debits_pending=-released)
            credit = Balance(credits_posted=amount, credits_pending=-released)
        case TransferStatus.VOID_PENDING:
            debit, credit = Balance(debits_pending=-released), Balance(credits_pending=-released)
    return (transfer.debit_account, debit), (transfer.credit_account, credit)


def balances_from_transfers(
    transfers: Iterable[Transfer], *, as_of: datetime | None = None
) -> dict[AccountCode, Balance]:
    """Every account's balance recomputed from scratch (effective up to `as_of`).

    Posted figures sum the posted transfers and posts; pending figures sum
    the holds that no post or void (effective by then) has resolved.
    """
    chosen = [t for t in transfers if as_of is None or t.effective_at <= as_of]
    resolved = {t.pending_id for t in chosen if t.is_resolution}
    sums: dict[AccountCode, list[int]] = {}

    def add(account: AccountCode, slot: int, amount: int) -> None:
        sums.setdefault(account, [0, 0, 0, 0])[slot] += amount

    for t in chosen:
        if t.moves_money:
            add(t.debit_account, 0, t.amount)
            add(t.credit_account, 1, t.amount)
        elif t.is_hold and t.id not in resolved:
            add(t.debit_account, 2, t.amount)
            add(t.credit_account, 3, t.amount)
        else:
            # a resolved hold and a void leave no trace; keep the accounts listed
            sums.setdefault(t.debit_account, [0, 0, 0, 0])
            sums.setdefault(t.credit_account, [0, 0, 0, 0])
    return {account: Balance(*s) for account, s in sums.items()}


def balance_from_transfers(
    transfers: Iterable[Transfer], account: AccountCode, *, as_of: datetime | None = None
) -> Balance:
    """One account's balance from the transfers (all of them, or effective by `as_of`)."""
    return balances_from_transfers(transfers, as_of=as_of).get(account, ZERO_BALANCE)
