"""Reconciliation's first pass, set-based: the database compares, Python sees only groups.

Two queries per range of accounts. System mode: the ledger's balance against
its transfers and the valve against the thresholds are compared in SQL; out
come the number of accounts that agree and the ids of those that may not.
Meter mode: every integer check (a reading, no top-up in flight or answered
after it, its balance against meter_credit then, an answered charge state)
is made in SQL; what needs the codec or the tariff catalog (the charge
state's counters, the price) comes out grouped by the values it depends on,
with a count, so that Python decodes and prices each distinct group once.

The pass only has to be sound: an account it counts as agreeing must agree
by the service's own checks. Anything it is unsure of (a replaced meter, two
answers at the same instant, …) goes to the full path, which checks again
and builds the findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from gasbill.adapters.db.repositories.reconciliation_meter_parts import (
    MeterParts,
    materialized,
    one_binding,
)
from gasbill.adapters.db.repositories.reconciliation_sql import (
    POSTED,
    VALVES,
    account_t,
    binding_t,
    command_t,
    ledger_t,
    meter_t,
    scope_where,
    transfer_t,
)
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountKind
from gasbill.domain.outbox import CommandStatus
from gasbill.service.reconciliation_rows import MeterGroup, Scope, Verdicts

DONE = str(CommandStatus.DONE)
OFF = str(CtrlType.SET_VALVE_OFF)


class VerdictStore(MeterParts):
    def verdicts(self, scope: Scope, as_of: datetime, balance_milli: int) -> Verdicts:
        system, unsure = 0, []
        with self._by_index():
            found = self.session.execute(self._system(scope, as_of)).all()
            meter = self.session.execute(self._meter(scope, as_of, balance_milli)).all()
        for bad, n in found:
            if bad is None:
                system += int(n)
            else:
                unsure.append(int(bad))
        groups = []
        for row in meter:
            if row[0] is not None:
                unsure.append(int(row[0]))
            else:
                n, first, *keys = row[1:]
                keys[5], keys[6] = int(keys[5]), int(keys[6])  # sums: numeric on PostgreSQL
                groups.append(MeterGroup(int(n), int(first), *keys))
        return Verdicts(system, groups, unsure)

    def members(
        self, scope: Scope, as_of: datetime, balance_milli: int, groups: Sequence[MeterGroup]
    ) -> list[int]:
        """The ids of these groups' accounts (groups that did not agree: rare)."""
        if not groups:
            return []
        v = self._meter_rows(scope, as_of, balance_milli).subquery("v")
        names = (
            "tariff_id",
            "persons",
            "opened_on",
            "confirmed_key",
            "state_data",
            "posted_times",
            "posted_fen",
            "reading_at",
            "curr_price_milli",
            "price_data",
            "price_at",
        )
        each = []
        for group in groups:
            each.append(
                sa.and_(
                    *(
                        v.c[name].is_(None) if value is None else v.c[name] == value
                        for name, value in zip(names, group.key(), strict=True)
                    )
                )
            )
        query = sa.select(v.c.account_id).where(v.c.ok == 1, sa.or_(*each))
        with self._by_index():
            return [int(i) for i in self.session.scalars(query).all()]

    @contextmanager
    def _by_index(self) -> Iterator[None]:
        """PostgreSQL: the first pass's joins as index steps from the range's accounts (no
        hash or merge join), for the queries in the block, so that a range costs what its
        accounts do. The planner, costing pages as if read from disk, joined a range's
        accounts to their bindings, ledger accounts and meters by reading those tables
        whole, whatever the range: at 100,000 accounts that costs about what the index
        steps do, but it grows with the table, not the range."""
        if not self.pg:
            yield
            return
        self.session.execute(sa.text("SET LOCAL enable_hashjoin = off"))
        self.session.execute(sa.text("SET LOCAL enable_mergejoin = off"))
        try:
            yield
        finally:
            self.session.execute(sa.text("SET LOCAL enable_hashjoin = on"))
            self.session.execute(sa.text("SET LOCAL enable_mergejoin = on"))

    # -- system mode ---------------------------------------------------------------------
    def _system(self, scope: Scope, as_of: datetime) -> Any:
        """Per system-mode account: its ledger's running balance against its posted
        transfers, and its valve (the last valve command done) against its thresholds."""
        base = self._system_accounts(scope, as_of)
        if self.pg:  # per account through the ledger account's indexes on `transfer`
            cr = _posted_each(base, "credit_account_id", as_of)
            dr = _posted_each(base, "debit_account_id", as_of)
            joined = base.join(cr, sa.true()).join(dr, sa.true())
        else:
            cr = _posted_sums(base, "credit_account_id", as_of)
            dr = _posted_sums(base, "debit_account_id", as_of)
            joined = base.outerjoin(cr, cr.c.la == base.c.la).outerjoin(dr, dr.c.la == base.c.la)
        zero = sa.literal(0)
        summed = sa.func.coalesce(cr.c.every, zero) - sa.func.coalesce(dr.c.every, zero)
        balance = sa.func.coalesce(cr.c.then, zero) - sa.func.coalesce(dr.c.then, zero)
        valve_ok = sa.case(
            (sa.func.coalesce(base.c.valve, "") == OFF, balance < base.c.reopen_fen),
            else_=balance > base.c.cutoff_fen,
        )
        ok = sa.and_(base.c.plain, base.c.posted == summed, valve_ok)
        bad = sa.case((ok, sa.null()), else_=base.c.account_id).label("bad")
        return sa.select(bad, sa.func.count()).select_from(joined).group_by(bad)

    def _system_accounts(self, scope: Scope, as_of: datetime) -> Any:
        """The range's accounts not in meter mode, with their active meter: thresholds,
        whether plain (system mode, one binding), the prepaid ledger account and its balance
        posted, and the valve's last command done by `as_of`."""
        a, b, la = account_t, binding_t, ledger_t
        prepaid = sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.PREPAID))
        return materialized(
            sa.select(
                a.c.id.label("account_id"),
                a.c.cutoff_fen,
                sa.case(
                    (a.c.reopen_fen > a.c.cutoff_fen, a.c.reopen_fen), else_=a.c.cutoff_fen + 1
                ).label("reopen_fen"),
                sa.and_(a.c.billing_mode == "system", one_binding(a)).label("plain"),
                la.c.id.label("la"),
                sa.func.coalesce(la.c.credits_posted_fen - la.c.debits_posted_fen, 0).label(
                    "posted"
                ),
                _last_valve(as_of).label("valve"),
            )
            .select_from(
                a.join(b, sa.and_(b.c.account_id == a.c.id, b.c.unbound_at.is_(None))).outerjoin(
                    la, prepaid
                )
            )
            .where(scope_where(scope, a.c.id, a.c.company_no), a.c.billing_mode != "meter")
            .cte("system")
        )

    # -- meter mode ------------------------------------------------------------------------
    def _meter(self, scope: Scope, as_of: datetime, balance_milli: int) -> Any:
        v = (
            self._meter_rows(scope, as_of, balance_milli)
            .cte("v")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        bad = sa.case((v.c.ok == 1, sa.null()), else_=v.c.account_id).label("bad")
        keys = (
            v.c.tariff_id,
            v.c.persons,
            v.c.opened_on,
            v.c.confirmed_key,
            v.c.state_data,
            v.c.posted_times,
            v.c.posted_fen,
            self._time(v.c.reading_at),
            v.c.curr_price_milli,
            v.c.price_data,
            self._time(v.c.price_at),
        )
        return sa.select(bad, sa.func.count(), sa.func.min(v.c.account_id), *keys).group_by(
            bad, *keys
        )

    def _meter_rows(self, scope: Scope, as_of: datetime, balance_milli: int) -> Any:
        """Per meter-mode account: its integer verdict (`ok`), and the values the counters
        and price checks need. The latest reading and what took effect on meter_credit
        after it are index steps per meter (they do not grow with the history); so, on
        PostgreSQL, are the commands' answers and the holds (lateral subqueries: a range
        costs what its accounts do), elsewhere grouped joins over the range; the confirmed
        price changes are a grouped join."""
        base = materialized(self._with_reading(_meter_accounts(scope), as_of).cte("base"))
        if self.pg:
            latest, found = self._answers_each(base, as_of)
            answers = _Answers(
                latest.c.top_up_at,
                found.c.state_n,
                found.c.state_data,
                latest.c.state_at,
                found.c.price_n,
                found.c.price_data,
                latest.c.price_at,
            )
            holds = self._holds_each(base, latest.c.state_at)
            joined = base.join(latest, sa.true()).join(found, sa.true()).join(holds, sa.true())
        else:
            grouped = self._answers(base, as_of)
            answers = _Answers(*(grouped.c[name] for name in _Answers._fields))
            holds = self._holds(base, grouped)
            joined = base.join(grouped, grouped.c.account_id == base.c.account_id).outerjoin(
                holds, holds.c.account_id == base.c.account_id
            )
        confirmed = self._confirmed(scope)
        ok = self._integers_agree(base, answers, holds, balance_milli)
        return sa.select(
            base.c.account_id,
            sa.case((ok, 1), else_=0).label("ok"),
            base.c.tariff_id,
            base.c.persons,
            base.c.opened_on,
            confirmed.c.key.label("confirmed_key"),
            answers.state_data.label("state_data"),
            sa.func.coalesce(holds.c.posted_times, 0).label("posted_times"),
            sa.func.coalesce(holds.c.posted_fen, 0).label("posted_fen"),
            base.c.reading_at,
            base.c.curr_price_milli,
            answers.price_data.label("price_data"),
            answers.price_at.label("price_at"),
        ).select_from(joined.outerjoin(confirmed, confirmed.c.account_id == base.c.account_id))

    def _integers_agree(self, base: Any, answers: _Answers, holds: Any, balance_milli: int) -> Any:
        """A meter-mode account's integer checks: no meter ever removed; a reading with a
        balance; one charge state answered at its latest instant; no top-up answered after
        the reading nor held in flight at it; the balance within `balance_milli` of
        meter_credit then (now, less what took effect after); a price answer, if any, alone
        at its instant."""
        credit = (
            base.c.credit_now
            - sa.func.coalesce(self._after(base, "credit_account_id"), 0)
            + sa.func.coalesce(self._after(base, "debit_account_id"), 0)
        )
        return sa.and_(
            base.c.alone,
            base.c.remain_milli.is_not(None),
            answers.state_n == 1,
            sa.or_(answers.top_up_at.is_(None), answers.top_up_at <= base.c.reading_at),
            sa.func.coalesce(holds.c.flight, 0) == 0,
            sa.func.abs(base.c.remain_milli - 10 * credit) <= balance_milli,
            sa.or_(answers.price_at.is_(None), answers.price_n == 1),
        )


class _Answers(NamedTuple):
    """The columns of an account's latest answers (`MeterParts._answers` or, on
    PostgreSQL, `_answers_each`)."""

    top_up_at: Any
    state_n: Any
    state_data: Any
    state_at: Any
    price_n: Any
    price_data: Any
    price_at: Any


def _last_valve(as_of: datetime) -> Any:
    """The ctrl_type of the last valve command done to the binding's meter by `as_of`."""
    b, v = binding_t, command_t.alias("v")
    return (
        sa.select(v.c.ctrl_type)
        .where(
            v.c.meter_id == b.c.meter_id,
            v.c.status == DONE,
            v.c.ctrl_type.in_(VALVES),
            v.c.created_at <= as_of,
            v.c.finished_at <= as_of,  # done by then: one done later was on its way
        )
        .order_by(v.c.finished_at.desc(), v.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _posted_sums(base: Any, side: str, as_of: datetime) -> Any:
    """Per plain account's prepaid ledger account on `side` of posted transfers: their sum
    (`every`) and the sum of those in effect by `as_of` (`then`)."""
    t = transfer_t.alias(f"t_{side[:6]}")
    return (
        sa.select(
            t.c[side].label("la"),
            sa.func.sum(t.c.amount_fen).label("every"),
            sa.func.sum(t.c.amount_fen).filter(t.c.effective_at <= as_of).label("then"),
        )
        .select_from(t.join(base, base.c.la == t.c[side]))
        .where(base.c.plain, t.c.status.in_(POSTED))
        .group_by(t.c[side])
        .subquery(f"s_{side[:6]}")
    )


def _posted_each(base: Any, side: str, as_of: datetime) -> Any:
    """PostgreSQL: `_posted_sums` per account, a lateral subquery on the ledger account's
    index (a range costs what its accounts do, not a pass over every transfer). Summed for
    every account: only a plain one's sums are compared."""
    t = transfer_t.alias(f"t_{side[:6]}")
    return (
        sa.select(
            sa.func.sum(t.c.amount_fen).label("every"),
            sa.func.sum(t.c.amount_fen).filter(t.c.effective_at <= as_of).label("then"),
        )
        .where(t.c[side] == base.c.la, t.c.status.in_(POSTED))
        .lateral(f"s_{side[:6]}")
    )


def _meter_accounts(scope: Scope) -> Any:
    """The range's meter-mode accounts with their active meter, meter_credit's ledger
    account and its balance posted, and whether no meter was ever removed (`alone`)."""
    a, b, m, la = account_t, binding_t, meter_t, ledger_t
    credit_la = sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.METER_CREDIT))
    return (
        sa.select(
            a.c.id.label("account_id"),
            a.c.tariff_id,
            a.c.persons,
            a.c.opened_on,
            b.c.meter_id,
            b.c.bound_at,
            m.c.company_no,
            m.c.comm_no,
            la.c.id.label("la"),
            sa.func.coalesce(la.c.credits_posted_fen - la.c.debits_posted_fen, 0).label(
                "credit_now"
            ),
            one_binding(a).label("alone"),
        )
        .select_from(
            a.join(b, sa.and_(b.c.account_id == a.c.id, b.c.unbound_at.is_(None)))
            .join(m, m.c.id == b.c.meter_id)
            .outerjoin(la, credit_la)
        )
        .where(scope_where(scope, a.c.id, a.c.company_no), a.c.billing_mode == "meter")
    )
