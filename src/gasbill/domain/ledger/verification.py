"""Checking a whole ledger: histories replayed from scratch, and the report of a check."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gasbill.domain.errors import LedgerInvariantBroken
from gasbill.domain.ledger.accounts import AccountCode
from gasbill.domain.ledger.balances import ZERO_BALANCE, Balance, balances_from_transfers
from gasbill.domain.ledger.resolutions import fits_hold
from gasbill.domain.ledger.transfers import Transfer


def verify_transfers(transfers: Sequence[Transfer]) -> dict[AccountCode, Balance]:
    """Check a whole ledger's history and return its balances.

    Ids and keys are unique; each post or void names a hold and each
    reversal a reversible transfer in the history; nothing is resolved or
    reversed twice; the balances sum to zero.
    """
    by_id: dict[str, Transfer] = {}
    keys: set[str] = set()
    resolutions: Counter[str] = Counter()
    reversals: Counter[str] = Counter()
    for t in transfers:
        if t.id in by_id or t.idempotency_key in keys:
            raise LedgerInvariantBroken(f"id or key recorded twice: {t}")
        by_id[t.id] = t
        keys.add(t.idempotency_key)
        if t.pending_id is not None:
            resolutions[t.pending_id] += 1
        if t.reverses is not None:
            reversals[t.reverses] += 1
    for pending_id, n in resolutions.items():
        hold = by_id.get(pending_id)
        if hold is None or not hold.is_hold or n > 1:
            raise LedgerInvariantBroken(f"hold {pending_id} resolved {n} times or not a hold")
    for t in transfers:
        hold = by_id[t.pending_id] if t.pending_id is not None else None
        if hold is not None and not fits_hold(t, hold):
            raise LedgerInvariantBroken(f"{t} does not fit its hold {hold}")
    for original_id, n in reversals.items():
        original = by_id.get(original_id)
        if original is None or not original.moves_money or original.reverses or n > 1:
            raise LedgerInvariantBroken(f"{original_id} reversed {n} times or not reversible")
    balances = balances_from_transfers(transfers)
    for account, b in balances.items():
        if min(b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending) < 0:
            raise LedgerInvariantBroken(f"negative totals on {account}: {b}")
    if sum(b.posted for b in balances.values()) or sum(b.pending for b in balances.values()):
        raise LedgerInvariantBroken("the balances of all accounts do not sum to zero")
    return balances


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """What a check of a whole ledger found; no `problems` means it adds up."""

    transfers: int
    accounts: int
    posted_total: int  # the sum of every account's posted balance: zero
    pending_total: int  # the sum of every account's pending balance: zero
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self) -> None:
        """Raise `LedgerInvariantBroken` naming the first problems, if any."""
        if self.problems:
            more = len(self.problems) - 10
            tail = f" (and {more} more)" if more > 0 else ""
            raise LedgerInvariantBroken("; ".join(self.problems[:10]) + tail)


def compare_balances(
    kept: Mapping[AccountCode, Balance], recomputed: Mapping[AccountCode, Balance]
) -> list[str]:
    """A problem for each kept balance that is not what its transfers say."""
    return [
        f"{account}: kept {kept[account]}, transfers say {recomputed.get(account, ZERO_BALANCE)}"
        for account in sorted(kept)
        if kept[account] != recomputed.get(account, ZERO_BALANCE)
    ]


def total_problems(balances: Iterable[Balance]) -> tuple[int, int, list[str]]:
    """The sums of all posted and of all pending balances, and a problem if not zero."""
    posted = pending = 0
    for b in balances:
        posted += b.posted
        pending += b.pending
    problems = []
    if posted or pending:
        problems.append(
            f"the balances of all accounts do not sum to zero: posted {posted}, pending {pending}"
        )
    return posted, pending, problems
