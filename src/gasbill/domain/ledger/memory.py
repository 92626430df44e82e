"""The ledger in memory: the rules, with state kept in dicts (tests and models)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gasbill.domain.errors import InvalidTransfer, LedgerInvariantBroken
from gasbill.domain.ledger.accounts import AccountCode
from gasbill.domain.ledger.balances import ZERO_BALANCE, Balance, balance_changes
from gasbill.domain.ledger.rules import check_group, check_transfer
from gasbill.domain.ledger.transfers import Transfer, TransferGroup
from gasbill.domain.ledger.verification import verify_transfers


class Ledger:
    """An append-only ledger in memory: the rules above, with state kept in dicts."""

    def __init__(self, overdraft_allowances: Mapping[AccountCode, int] | None = None) -> None:
        self._transfers: list[Transfer] = []
        self._by_id: dict[str, Transfer] = {}
        self._by_key: dict[str, Transfer] = {}
        self._resolutions: dict[str, Transfer] = {}
        self._reversals: dict[str, Transfer] = {}
        self._balances: dict[AccountCode, Balance] = {}
        self._allowances: dict[AccountCode, int] = {}
        for account, allowance in (overdraft_allowances or {}).items():
            self.set_overdraft_allowance(account, allowance)

    # -- LedgerView
    def transfer(self, transfer_id: str) -> Transfer | None:
        return self._by_id.get(transfer_id)

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None:
        return self._by_key.get(idempotency_key)

    def resolution_of(self, pending_id: str) -> Transfer | None:
        return self._resolutions.get(pending_id)

    def reversal_of(self, transfer_id: str) -> Transfer | None:
        return self._reversals.get(transfer_id)

    def balance(self, account: AccountCode) -> Balance:
        return self._balances.get(account, ZERO_BALANCE)

    def overdraft_allowance(self, account: AccountCode) -> int | None:
        return self._allowances.get(account)

    # -- changes
    def set_overdraft_allowance(self, account: AccountCode, allowance: int | None) -> None:
        """Limit how far below zero `account` may be debited; None lifts the limit."""
        if allowance is None:
            self._allowances.pop(account, None)
            return
        if isinstance(allowance, bool) or not isinstance(allowance, int) or allowance < 0:
            raise InvalidTransfer(f"an overdraft allowance is fen >= 0, not {allowance!r}")
        self._allowances[account] = allowance

    def apply(self, transfer: Transfer, *, enforce_limits: bool = True) -> Transfer:
        """Record `transfer`; on a replay, return the first one and change nothing."""
        first = check_transfer(transfer, self, enforce_limits=enforce_limits)
        if first is not None:
            return first
        self._record(transfer)
        return transfer

    def apply_group(
        self, group: TransferGroup | Iterable[Transfer], *, enforce_limits: bool = True
    ) -> tuple[Transfer, ...]:
        """Record every transfer of the group or, if one is refused, none."""
        if not isinstance(group, TransferGroup):
            group = TransferGroup(tuple(group))
        firsts = check_group(group, self, enforce_limits=enforce_limits)
        if firsts is not None:
            return firsts
        for transfer in group:
            self._record(transfer)
        return group.transfers

    def _record(self, transfer: Transfer) -> None:
        hold = self._by_id[transfer.pending_id] if transfer.pending_id else None
        for account, change in balance_changes(transfer, hold):
            self._balances[account] = self.balance(account) + change
        self._transfers.append(transfer)
        self._by_id[transfer.id] = transfer
        self._by_key[transfer.idempotency_key] = transfer
        if transfer.pending_id is not None:
            self._resolutions[transfer.pending_id] = transfer
        if transfer.reverses is not None:
            self._reversals[transfer.reverses] = transfer

    # -- reading
    @property
    def transfers(self) -> tuple[Transfer, ...]:
        return tuple(self._transfers)

    def balances(self) -> Mapping[AccountCode, Balance]:
        return dict(self._balances)

    def open_holds(self) -> tuple[Transfer, ...]:
        """Holds not yet posted or voided, oldest first."""
        return tuple(t for t in self._transfers if t.is_hold and t.id not in self._resolutions)

    def verify(self) -> None:
        """Recompute every balance from the transfers; raise if anything disagrees."""
        recomputed = verify_transfers(self._transfers)
        for account in recomputed.keys() | self._balances.keys():
            kept = self.balance(account)
            again = recomputed.get(account, ZERO_BALANCE)
            if kept != again:
                raise LedgerInvariantBroken(f"{account}: kept {kept}, transfers say {again}")
