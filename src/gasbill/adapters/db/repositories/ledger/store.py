"""The ledger in the database (DESIGN §6): the domain rules over ledger_account and transfer.

Writing follows one pattern: read the ledger accounts, lock the customer
ones (ascending id, so two writers never deadlock), run the pure rules
against what is recorded, insert inside a savepoint, then move the running
balances of the customer accounts. A unique key lost to a concurrent writer
rolls the savepoint back and is answered like a replay: the first transfer,
or the conflict.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gasbill.adapters.db.id_lists import IdIn
from gasbill.adapters.db.repositories.ledger.batch import Prefetched
from gasbill.adapters.db.repositories.ledger.rows import (
    ACCOUNT,
    BALANCE_COLUMNS,
    CHUNK,
    TRANSFER,
    AccountDirectory,
    AccountInfo,
    balance_of,
    check_columns,
    from_row,
    parse_code,
    to_row,
)
from gasbill.adapters.db.repositories.ledger.sums import (
    derived_balance,
    derived_balances,
    link_problems,
    net_posted,
    transfer_count,
)
from gasbill.adapters.db.repositories.ledger.writes import add_to_balances, insert_transfers
from gasbill.adapters.db.tables.ledger import LedgerAccount
from gasbill.domain.errors import DuplicateTransferId
from gasbill.domain.ledger import (
    ZERO_BALANCE,
    AccountCode,
    Balance,
    LedgerReport,
    LedgerView,
    StagedView,
    Transfer,
    TransferGroup,
    TransferKind,
    balance_changes,
    check_group,
    check_transfer,
    compare_balances,
    total_problems,
)


class SqlLedger:
    """The database ledger; also the `LedgerView` the domain rules read."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.directory = AccountDirectory(session)
        self._seen: dict[str, Transfer] = {}  # transfers read by id; they never change

    # -- ledger accounts --------------------------------------------------------
    def ensure_account(
        self, code: AccountCode, *, account_id: int | None = None, allowance: int | None = None
    ) -> LedgerAccount:
        """The ledger account for `code`, opened on first use.

        Customer accounts keep running balances (only their own postings lock
        them); global ones derive theirs from transfers.
        """
        info = self.directory.ensure(code, account_id=account_id, allowance=allowance)
        row = self.session.get(LedgerAccount, info.id)
        assert row is not None
        return row

    def lock(self, codes: Iterable[AccountCode]) -> dict[AccountCode, Balance]:
        """Lock these accounts' balance rows until the transaction ends; their balances.

        Only customer accounts have one (global accounts are never locked);
        rows are locked in ascending id order, as every writer here does.
        """
        accounts = self.directory.many(codes)
        kept = self.directory.lock(accounts.values())
        return {code: kept[info.id] for code, info in accounts.items() if info.id in kept}

    # -- LedgerView ---------------------------------------------------------------
    def transfer(self, transfer_id: str) -> Transfer | None:
        if transfer_id in self._seen:
            return self._seen[transfer_id]
        return self._first(TRANSFER.c.id == transfer_id)

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None:
        return self._first(TRANSFER.c.idempotency_key == idempotency_key)

    def resolution_of(self, pending_id: str) -> Transfer | None:
        return self._first(TRANSFER.c.pending_id == pending_id)

    def reversal_of(self, transfer_id: str) -> Transfer | None:
        return self._first(TRANSFER.c.reverses == transfer_id)

    def balance(self, account: AccountCode) -> Balance:
        info = self.directory.get(account)
        if info is None:
            return ZERO_BALANCE
        if info.keeps_balance:
            row = self.session.execute(
                sa.select(*(ACCOUNT.c[n] for n in BALANCE_COLUMNS)).where(ACCOUNT.c.id == info.id)
            ).one()
            return balance_of(row)
        return derived_balance(self.session, info.id)

    def overdraft_allowance(self, account: AccountCode) -> int | None:
        info = self.directory.get(account)
        return None if info is None else info.allowance

    # -- writing ------------------------------------------------------------------
    def record(self, transfer: Transfer, *, enforce_limits: bool = True) -> Transfer:
        """Record `transfer`; a replay of its key returns the first one and changes nothing.

        Raises IdempotencyConflict (same key, other request), OverdraftRefused,
        HoldAlreadyResolved, AlreadyReversed… as the domain rules say, and
        UnknownLedgerAccount for a customer ledger account never opened.
        """
        check_columns(transfer)
        accounts = self.directory.many([transfer.debit_account, transfer.credit_account])
        self.directory.lock(accounts.values())
        first = check_transfer(transfer, self, enforce_limits=enforce_limits)
        if first is not None:
            return first
        clash = self._insert([transfer], accounts)
        if clash is not None:
            first = check_transfer(transfer, self, enforce_limits=enforce_limits)
            if first is not None:
                return first
            raise DuplicateTransferId(f"{transfer} clashes with a recorded transfer") from clash
        self._move_balances([transfer], accounts, self)
        return transfer

    def record_group(
        self, transfers: Iterable[Transfer], *, enforce_limits: bool = True
    ) -> tuple[Transfer, ...]:
        """Record all of the transfers or none; a replay of the group returns the first ones."""
        group = (
            transfers if isinstance(transfers, TransferGroup) else TransferGroup(tuple(transfers))
        )
        for transfer in group:
            check_columns(transfer)
        accounts = self.directory.many(
            c for t in group for c in (t.debit_account, t.credit_account)
        )
        self.directory.lock(accounts.values())
        firsts = check_group(group, self, enforce_limits=enforce_limits)
        if firsts is not None:
            return firsts
        staged = StagedView(self)
        for transfer in group:
            staged.add(transfer)
        clash = self._insert(group.transfers, accounts, group_id=uuid.uuid4().hex)
        if clash is not None:
            firsts = check_group(group, self, enforce_limits=enforce_limits)
            if firsts is not None:
                return firsts
            raise DuplicateTransferId(
                "a transfer of the group clashes with a recorded one"
            ) from clash
        self._move_balances(group.transfers, accounts, staged)
        return group.transfers

    def record_many(
        self, transfers: Iterable[Transfer], *, enforce_limits: bool = False
    ) -> list[Transfer]:
        """Record a batch of independent transfers in a few round trips (billing).

        Each is checked on its own (a replay returns its first transfer, a
        refused one raises and records nothing of the batch). Round trips do
        not grow with the batch on PostgreSQL: the accounts, their locks
        (ascending id), the known keys and ids, one INSERT over arrays and
        one UPDATE moving every customer account's balance once. Limits are
        off by default: charges record gas already burnt.
        """
        batch = list(transfers)
        if not batch:
            return []
        for transfer in batch:
            check_columns(transfer)
        accounts = self.directory.many(
            c for t in batch for c in (t.debit_account, t.credit_account)
        )
        kept = self.directory.lock(accounts.values())
        staged = StagedView(Prefetched(self.session, self, self._select, batch, accounts, kept))
        out: list[Transfer] = []
        new: list[Transfer] = []
        for transfer in batch:
            first = check_transfer(transfer, staged, enforce_limits=enforce_limits)
            if first is None:
                staged.add(transfer)
                new.append(transfer)
            out.append(first or transfer)
        if new and self._insert(new, accounts) is not None:
            # a concurrent writer took one of the keys: settle them one by one, still
            # all or nothing
            with self.session.begin_nested():
                return [self.record(t, enforce_limits=enforce_limits) for t in batch]
        self._move_balances(new, accounts, staged)
        return out

    def _insert(
        self,
        transfers: Sequence[Transfer],
        accounts: Mapping[AccountCode, AccountInfo],
        *,
        group_id: str | None = None,
    ) -> IntegrityError | None:
        """Insert the rows in a savepoint; the error if a unique key was taken meanwhile."""
        rows = [to_row(t, accounts, group_id) for t in transfers]
        try:
            with self.session.begin_nested():
                insert_transfers(self.session, rows)
        except IntegrityError as exc:
            return exc
        for transfer in transfers:
            self._seen[transfer.id] = transfer
        return None

    def _move_balances(
        self,
        transfers: Iterable[Transfer],
        accounts: Mapping[AccountCode, AccountInfo],
        view: LedgerView,
    ) -> None:
        """One relative UPDATE per customer account the transfers touch, in id order."""
        changes: dict[int, Balance] = {}
        for transfer in transfers:
            hold = view.transfer(transfer.pending_id) if transfer.pending_id else None
            for code, change in balance_changes(transfer, hold):
                info = accounts[code]
                if info.keeps_balance:
                    changes[info.id] = changes.get(info.id, ZERO_BALANCE) + change
        add_to_balances(self.session, changes)

    # -- reading ------------------------------------------------------------------
    def net_posted(self, payer: AccountCode, payee: AccountCode, kind: TransferKind) -> int:
        return net_posted(self.session, str(payer), str(payee), kind)

    def balances_of(self, account_id: int) -> dict[AccountCode, Balance]:
        """The balances of one customer's ledger accounts (prepaid, meter_credit)."""
        rows = self.session.execute(
            sa.select(ACCOUNT.c.code, *(ACCOUNT.c[n] for n in BALANCE_COLUMNS)).where(
                ACCOUNT.c.account_id == account_id
            )
        )
        return {parse_code(row.code): balance_of(row) for row in rows}

    def balances_of_accounts(
        self, account_ids: Sequence[int]
    ) -> dict[int, dict[AccountCode, Balance]]:
        """`balances_of` for many customers at once: one query per `CHUNK` of them."""
        found: dict[int, dict[AccountCode, Balance]] = {i: {} for i in account_ids}
        ids = sorted(found)
        for start in range(0, len(ids), CHUNK):
            rows = self.session.execute(
                sa.select(
                    ACCOUNT.c.account_id, ACCOUNT.c.code, *(ACCOUNT.c[n] for n in BALANCE_COLUMNS)
                ).where(IdIn(ACCOUNT.c.account_id, ids[start : start + CHUNK]))
            )
            for row in rows:
                found[int(row.account_id)][parse_code(row.code)] = balance_of(row)
        return found

    def transfers_of(self, account_id: int, offset: int = 0, limit: int = 100) -> list[Transfer]:
        """The ledger lines touching one customer's ledger accounts, newest first."""
        ids = sa.select(ACCOUNT.c.id).where(ACCOUNT.c.account_id == account_id).scalar_subquery()
        touching = sa.or_(
            TRANSFER.c.debit_account_id.in_(ids), TRANSFER.c.credit_account_id.in_(ids)
        )
        return self._select(touching, newest_first=True, offset=offset, limit=limit)

    def iter_transfers(self, *, batch: int = 1000) -> Iterator[Transfer]:
        """Every transfer in the order it was recorded, read in batches."""
        after = 0
        while True:
            rows = self.session.execute(
                sa.select(TRANSFER)
                .where(TRANSFER.c.seq > after)
                .order_by(TRANSFER.c.seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            yield from self._convert(rows)
            after = rows[-1].seq

    def balances(self) -> dict[AccountCode, Balance]:
        """Every ledger account's balance: kept columns, or summed for global accounts."""
        derived = derived_balances(self.session)
        out: dict[AccountCode, Balance] = {}
        for row in self.session.execute(sa.select(ACCOUNT)):
            code = parse_code(row.code)
            out[code] = balance_of(row) if row.keeps_balance else derived.get(row.id, ZERO_BALANCE)
        return out

    def verify(self) -> LedgerReport:
        """Recompute every balance from the transfers and check the whole ledger.

        Kept balance columns must equal their transfers, all balances sum to
        zero, and every post, void and reversal fits what it names, once.
        """
        derived = derived_balances(self.session)
        kept: dict[AccountCode, Balance] = {}
        recomputed: dict[AccountCode, Balance] = {}
        current: list[Balance] = []
        rows = self.session.execute(sa.select(ACCOUNT)).all()
        for row in rows:
            code = parse_code(row.code)
            recomputed[code] = derived.get(row.id, ZERO_BALANCE)
            if row.keeps_balance:
                kept[code] = balance_of(row)
            current.append(kept.get(code, recomputed[code]))
        posted, pending, problems = total_problems(current)
        problems += compare_balances(kept, recomputed) + link_problems(self.session)
        return LedgerReport(
            transfers=transfer_count(self.session),
            accounts=len(rows),
            posted_total=posted,
            pending_total=pending,
            problems=tuple(problems),
        )

    # -- rows -----------------------------------------------------------------------
    def _first(self, where: sa.ColumnElement[bool]) -> Transfer | None:
        found = self._select(where, limit=1)
        return found[0] if found else None

    def _select(
        self,
        where: sa.ColumnElement[bool],
        *,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Transfer]:
        order = TRANSFER.c.seq.desc() if newest_first else TRANSFER.c.seq
        query = sa.select(TRANSFER).where(where).order_by(order).offset(offset).limit(limit)
        return self._convert(self.session.execute(query).all())

    def _convert(self, rows: Sequence[Any]) -> list[Transfer]:
        codes = self.directory.codes(
            i for row in rows for i in (row.debit_account_id, row.credit_account_id)
        )
        out = [from_row(row, codes) for row in rows]
        for transfer in out:
            self._seen[transfer.id] = transfer
        return out
