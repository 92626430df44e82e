"""Balances derived from transfers, and the links a whole-ledger check looks at.

A global account (cash, revenue, refunds, adjustments) keeps no balance
row: its balance is summed from its transfers here, so no posting ever
waits on one hot row. PostgreSQL's SUM(bigint) is numeric: every sum goes
through int(). SQLite's SUM stops with "integer overflow" past 64 bits:
then the same figures are added up in Python, so a check of the ledger
reports what it finds instead of failing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from gasbill.adapters.db.repositories.ledger.rows import TRANSFER
from gasbill.domain.ledger import Balance, TransferKind, TransferStatus

MOVES_MONEY = (str(TransferStatus.POSTED), str(TransferStatus.POST_PENDING))
RESOLVES = (str(TransferStatus.POST_PENDING), str(TransferStatus.VOID_PENDING))

_t = TRANSFER.alias("t")
_r = TRANSFER.alias("r")  # a resolution, or a reversal
_moved = _t.c.status.in_(MOVES_MONEY)
_open_hold = sa.and_(
    _t.c.status == str(TransferStatus.PENDING),
    ~sa.exists().where(_r.c.pending_id == _t.c.id),
)


def _sum_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, _t.c.amount_fen), else_=0)), 0)


NET_POSTED = sa.text(
    "SELECT COALESCE(SUM(t.amount_fen), 0) FROM transfer t "
    "JOIN ledger_account d ON d.id = t.debit_account_id "
    "JOIN ledger_account c ON c.id = t.credit_account_id "
    "WHERE d.code = :debit AND c.code = :credit AND t.kind = :kind AND t.status = 'posted'"
)


def net_posted(session: Session, payer: str, payee: str, kind: TransferKind) -> int:
    """Posted transfers of `kind` payer → payee, less those payee → payer (codes as text)."""
    total = 0
    for source, target, sign in ((payer, payee, 1), (payee, payer, -1)):
        found = session.execute(
            NET_POSTED, {"debit": source, "credit": target, "kind": str(kind)}
        ).scalar_one()
        total += sign * int(found)
    return total


def derived_balance(session: Session, account_id: int) -> Balance:
    """One ledger account's balance, summed from its transfers."""
    debit = _t.c.debit_account_id == account_id
    credit = _t.c.credit_account_id == account_id
    try:
        row = session.execute(
            sa.select(
                _sum_if(sa.and_(debit, _moved)),
                _sum_if(sa.and_(credit, _moved)),
                _sum_if(sa.and_(debit, _open_hold)),
                _sum_if(sa.and_(credit, _open_hold)),
            ).where(sa.or_(debit, credit))
        ).one()
    except OperationalError:
        return _added_in_python(session, sa.or_(debit, credit)).get(account_id, Balance())
    return Balance(*(int(v) for v in row))


# Built once: a whole-ledger check runs these after every step of the simulation, and
# building the expressions cost more than running them on a small ledger.
_BY_SIDE = tuple(
    (sa.select(side, _sum_if(_moved), _sum_if(_open_hold)).group_by(side), offset)
    for side, offset in ((_t.c.debit_account_id, 0), (_t.c.credit_account_id, 1))
)


def derived_balances(session: Session) -> dict[int, Balance]:
    """Every ledger account's balance by id, summed from all transfers."""
    sums: dict[int, list[int]] = {}
    try:
        for query, offset in _BY_SIDE:
            for account_id, posted, pending in session.execute(query):
                totals = sums.setdefault(int(account_id), [0, 0, 0, 0])
                totals[offset] = int(posted)
                totals[2 + offset] = int(pending)
    except OperationalError:
        return _added_in_python(session, sa.true())
    return {account_id: Balance(*totals) for account_id, totals in sums.items()}


def _added_in_python(session: Session, where: sa.ColumnElement[bool]) -> dict[int, Balance]:
    """The same sums, row by row in Python integers (no overflow): SQLite's fallback."""
    sums: dict[int, list[int]] = {}
    query = sa.select(
        _t.c.debit_account_id,
        _t.c.credit_account_id,
        _t.c.amount_fen,
        sa.case((_moved, 0), (_open_hold, 2), else_=-1),
    ).where(where)
    for debit, credit, amount, slot in session.execute(query):
        debits = sums.setdefault(int(debit), [0, 0, 0, 0])
        credits = sums.setdefault(int(credit), [0, 0, 0, 0])
        if slot >= 0:
            debits[slot] += int(amount)
            credits[slot + 1] += int(amount)
    return {account_id: Balance(*totals) for account_id, totals in sums.items()}


_COUNT = sa.select(sa.func.count()).select_from(TRANSFER)


def transfer_count(session: Session) -> int:
    return int(session.execute(_COUNT).scalar_one())


def _link_queries() -> tuple[sa.Select[Any], ...]:
    """The statements of `link_problems`: resolutions that do not fit their hold, links
    that do not fit a status or kind, reversals that do not mirror what they reverse,
    holds resolved and transfers reversed more than once."""
    hold, res = _t, _r
    misfits = (
        sa.select(res.c.id, hold.c.id)
        .join(hold, hold.c.id == res.c.pending_id)
        .where(
            sa.or_(
                hold.c.status != str(TransferStatus.PENDING),
                res.c.debit_account_id != hold.c.debit_account_id,
                res.c.credit_account_id != hold.c.credit_account_id,
                res.c.kind != hold.c.kind,
                sa.and_(
                    res.c.status == str(TransferStatus.POST_PENDING),
                    res.c.amount_fen > hold.c.amount_fen,
                ),
                sa.and_(
                    res.c.status == str(TransferStatus.VOID_PENDING),
                    res.c.amount_fen != hold.c.amount_fen,
                ),
            )
        )
    )
    unlinked = sa.select(TRANSFER.c.id).where(
        sa.or_(
            sa.and_(TRANSFER.c.status.in_(RESOLVES), TRANSFER.c.pending_id.is_(None)),
            sa.and_(~TRANSFER.c.status.in_(RESOLVES), TRANSFER.c.pending_id.is_not(None)),
            sa.and_(TRANSFER.c.kind == str(TransferKind.REVERSAL), TRANSFER.c.reverses.is_(None)),
            sa.and_(
                TRANSFER.c.kind != str(TransferKind.REVERSAL), TRANSFER.c.reverses.is_not(None)
            ),
        )
    )
    original, rev = _t, _r
    mirrors = (
        sa.select(rev.c.id, original.c.id)
        .join(original, original.c.id == rev.c.reverses)
        .where(
            sa.or_(
                ~original.c.status.in_(MOVES_MONEY),
                original.c.kind == str(TransferKind.REVERSAL),
                rev.c.status != str(TransferStatus.POSTED),
                rev.c.debit_account_id != original.c.credit_account_id,
                rev.c.credit_account_id != original.c.debit_account_id,
                rev.c.amount_fen != original.c.amount_fen,
            )
        )
    )
    twice = tuple(
        sa.select(column, sa.func.count())
        .where(column.is_not(None))
        .group_by(column)
        .having(sa.func.count() > 1)
        for column in (TRANSFER.c.pending_id, TRANSFER.c.reverses)
    )
    return misfits, unlinked, mirrors, *twice


_MISFITS, _UNLINKED, _MIRRORS, _RESOLVED_TWICE, _REVERSED_TWICE = _link_queries()


def link_problems(session: Session) -> list[str]:
    """Posts, voids and reversals that do not fit what they name, or come twice."""
    conn = session.connection()  # plain statements: the ORM's execute path costs more than them
    problems = [f"{r} does not fit the hold {h} it resolves" for r, h in conn.execute(_MISFITS)]
    problems += [
        f"{i}: its status or kind does not match its links" for (i,) in conn.execute(_UNLINKED)
    ]
    problems += [
        f"{r} does not mirror {o}, or {o} cannot be reversed" for r, o in conn.execute(_MIRRORS)
    ]
    for query, what in ((_RESOLVED_TWICE, "resolved"), (_REVERSED_TWICE, "reversed")):
        problems += [f"{i} {what} {n} times" for i, n in conn.execute(query)]
    return problems
