"""Reconciliation's SQL pieces: the tables, which accounts a pass covers, the ledger as of
an instant (running balance less what took effect after it), holds in flight.

The ledger as of an instant is found through the (account, effective_at)
indexes of `transfer`: recent transfers only, so the cost does not grow with
an account's history.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session

from gasbill.adapters.db.id_lists import IdIn
from gasbill.adapters.db.tables.accounts import Account, Meter, MeterBinding
from gasbill.adapters.db.tables.campaigns import Campaign, CampaignMeter
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.tables.decisions import DecisionState
from gasbill.adapters.db.tables.ledger import LedgerAccount, TransferRow
from gasbill.adapters.db.tables.readings import BillingInbox, MeterReading
from gasbill.domain.commands import CtrlType
from gasbill.service.reconciliation_rows import (
    Scope,
)

FROZEN = 1
PLAIN_TIME = sa.DateTime(timezone=True)
POSTED = ("posted", "post_pending")
VALVES = (str(CtrlType.SET_VALVE_ON), str(CtrlType.SET_VALVE_OFF))


def table_of(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


account_t, meter_t, binding_t = table_of(Account), table_of(Meter), table_of(MeterBinding)
command_t, decision_t = table_of(Command), table_of(DecisionState)
ledger_t, transfer_t = table_of(LedgerAccount), table_of(TransferRow)
reading_t, inbox_t = table_of(MeterReading), table_of(BillingInbox)
campaign_t, campaign_meter_t = table_of(Campaign), table_of(CampaignMeter)


def scope_where(scope: Scope, account_id: Any, company_no: Any) -> sa.ColumnElement[bool]:
    """The accounts of `scope`, as a condition on an account id and company column."""
    found: list[sa.ColumnElement[bool]] = [sa.true()]
    if scope.lo is not None and scope.hi is not None:
        found.append(account_id.between(scope.lo, scope.hi))
    if scope.company_no is not None:
        found.append(company_no == scope.company_no)
    if scope.account_ids is not None:
        found.append(IdIn(account_id, scope.account_ids))
    return sa.and_(*found)


def summed(expr: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(expr), 0)


def credit_after(la: Any, at: Any) -> Any:
    """What took effect on ledger account `la` after `at`, signed (credits minus debits)."""
    c, d = transfer_t.alias("ca"), transfer_t.alias("da")
    credits = (
        sa.select(summed(c.c.amount_fen))
        .where(c.c.credit_account_id == la, c.c.effective_at > at, c.c.status.in_(POSTED))
        .scalar_subquery()
    )
    debits = (
        sa.select(summed(d.c.amount_fen))
        .where(d.c.debit_account_id == la, d.c.effective_at > at, d.c.status.in_(POSTED))
        .scalar_subquery()
    )
    return credits - debits


def holds_at(la: Any, at: Any, *, since: Any = None, posted: bool = False) -> Any:
    """Holds into `la` in flight at `at` (or, `posted`: posted by `at`); yields a select of
    (count, sum) to be made scalar by the caller."""
    h, r = transfer_t.alias("h"), transfer_t.alias("r")
    conditions = [h.c.credit_account_id == la, h.c.status == "pending", h.c.effective_at <= at]
    if since is not None:
        conditions.append(h.c.effective_at >= since)
    # correlated explicitly: `at` belongs to the outermost query, not to the holds' select
    found = sa.exists().where(r.c.pending_id == h.c.id, r.c.effective_at <= at)
    if posted:
        found = found.where(r.c.status == "post_pending")
    found = found.correlate_except(r)
    resolved = found if posted else ~found
    return (
        sa.select(sa.func.count(), summed(h.c.amount_fen))
        .where(*conditions, resolved)
        .correlate_except(h)
    )


def after_instant(cte: Any, keys: tuple[Any, ...], side: str) -> Any:
    """Per row of `cte` (la, at): what took effect on `la`'s `side` after `at`, grouped."""
    t = transfer_t.alias(f"after_{side[:6]}")
    return (
        sa.select(*keys, sa.func.sum(t.c.amount_fen).label("fen"))
        .select_from(
            cte.join(
                t,
                sa.and_(t.c[side] == cte.c.la, t.c.effective_at > cte.c.at, t.c.status.in_(POSTED)),
            )
        )
        .group_by(*keys)
        .subquery()
    )


def hold_sums(
    cte: Any,
    keys: tuple[Any, ...],
    at: Any,
    *,
    since: Any = None,
    posted: bool = False,
    lateral: bool = False,
) -> Any:
    """Per row of `cte` (la, …): holds into `la` in flight at `at` (or, `posted`: posted by
    then), started at or after `since`: their count `n` and sum `fen`. Join it to `cte`
    with `join_sums`.

    With `lateral` (PostgreSQL), a lateral subquery: each row's holds found through the
    ledger account's index, one row per row of `cte` (the full path asks for a few
    accounts, and a join let the planner read every hold of the table: a sequential scan
    of `transfer` per query; a grouped subquery joined back by the keys was planned, its
    rows misestimated, as the inner side of a nested loop, grouped again for each row:
    0.24-0.35 s for 1,000 accounts at 1,000,000). Otherwise grouped by `keys`."""
    h, r = transfer_t.alias("hs"), transfer_t.alias("hr")
    started = sa.and_(h.c.credit_account_id == cte.c.la, h.c.status == "pending")
    started = sa.and_(started, h.c.effective_at <= at)
    if since is not None:
        started = sa.and_(started, h.c.effective_at >= since)
    ended = sa.and_(r.c.pending_id == h.c.id, r.c.effective_at <= at)
    if lateral:
        if posted:
            joined = h.join(r, sa.and_(ended, r.c.status == "post_pending"))
        else:
            joined = h.outerjoin(r, ended)
        each = sa.select(
            sa.func.count().label("n"), sa.func.sum(h.c.amount_fen).label("fen")
        ).select_from(joined)
        each = each.where(started) if posted else each.where(started, r.c.seq.is_(None))
        return each.lateral("posted_holds" if posted else "holds_in_flight")
    outer = cte.join(h, started)
    if posted:
        outer = outer.join(r, sa.and_(ended, r.c.status == "post_pending"))
    else:
        outer = outer.outerjoin(r, ended)
    query = sa.select(
        *keys, sa.func.count().label("n"), sa.func.sum(h.c.amount_fen).label("fen")
    ).select_from(outer)
    if not posted:
        query = query.where(r.c.seq.is_(None))
    return query.group_by(*keys).subquery()


def join_sums(joined: Any, sums: Any, keys: tuple[Any, ...], *, lateral: bool) -> Any:
    """`joined` (which holds `hold_sums`' `cte`) with its sums: the lateral subquery beside
    each row, or the grouped subquery by its keys (none for a row without holds)."""
    if lateral:
        return joined.join(sums, sa.true())
    return joined.outerjoin(sums, same_keys(sums, keys))


def same_keys(sub: Any, keys: tuple[Any, ...]) -> Any:
    return sa.and_(*(sub.c[k.name] == k for k in keys))


def scalar_of(select: Any, column: int) -> Any:
    return select.with_only_columns(select.selected_columns[column]).scalar_subquery()


class StoreBase:
    """A reconciliation store on one session: which database it is, and its timestamps."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pg = session.get_bind().dialect.name == "postgresql"

    def _time(self, column: Any) -> Any:
        """A timestamp as the driver gives it: on PostgreSQL (the session in UTC, see
        `prepare`) psycopg's aware datetime is kept as it is, not converted again per row."""
        return sa.type_coerce(column, PLAIN_TIME) if self.pg else column
