"""The two bulk writes of the ledger: transfer rows in, balance columns moved.

PostgreSQL gets each as ONE statement over arrays (`unnest`), whatever the
batch size; SQLite, in process, as an executemany. Either way the balance
rows were locked beforehand in ascending id order, so the UPDATE takes no
new lock.

The balance UPDATE is guarded: a row moves only if every figure stays
within ±MAX_BALANCE, and a row that did not move refuses the whole
transaction. The domain rules refuse such a transfer first; this is the
storage's own line, so an overflow can never become a REAL on SQLite (which
converts silently) or a "bigint out of range" on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from gasbill.adapters.db.bulk import array_param, unnested
from gasbill.adapters.db.repositories.ledger.rows import (
    ACCOUNT,
    BALANCE_COLUMNS,
    TRANSFER,
    is_postgres,
)
from gasbill.domain.errors import AmountOutOfRange
from gasbill.domain.ledger import MAX_BALANCE, Balance


def insert_transfers(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    if not is_postgres(session) or len(rows) == 1:
        session.execute(sa.insert(TRANSFER), list(rows))
        return
    session.execute(sa.insert(TRANSFER).from_select(list(rows[0]), unnested(TRANSFER, rows)))


def add_to_balances(session: Session, changes: Mapping[int, Balance]) -> None:
    """`column = column + change` for each ledger account id and its change."""
    if not changes:
        return
    ids = sorted(changes)
    deltas = {
        name: [getattr(changes[i], field) for i in ids]
        for name, field in zip(
            BALANCE_COLUMNS,
            ("debits_posted", "credits_posted", "debits_pending", "credits_pending"),
            strict=True,
        )
    }
    if any(abs(d) > 2 * MAX_BALANCE for column in deltas.values() for d in column):
        raise AmountOutOfRange(f"a balance change beyond ±{2 * MAX_BALANCE} fen; nothing recorded")
    if is_postgres(session) and len(ids) > 1:
        arrays = [array_param("a_id", ids, sa.BigInteger())]
        arrays += [array_param(f"a_{n}", deltas[n], sa.BigInteger()) for n in BALANCE_COLUMNS]
        change = sa.func.unnest(*arrays).table_valued("ledger_id", *BALANCE_COLUMNS)
        change = change.render_derived()
        moved = session.execute(
            sa.update(ACCOUNT)
            .where(ACCOUNT.c.id == change.c.ledger_id, *_bounded(change.c))
            .values({n: ACCOUNT.c[n] + change.c[n] for n in BALANCE_COLUMNS})
        )
        _check_moved(moved, ids)
        return
    delta = {n: sa.bindparam(f"d_{n}", type_=sa.BigInteger()) for n in BALANCE_COLUMNS}
    statement = (
        sa.update(ACCOUNT)
        .where(ACCOUNT.c.id == sa.bindparam("ledger_id"), *_bounded(delta))
        .values({n: ACCOUNT.c[n] + delta[n] for n in BALANCE_COLUMNS})
    )
    params = [
        {"ledger_id": i, **{f"d_{n}": deltas[n][k] for n in BALANCE_COLUMNS}}
        for k, i in enumerate(ids)
    ]
    _check_moved(session.execute(statement, params), ids)


def _bounded(delta: Any) -> list[sa.ColumnElement[bool]]:
    """Each figure after the change within ±MAX_BALANCE (an overflow fails it too)."""
    return [sa.between(ACCOUNT.c[n] + delta[n], -MAX_BALANCE, MAX_BALANCE) for n in BALANCE_COLUMNS]


def _check_moved(result: Any, ids: Sequence[int]) -> None:
    if result.rowcount != len(ids):
        raise AmountOutOfRange(
            f"a balance would leave the ledger's bound of ±{MAX_BALANCE} fen; nothing recorded"
        )
