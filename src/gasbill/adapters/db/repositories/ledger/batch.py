"""What the ledger rules ask about a batch of transfers, read up front in a few queries."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from gasbill.adapters.db.repositories.ledger.rows import TRANSFER, AccountInfo, any_of, parts
from gasbill.domain.ledger import AccountCode, Balance, LedgerView, Transfer

Select = Callable[[sa.ColumnElement[bool]], list[Transfer]]


class Prefetched:
    """A `LedgerView` answering for a batch from what was read in bulk.

    Every question the rules ask about the batch (its keys, its ids, the
    holds it resolves and what it reverses, the balances of the accounts it
    locked) is answered from memory; anything else goes to `base`.
    """

    def __init__(
        self,
        session: Session,
        base: LedgerView,
        select: Select,
        transfers: Sequence[Transfer],
        accounts: Mapping[AccountCode, AccountInfo],
        kept: Mapping[int, Balance],
    ) -> None:
        self.session = session
        self.base = base
        self.accounts = accounts
        self.kept = kept
        self.select = select
        pending = {t.pending_id for t in transfers if t.pending_id is not None}
        originals = {t.reverses for t in transfers if t.reverses is not None}
        self.ids = {t.id for t in transfers} | pending | originals
        self.keys = {t.idempotency_key for t in transfers}
        self.pending = pending
        self.originals = originals
        self.by_id = {t.id: t for t in self._fetch(TRANSFER.c.id, self.ids)}
        self.by_key = {
            t.idempotency_key: t for t in self._fetch(TRANSFER.c.idempotency_key, self.keys)
        }
        self.resolutions = {
            t.pending_id: t for t in self._fetch(TRANSFER.c.pending_id, pending) if t.pending_id
        }
        self.reversals = {
            t.reverses: t for t in self._fetch(TRANSFER.c.reverses, originals) if t.reverses
        }

    def _fetch(self, column: sa.Column[Any], values: Collection[str]) -> list[Transfer]:
        found: list[Transfer] = []
        for part in parts(self.session, sorted(values)):
            found += self.select(any_of(self.session, column, part))
        return found

    def transfer(self, transfer_id: str) -> Transfer | None:
        if transfer_id in self.ids:
            return self.by_id.get(transfer_id)
        return self.base.transfer(transfer_id)

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None:
        if idempotency_key in self.keys:
            return self.by_key.get(idempotency_key)
        return self.base.transfer_by_key(idempotency_key)

    def resolution_of(self, pending_id: str) -> Transfer | None:
        if pending_id in self.pending:
            return self.resolutions.get(pending_id)
        return self.base.resolution_of(pending_id)

    def reversal_of(self, transfer_id: str) -> Transfer | None:
        if transfer_id in self.originals:
            return self.reversals.get(transfer_id)
        return self.base.reversal_of(transfer_id)

    def balance(self, account: AccountCode) -> Balance:
        info = self.accounts.get(account)
        if info is not None and info.id in self.kept:
            return self.kept[info.id]
        return self.base.balance(account)

    def overdraft_allowance(self, account: AccountCode) -> int | None:
        info = self.accounts.get(account)
        return info.allowance if info is not None else self.base.overdraft_allowance(account)
