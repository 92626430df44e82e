"""Ledger rows: the two tables as Core, ledger accounts by code and id, transfers <-> rows.

Core statements, not ORM objects: the ledger writes many rows at once
(executemany) and updates balance columns in place (`x = x + :change`).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from gasbill.adapters.db.tables import accounts as _accounts  # noqa: F401  (registers the tables)
from gasbill.adapters.db.tables import ledger as _tables  # noqa: F401  (registers the tables)
from gasbill.domain.errors import InvalidTransfer, UnknownLedgerAccount
from gasbill.domain.ledger import CUSTOMER_KINDS, AccountCode, Balance, Transfer

TRANSFER = SQLModel.metadata.tables["transfer"]
ACCOUNT = SQLModel.metadata.tables["ledger_account"]
OWNER = SQLModel.metadata.tables["account"]  # the customer account a ledger account belongs to
BALANCE_COLUMNS = (
    "debits_posted_fen",
    "credits_posted_fen",
    "debits_pending_fen",
    "credits_pending_fen",
)
CHUNK = 1000  # values per IN (...) list
_T = TypeVar("_T")


def chunks(values: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def any_of(
    session: Session, column: sa.ColumnElement[Any], values: Sequence[Any]
) -> sa.ColumnElement[bool]:
    """`column IN (values)`: on PostgreSQL one array parameter, cheap to send and to plan."""
    if is_postgres(session):
        item = column.type
        if isinstance(item, sa.TypeDecorator):
            item = item.impl_instance
        array = sa.bindparam("values", list(values), type_=postgresql.ARRAY(item), unique=True)
        return column == sa.any_(array)
    return column.in_(values)


def parts(session: Session, values: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """`values` in pieces small enough for one IN list (one piece on PostgreSQL)."""
    return chunks(values, 50_000 if is_postgres(session) else CHUNK)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What the ledger needs of a ledger account row; none of it ever changes."""

    id: int
    code: AccountCode
    keeps_balance: bool
    allowance: int | None


@functools.lru_cache(maxsize=200_000)
def parse_code(code: str) -> AccountCode:
    """`AccountCode.parse`, remembered: a code's text means the same in any database."""
    return AccountCode.parse(code)


def balance_of(row: Any) -> Balance:
    return Balance(*(int(getattr(row, name)) for name in BALANCE_COLUMNS))


# -- transfers ------------------------------------------------------------------


def _limit(column: str) -> int:
    length = getattr(TRANSFER.c[column].type, "length", None)
    assert isinstance(length, int)
    return length


_LIMITS = {name: _limit(name) for name in ("idempotency_key", "reason", "actor", "id")}


def check_columns(transfer: Transfer) -> None:
    """Refuse what a column cannot hold, the same way on SQLite (which would keep it)."""
    for name, limit in _LIMITS.items():
        if len(getattr(transfer, name)) > limit:
            raise InvalidTransfer(f"a transfer's {name} is at most {limit} characters")


def to_row(
    transfer: Transfer, accounts: Mapping[AccountCode, AccountInfo], group_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "idempotency_key": transfer.idempotency_key,
        "debit_account_id": accounts[transfer.debit_account].id,
        "credit_account_id": accounts[transfer.credit_account].id,
        "amount_fen": transfer.amount,
        "kind": str(transfer.kind),
        "status": str(transfer.status),
        "pending_id": transfer.pending_id,
        "reverses": transfer.reverses,
        "group_id": group_id,
        "reason": transfer.reason,
        "actor": transfer.actor,
        "effective_at": transfer.effective_at,
        "recorded_at": transfer.recorded_at,
    }


def from_row(row: Any, codes: Mapping[int, AccountCode]) -> Transfer:
    return Transfer(
        id=row.id,
        idempotency_key=row.idempotency_key,
        debit_account=codes[row.debit_account_id],
        credit_account=codes[row.credit_account_id],
        amount=int(row.amount_fen),
        kind=row.kind,
        effective_at=row.effective_at,
        recorded_at=row.recorded_at,
        status=row.status,
        pending_id=row.pending_id,
        reverses=row.reverses,
        reason=row.reason,
        actor=row.actor,
    )


# -- ledger accounts ------------------------------------------------------------


class AccountDirectory:
    """The ledger accounts one session has met, by code and by id, each read once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._by_code: dict[AccountCode, AccountInfo] = {}
        self._by_id: dict[int, AccountInfo] = {}

    def get(self, code: AccountCode) -> AccountInfo | None:
        if code not in self._by_code:
            self._load(ACCOUNT.c.code, [str(code)])
        return self._by_code.get(code)

    def codes(self, ids: Iterable[int]) -> Mapping[int, AccountCode]:
        """The codes of these ledger account ids (read in one go if not known yet)."""
        missing = sorted({i for i in ids if i not in self._by_id})
        if missing:
            self._load(ACCOUNT.c.id, missing)
        return {i: info.code for i, info in self._by_id.items()}

    def many(self, codes: Iterable[AccountCode]) -> dict[AccountCode, AccountInfo]:
        """These accounts; global ones are opened on first use, customer ones must exist."""
        wanted = set(codes)
        missing = sorted(str(c) for c in wanted if c not in self._by_code)
        if missing:
            self._load(ACCOUNT.c.code, missing)
        unknown = [c for c in wanted if c not in self._by_code]
        customers = sorted(str(c) for c in unknown if c.kind in CUSTOMER_KINDS)
        if customers:
            raise UnknownLedgerAccount(f"no ledger account {', '.join(customers)}")
        if unknown:
            self._insert_missing([{"code": c} for c in unknown])
            self._load(ACCOUNT.c.code, [str(c) for c in unknown])
        return {c: self._by_code[c] for c in wanted}

    def ensure(
        self, code: AccountCode, *, account_id: int | None = None, allowance: int | None = None
    ) -> AccountInfo:
        """The account for `code`, opened if missing (safe when two open it at once)."""
        info = self.get(code)
        if info is None:
            self._insert_missing([{"code": code, "account_id": account_id, "allowance": allowance}])
            self._load(ACCOUNT.c.code, [str(code)])
            info = self._by_code[code]
        return info

    def lock(self, infos: Iterable[AccountInfo]) -> dict[int, Balance]:
        """Lock the accounts that keep balances, in ascending id order; their balances.

        PostgreSQL: `SELECT … FOR UPDATE`. SQLite: the unit of work's
        BEGIN IMMEDIATE already serialises writers, so a plain read does.
        """
        ids = sorted({i.id for i in infos if i.keeps_balance})
        balances: dict[int, Balance] = {}
        if ids and is_postgres(self.session):
            self._lock_owners(ids)
        for part in parts(self.session, ids):
            query = (
                sa.select(ACCOUNT.c.id, *(ACCOUNT.c[n] for n in BALANCE_COLUMNS))
                .where(any_of(self.session, ACCOUNT.c.id, part))
                .order_by(ACCOUNT.c.id)
            )
            if is_postgres(self.session):
                query = query.with_for_update()
            for row in self.session.execute(query):
                balances[row.id] = balance_of(row)
        return balances

    def _lock_owners(self, ids: Sequence[int]) -> None:
        """Lock the customer accounts owning these ledger accounts first, ascending.

        The one global order of row locks: an account before its ledger
        accounts, each kind in ascending id. A use case that locked the
        account already (a payment, billing) loses nothing; one that reaches
        the ledger first (a command report posting a hold) now waits on the
        account instead of deadlocking with a payment holding it.
        """
        for part in parts(self.session, list(ids)):
            owners = sa.select(ACCOUNT.c.account_id).where(
                any_of(self.session, ACCOUNT.c.id, part), ACCOUNT.c.account_id.is_not(None)
            )
            self.session.execute(
                sa.select(OWNER.c.id)
                .where(OWNER.c.id.in_(owners))
                .order_by(OWNER.c.id)
                .with_for_update(key_share=True)
            )

    def _load(self, column: sa.Column[Any], values: Sequence[Any]) -> None:
        for part in parts(self.session, values):
            query = sa.select(
                ACCOUNT.c.id,
                ACCOUNT.c.code,
                ACCOUNT.c.keeps_balance,
                ACCOUNT.c.overdraft_allowance_fen,
            ).where(any_of(self.session, column, part))
            for row in self.session.execute(query):
                allowance = row.overdraft_allowance_fen
                info = AccountInfo(
                    id=row.id,
                    code=parse_code(row.code),
                    keeps_balance=bool(row.keeps_balance),
                    allowance=None if allowance is None else int(allowance),
                )
                self._by_code[info.code] = info
                self._by_id[info.id] = info

    def _insert_missing(self, wanted: Collection[dict[str, Any]]) -> None:
        rows = [
            {
                "code": str(w["code"]),
                "kind": str(w["code"].kind),
                "account_id": w.get("account_id"),
                "keeps_balance": w["code"].kind in CUSTOMER_KINDS,
                "overdraft_allowance_fen": w.get("allowance"),
                **dict.fromkeys(BALANCE_COLUMNS, 0),
            }
            for w in wanted
        ]
        dialect = postgresql if is_postgres(self.session) else sqlite
        statement = dialect.insert(ACCOUNT).on_conflict_do_nothing(index_elements=["code"])
        self.session.execute(statement, rows)
