"""Reconciliation's reads, set-based: one query per kind of fact for a whole range of accounts.

Every query answers for all accounts whose id lies in [lo, hi] (and a
company, or a list of ids, when asked) at once; nothing here runs a query
per account. The ledger as of an instant is the ledger account's running
balance less what took effect after that instant: recent transfers only,
found through the (account, effective_at) indexes of `transfer`, so the cost
does not grow with an account's history. Rows are plain tuples: a report
covers a million accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlmodel import Session

from gasbill.adapters.db.tables.accounts import Account, Meter, MeterBinding
from gasbill.adapters.db.tables.campaigns import Campaign, CampaignMeter
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.tables.decisions import DecisionState
from gasbill.adapters.db.tables.ledger import LedgerAccount, TransferRow
from gasbill.adapters.db.tables.readings import BillingInbox, MeterReading
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountKind
from gasbill.domain.outbox import CommandStatus

FROZEN = 1
PLAIN_TIME = sa.DateTime(timezone=True)
POSTED = ("posted", "post_pending")
VALVES = (str(CtrlType.SET_VALVE_ON), str(CtrlType.SET_VALVE_OFF))


def _t(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


account_t, meter_t, binding_t = _t(Account), _t(Meter), _t(MeterBinding)
command_t, decision_t = _t(Command), _t(DecisionState)
ledger_t, transfer_t = _t(LedgerAccount), _t(TransferRow)
reading_t, inbox_t = _t(MeterReading), _t(BillingInbox)
campaign_t, campaign_meter_t = _t(Campaign), _t(CampaignMeter)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which accounts: ids in [lo, hi] (None: any), of one company, or only these ids."""

    lo: int | None
    hi: int | None
    company_no: str | None = None
    account_ids: Sequence[int] | None = None

    def where(self, account_id: Any, company_no: Any) -> sa.ColumnElement[bool]:
        found: list[sa.ColumnElement[bool]] = [sa.true()]
        if self.lo is not None and self.hi is not None:
            found.append(account_id.between(self.lo, self.hi))
        if self.company_no is not None:
            found.append(company_no == self.company_no)
        if self.account_ids is not None:
            found.append(account_id.in_(list(self.account_ids)))
        return sa.and_(*found)


class AccountRow(NamedTuple):
    account_id: int
    number: str
    company_no: str
    mode: str
    tariff_id: str
    persons: int
    opened_on: date
    cutoff_fen: int
    reopen_fen: int
    meter_id: int
    comm_no: str
    bound_at: datetime
    opening_litres: int
    prepaid_la: int | None
    prepaid_posted: int
    credit_la: int | None
    credit_posted: int
    below_cutoff_since: datetime | None


class ReadingRow(NamedTuple):
    """A frozen reading with a balance, and meter_credit (and holds in flight) at its time."""

    account_id: int
    comm_no: str
    at: datetime
    remain_milli: int
    curr_price_milli: int | None
    credit_fen: int
    in_flight_fen: int


class ReplyRow(NamedTuple):
    """A command's latest answer; for a top-up meter_credit then, for a charge state the
    top-ups the ledger had posted (and had in flight) then, since the meter was bound."""

    account_id: int
    command_id: int
    at: datetime
    return_data: str
    credit_fen: int = 0
    in_flight_fen: int = 0
    posted_times: int = 0
    posted_fen: int = 0
    in_flight_times: int = 0


class HoldRow(NamedTuple):
    account_id: int
    transfer_id: str
    amount_fen: int
    start: datetime
    end: datetime | None
    posted: bool


class ValveRow(NamedTuple):
    account_id: int
    command_id: int
    ctrl_type: str
    status: str
    at: datetime | None


class ReplacementRow(NamedTuple):
    account_id: int
    binding_id: int
    old_comm_no: str
    removed_at: datetime
    final_litres: int | None
    last_at: datetime | None
    last_litres: int | None
    stray: int
    new_comm_no: str | None
    opening_litres: int | None
    first_at: datetime | None
    first_litres: int | None


def _sum(expr: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(expr), 0)


def _credit_after(la: Any, at: Any) -> Any:
    """What took effect on ledger account `la` after `at`, signed (credits minus debits)."""
    c, d = transfer_t.alias("ca"), transfer_t.alias("da")
    credits = (
        sa.select(_sum(c.c.amount_fen))
        .where(c.c.credit_account_id == la, c.c.effective_at > at, c.c.status.in_(POSTED))
        .scalar_subquery()
    )
    debits = (
        sa.select(_sum(d.c.amount_fen))
        .where(d.c.debit_account_id == la, d.c.effective_at > at, d.c.status.in_(POSTED))
        .scalar_subquery()
    )
    return credits - debits


def _holds_at(la: Any, at: Any, *, since: Any = None, posted: bool = False) -> Any:
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
        sa.select(sa.func.count(), _sum(h.c.amount_fen))
        .where(*conditions, resolved)
        .correlate_except(h)
    )


def _after(cte: Any, keys: tuple[Any, ...], side: str) -> Any:
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


def _hold_sums(
    cte: Any, keys: tuple[Any, ...], at: Any, *, since: Any = None, posted: bool = False
) -> Any:
    """Per row of `cte` (la, …): holds into `la` in flight at `at` (or, `posted`: posted by
    then), started at or after `since`: their count `n` and sum `fen`, grouped."""
    h, r = transfer_t.alias("hs"), transfer_t.alias("hr")
    started = sa.and_(h.c.credit_account_id == cte.c.la, h.c.status == "pending")
    started = sa.and_(started, h.c.effective_at <= at)
    if since is not None:
        started = sa.and_(started, h.c.effective_at >= since)
    ended = sa.and_(r.c.pending_id == h.c.id, r.c.effective_at <= at)
    joined = cte.join(h, started)
    if posted:
        joined = joined.join(r, sa.and_(ended, r.c.status == "post_pending"))
    else:
        joined = joined.outerjoin(r, ended)
    query = sa.select(
        *keys, sa.func.count().label("n"), sa.func.sum(h.c.amount_fen).label("fen")
    ).select_from(joined)
    if not posted:
        query = query.where(r.c.seq.is_(None))
    return query.group_by(*keys).subquery()


def _same(sub: Any, keys: tuple[Any, ...]) -> Any:
    return sa.and_(*(sub.c[k.name] == k for k in keys))


def _scalar(select: Any, column: int) -> Any:
    return select.with_only_columns(select.selected_columns[column]).scalar_subquery()


class ReconciliationStore:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pg = session.get_bind().dialect.name == "postgresql"

    def _time(self, column: Any) -> Any:
        """A timestamp as the driver gives it: on PostgreSQL (the session in UTC, see
        `prepare`) psycopg's aware datetime is kept as it is, not converted again per row."""
        return sa.type_coerce(column, PLAIN_TIME) if self.pg else column

    def prepare(self) -> None:
        """PostgreSQL: no JIT for this transaction (the planner's costs for a range of
        accounts call for it, and compiling takes several times what the queries run),
        and timestamps read in UTC."""
        if self.pg:
            self.session.execute(sa.text("SET LOCAL jit = off"))
            self.session.execute(sa.text("SET LOCAL TIME ZONE 'UTC'"))

    def id_range(self, scope: Scope) -> tuple[int, int] | None:
        """The smallest and largest account id in scope with an active meter."""
        query = (
            sa.select(sa.func.min(account_t.c.id), sa.func.max(account_t.c.id))
            .join(binding_t, binding_t.c.account_id == account_t.c.id)
            .where(scope.where(account_t.c.id, account_t.c.company_no))
            .where(binding_t.c.unbound_at.is_(None))
        )
        lo, hi = self.session.execute(query).one()
        return None if lo is None else (int(lo), int(hi))

    def accounts(self, scope: Scope) -> list[AccountRow]:
        """Accounts with their active meter, ledger accounts and recorded cut-off, by id."""
        prepaid, credit = ledger_t.alias("lp"), ledger_t.alias("lc")
        a, b = account_t, binding_t
        query = (
            sa.select(
                a.c.id,
                a.c.number,
                a.c.company_no,
                a.c.billing_mode,
                a.c.tariff_id,
                a.c.persons,
                a.c.opened_on,
                a.c.cutoff_fen,
                a.c.reopen_fen,
                b.c.meter_id,
                meter_t.c.comm_no,
                self._time(b.c.bound_at),
                b.c.opening_litres,
                prepaid.c.id,
                sa.func.coalesce(prepaid.c.credits_posted_fen - prepaid.c.debits_posted_fen, 0),
                credit.c.id,
                sa.func.coalesce(credit.c.credits_posted_fen - credit.c.debits_posted_fen, 0),
                self._time(decision_t.c.below_cutoff_since),
            )
            .join(b, sa.and_(b.c.account_id == a.c.id, b.c.unbound_at.is_(None)))
            .join(meter_t, meter_t.c.id == b.c.meter_id)
            .outerjoin(
                prepaid,
                sa.and_(prepaid.c.account_id == a.c.id, prepaid.c.kind == str(AccountKind.PREPAID)),
            )
            .outerjoin(
                credit,
                sa.and_(
                    credit.c.account_id == a.c.id, credit.c.kind == str(AccountKind.METER_CREDIT)
                ),
            )
            .outerjoin(decision_t, decision_t.c.account_id == a.c.id)
            .where(scope.where(a.c.id, a.c.company_no))
            .order_by(a.c.id)
        )
        return [AccountRow(*row) for row in self.session.execute(query).all()]

    # -- meter mode: readings and answers -------------------------------------------------
    def latest_readings(
        self, scope: Scope, as_of: datetime, *, comparable: bool = False
    ) -> dict[int, ReadingRow]:
        """Each meter-mode account's latest frozen reading with a balance (by `as_of`), of
        whichever meter it had then; with `comparable`, the latest with no hold in flight."""
        a, b, r, la = account_t, binding_t, reading_t, ledger_t
        latest = (
            sa.select(
                b.c.account_id.label("account_id"),
                la.c.id.label("la"),
                r.c.company_no.label("company_no"),
                r.c.meter_comm_no.label("comm_no"),
                sa.func.max(r.c.acquisition_time).label("at"),
            )
            .select_from(
                a.join(b, b.c.account_id == a.c.id)
                .join(meter_t, meter_t.c.id == b.c.meter_id)
                .join(
                    r,
                    sa.and_(
                        r.c.company_no == meter_t.c.company_no,
                        r.c.meter_comm_no == meter_t.c.comm_no,
                        r.c.data_type == FROZEN,
                        r.c.acquisition_time >= b.c.bound_at,
                        sa.or_(b.c.unbound_at.is_(None), r.c.acquisition_time < b.c.unbound_at),
                        r.c.acquisition_time <= as_of,
                        r.c.remain_money.is_not(None),
                    ),
                )
                .outerjoin(
                    la,
                    sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.METER_CREDIT)),
                )
            )
            .where(scope.where(a.c.id, a.c.company_no), a.c.billing_mode == "meter")
            .group_by(b.c.account_id, la.c.id, r.c.company_no, r.c.meter_comm_no)
        )
        if comparable:
            flight = _scalar(_holds_at(la.c.id, r.c.acquisition_time), 0)
            latest = latest.where(flight == 0)
        else:
            latest = self._latest_by_index(scope, as_of)
        # computed once, not inlined into every use of `at`
        cte = latest.cte("latest").prefix_with("MATERIALIZED", dialect="postgresql")
        r2 = reading_t.alias("r2")
        at_reading = sa.and_(
            r2.c.company_no == cte.c.company_no,
            r2.c.meter_comm_no == cte.c.comm_no,
            r2.c.data_type == FROZEN,
            r2.c.acquisition_time == cte.c.at,
        )
        keys = (cte.c.account_id, cte.c.comm_no)
        credits = _after(cte, keys, "credit_account_id")
        debits = _after(cte, keys, "debit_account_id")
        flight = _hold_sums(cte, keys, cte.c.at)
        query = (
            sa.select(
                cte.c.account_id,
                cte.c.comm_no,
                self._time(cte.c.at),
                r2.c.remain_money,
                r2.c.curr_price,
                sa.func.coalesce(la.c.credits_posted_fen - la.c.debits_posted_fen, 0)
                - sa.func.coalesce(credits.c.fen, 0)
                + sa.func.coalesce(debits.c.fen, 0),
                sa.func.coalesce(flight.c.fen, 0),
            )
            .select_from(
                cte.join(r2, at_reading)
                .outerjoin(la, la.c.id == cte.c.la)
                .outerjoin(credits, _same(credits, keys))
                .outerjoin(debits, _same(debits, keys))
                .outerjoin(flight, _same(flight, keys))
            )
            .where(cte.c.at.is_not(None))
        )
        found: dict[int, ReadingRow] = {}
        for a_id, comm, at, remain, price, credit, flight in self.session.execute(query).all():
            reading = ReadingRow(a_id, comm, at, remain, price, int(credit), int(flight))
            held = found.get(reading.account_id)
            if held is None or reading.at > held.at:  # a replaced meter's and the new one's
                found[reading.account_id] = reading
        return found

    def _latest_by_index(self, scope: Scope, as_of: datetime) -> Any:
        """Per binding of a meter-mode account, its meter's latest frozen reading with a
        balance: one backward step on the readings' primary key per meter, so the cost
        follows the number of meters, not the length of their history."""
        a, b, r, la = account_t, binding_t, reading_t.alias("rl"), ledger_t
        probe = (
            sa.select(r.c.acquisition_time)
            .where(
                r.c.company_no == meter_t.c.company_no,
                r.c.meter_comm_no == meter_t.c.comm_no,
                r.c.data_type == FROZEN,
                r.c.acquisition_time <= as_of,
                r.c.acquisition_time >= b.c.bound_at,
                sa.or_(b.c.unbound_at.is_(None), r.c.acquisition_time < b.c.unbound_at),
                r.c.remain_money.is_not(None),
            )
            .order_by(r.c.acquisition_time.desc())
            .limit(1)
            .scalar_subquery()
        )
        return (
            sa.select(
                b.c.account_id.label("account_id"),
                la.c.id.label("la"),
                meter_t.c.company_no.label("company_no"),
                meter_t.c.comm_no.label("comm_no"),
                probe.label("at"),
            )
            .select_from(
                a.join(b, b.c.account_id == a.c.id)
                .join(meter_t, meter_t.c.id == b.c.meter_id)
                .outerjoin(
                    la,
                    sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.METER_CREDIT)),
                )
            )
            .where(scope.where(a.c.id, a.c.company_no), a.c.billing_mode == "meter")
        )

    def _latest_reply(self, scope: Scope, ctrl_type: CtrlType, as_of: datetime) -> Any:
        """Per meter-mode account, its active meter's latest answered command of a type."""
        a, b, c, la = account_t, binding_t, command_t, ledger_t.alias("rla")
        return (
            sa.select(
                b.c.account_id.label("account_id"),
                b.c.meter_id.label("meter_id"),
                b.c.bound_at.label("bound_at"),
                la.c.id.label("la"),
                sa.func.max(c.c.finished_at).label("at"),
            )
            .select_from(
                a.join(b, sa.and_(b.c.account_id == a.c.id, b.c.unbound_at.is_(None)))
                .join(
                    c,
                    sa.and_(
                        c.c.meter_id == b.c.meter_id,
                        c.c.ctrl_type == str(ctrl_type),
                        c.c.status == str(CommandStatus.DONE),
                        c.c.return_data.is_not(None),
                        c.c.finished_at <= as_of,
                    ),
                )
                .outerjoin(
                    la,
                    sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.METER_CREDIT)),
                )
            )
            .where(scope.where(a.c.id, a.c.company_no), a.c.billing_mode == "meter")
            .group_by(b.c.account_id, b.c.meter_id, b.c.bound_at, la.c.id)
            .cte(f"latest_{ctrl_type.value.rsplit('.', 1)[-1]}")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )

    def replies(
        self, scope: Scope, ctrl_type: CtrlType, as_of: datetime, *, ledger: bool = False
    ) -> dict[int, ReplyRow]:
        """Each account's latest answer of a type. A charge state comes with the top-ups the
        ledger had posted by then; with `ledger` (asked only for accounts that differ: it
        costs more), a top-up with meter_credit and the holds in flight then, a charge
        state with the holds in flight then."""
        latest = self._latest_reply(scope, ctrl_type, as_of)
        c2, la = command_t.alias("c2"), ledger_t
        columns: list[Any] = [
            latest.c.account_id,
            c2.c.id,
            self._time(latest.c.at),
            c2.c.return_data,
        ]
        if ctrl_type is CtrlType.REMOTE_CHARGE and ledger:
            columns += [
                sa.func.coalesce(la.c.credits_posted_fen - la.c.debits_posted_fen, 0)
                - sa.func.coalesce(_credit_after(la.c.id, latest.c.at), 0),
                _scalar(_holds_at(la.c.id, latest.c.at), 1),
            ]
        joins: list[Any] = []
        if ctrl_type is CtrlType.GET_CHARGE_STATE:
            keys = (latest.c.account_id,)
            since = latest.c.bound_at
            posted = _hold_sums(latest, keys, latest.c.at, since=since, posted=True)
            joins.append(posted)
            columns += [sa.literal(0)]
            if ledger:
                flight = _hold_sums(latest, keys, latest.c.at, since=since)
                joins.append(flight)
                columns += [sa.func.coalesce(flight.c.fen, 0)]
            else:
                columns += [sa.literal(0)]
            columns += [sa.func.coalesce(posted.c.n, 0), sa.func.coalesce(posted.c.fen, 0)]
            columns += [sa.func.coalesce(flight.c.n, 0) if ledger else sa.literal(0)]
        joined = latest.join(
            c2,
            sa.and_(
                c2.c.meter_id == latest.c.meter_id,
                c2.c.finished_at == latest.c.at,
                c2.c.ctrl_type == str(ctrl_type),
                c2.c.status == str(CommandStatus.DONE),
            ),
        ).outerjoin(la, la.c.id == latest.c.la)
        for sums in joins:
            joined = joined.outerjoin(sums, sums.c.account_id == latest.c.account_id)
        query = sa.select(*columns).select_from(joined).order_by(c2.c.id)
        rows = self.session.execute(query).all()
        if len(columns) == 4:
            return {row[0]: ReplyRow(*row) for row in rows}
        return {row[0]: ReplyRow(*row[:4], *map(int, row[4:])) for row in rows}

    def confirmations(self, scope: Scope) -> dict[int, dict[str, datetime]]:
        """Per account, each price change its meter confirmed (setprice done), and when."""
        a, cm, c = account_t, campaign_meter_t, command_t
        query = (
            sa.select(cm.c.account_id, campaign_t.c.label, c.c.finished_at)
            .join(campaign_t, campaign_t.c.id == cm.c.campaign_id)
            .join(a, a.c.id == cm.c.account_id)
            .join(c, c.c.id == cm.c.setprice_id)
            .where(
                scope.where(a.c.id, a.c.company_no),
                campaign_t.c.tariff_id == a.c.tariff_id,
                c.c.status == str(CommandStatus.DONE),
                c.c.finished_at.is_not(None),
            )
        )
        found: dict[int, dict[str, datetime]] = {}
        for account_id, label, finished in self.session.execute(query).all():
            found.setdefault(int(account_id), {})[label] = finished
        return found

    # -- evidence for the few that differ ---------------------------------------------------
    def holds(self, account_ids: Sequence[int], as_of: datetime) -> list[HoldRow]:
        """Holds into meter_credit up to `as_of`, with when each was resolved (by `as_of`)."""
        if not account_ids:
            return []
        hold, res = transfer_t.alias("hold"), transfer_t.alias("res")
        query = (
            sa.select(
                ledger_t.c.account_id,
                hold.c.id,
                hold.c.amount_fen,
                hold.c.effective_at,
                res.c.effective_at,
                res.c.status == "post_pending",
            )
            .select_from(
                hold.join(ledger_t, ledger_t.c.id == hold.c.credit_account_id).outerjoin(
                    res, sa.and_(res.c.pending_id == hold.c.id, res.c.effective_at <= as_of)
                )
            )
            .where(
                ledger_t.c.account_id.in_(list(account_ids)),
                ledger_t.c.kind == str(AccountKind.METER_CREDIT),
                hold.c.status == "pending",
                hold.c.effective_at <= as_of,
            )
            .order_by(hold.c.effective_at)
        )
        return [
            HoldRow(int(a), tid, int(fen), start, end, bool(posted))
            for a, tid, fen, start, end, posted in self.session.execute(query).all()
        ]

    def coverage(
        self, account_ids: Sequence[int], as_of: datetime
    ) -> dict[int, tuple[int, datetime, datetime, int]]:
        """Per account's active meter: frozen readings by `as_of` (count, first, last) since
        it was bound, and those stored but not yet billed."""
        if not account_ids:
            return {}
        m, b = meter_t, binding_t
        bound = sa.and_(b.c.meter_id == m.c.id, b.c.unbound_at.is_(None))
        counts = (
            sa.select(
                b.c.account_id,
                sa.func.count(),
                sa.func.min(reading_t.c.acquisition_time),
                sa.func.max(reading_t.c.acquisition_time),
            )
            .select_from(
                reading_t.join(
                    m,
                    sa.and_(
                        m.c.company_no == reading_t.c.company_no,
                        m.c.comm_no == reading_t.c.meter_comm_no,
                    ),
                ).join(b, bound)
            )
            .where(
                b.c.account_id.in_(list(account_ids)),
                reading_t.c.data_type == FROZEN,
                reading_t.c.acquisition_time <= as_of,
            )
            .group_by(b.c.account_id)
        )
        unbilled = (
            sa.select(b.c.account_id, sa.func.count())
            .select_from(
                inbox_t.join(
                    m,
                    sa.and_(
                        m.c.company_no == inbox_t.c.company_no,
                        m.c.comm_no == inbox_t.c.meter_comm_no,
                    ),
                ).join(b, bound)
            )
            .where(
                b.c.account_id.in_(list(account_ids)),
                inbox_t.c.handled_at.is_(None),
                inbox_t.c.acquisition_time <= as_of,
            )
            .group_by(b.c.account_id)
        )
        waiting = {int(a): int(n) for a, n in self.session.execute(unbilled).all()}
        return {
            int(a): (int(n), first, last, waiting.get(int(a), 0))
            for a, n, first, last in self.session.execute(counts).all()
        }
