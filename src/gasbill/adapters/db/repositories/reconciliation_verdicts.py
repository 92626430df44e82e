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

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gasbill.adapters.db.repositories.reconciliation_sql import (
    FROZEN,
    POSTED,
    VALVES,
    StoreBase,
    account_t,
    binding_t,
    campaign_meter_t,
    campaign_t,
    command_t,
    ledger_t,
    meter_t,
    reading_t,
    scope_where,
    transfer_t,
)
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountKind
from gasbill.domain.outbox import CommandStatus
from gasbill.service.reconciliation_rows import MeterGroup, Scope, Verdicts

DONE = str(CommandStatus.DONE)
OFF = str(CtrlType.SET_VALVE_OFF)
SEP = "\x1f"


class VerdictStore(StoreBase):
    def verdicts(self, scope: Scope, as_of: datetime, balance_milli: int) -> Verdicts:
        system, unsure = 0, []
        for bad, n in self.session.execute(self._system(scope, as_of)).all():
            if bad is None:
                system += int(n)
            else:
                unsure.append(int(bad))
        groups = []
        meter = self._meter(scope, as_of, balance_milli)
        for row in self.session.execute(meter).all():
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
        return [int(i) for i in self.session.scalars(query).all()]

    # -- system mode ---------------------------------------------------------------------
    def _system(self, scope: Scope, as_of: datetime) -> Any:
        """Per system-mode account: its ledger's running balance against its posted
        transfers, and its valve (the last valve command done) against its thresholds."""
        a, b, la, v = account_t, binding_t, ledger_t, command_t.alias("v")
        last_valve = (
            sa.select(v.c.ctrl_type)
            .where(
                v.c.meter_id == b.c.meter_id,
                v.c.status == DONE,
                v.c.ctrl_type.in_(VALVES),
                v.c.created_at <= as_of,
                v.c.finished_at.is_not(None),
            )
            .order_by(v.c.finished_at.desc(), v.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        prepaid = sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.PREPAID))
        base = _materialized(
            sa.select(
                a.c.id.label("account_id"),
                a.c.cutoff_fen,
                sa.case(
                    (a.c.reopen_fen > a.c.cutoff_fen, a.c.reopen_fen), else_=a.c.cutoff_fen + 1
                ).label("reopen_fen"),
                sa.and_(a.c.billing_mode == "system", _one_binding(a)).label("plain"),
                la.c.id.label("la"),
                sa.func.coalesce(la.c.credits_posted_fen - la.c.debits_posted_fen, 0).label(
                    "posted"
                ),
                last_valve.label("valve"),
            )
            .select_from(
                a.join(b, sa.and_(b.c.account_id == a.c.id, b.c.unbound_at.is_(None))).outerjoin(
                    la, prepaid
                )
            )
            .where(scope_where(scope, a.c.id, a.c.company_no), a.c.billing_mode != "meter")
            .cte("system")
        )
        sums = {}
        for side in ("credit_account_id", "debit_account_id"):
            t = transfer_t.alias(f"t_{side[:6]}")
            sums[side] = (
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
        cr, dr = sums["credit_account_id"], sums["debit_account_id"]
        zero = sa.literal(0)
        summed = sa.func.coalesce(cr.c.every, zero) - sa.func.coalesce(dr.c.every, zero)
        balance = sa.func.coalesce(cr.c.then, zero) - sa.func.coalesce(dr.c.then, zero)
        valve_ok = sa.case(
            (sa.func.coalesce(base.c.valve, "") == OFF, balance < base.c.reopen_fen),
            else_=balance > base.c.cutoff_fen,
        )
        ok = sa.and_(base.c.plain, base.c.posted == summed, valve_ok)
        bad = sa.case((ok, sa.null()), else_=base.c.account_id).label("bad")
        return (
            sa.select(bad, sa.func.count())
            .select_from(
                base.outerjoin(cr, cr.c.la == base.c.la).outerjoin(dr, dr.c.la == base.c.la)
            )
            .group_by(bad)
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
        after it are index steps per meter (they do not grow with the history); the
        commands' answers, the holds and the confirmed price changes are grouped joins
        over the range."""
        a, b, m, la = account_t, binding_t, meter_t, ledger_t
        credit_la = sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.METER_CREDIT))
        accounts = (
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
                _one_binding(a).label("alone"),
            )
            .select_from(
                a.join(b, sa.and_(b.c.account_id == a.c.id, b.c.unbound_at.is_(None)))
                .join(m, m.c.id == b.c.meter_id)
                .outerjoin(la, credit_la)
            )
            .where(scope_where(scope, a.c.id, a.c.company_no), a.c.billing_mode == "meter")
        )
        base = _materialized(self._with_reading(accounts, as_of).cte("base"))
        answers = self._answers(base, as_of)
        holds = self._holds(base, answers)
        confirmed = self._confirmed(scope)
        credit = (
            base.c.credit_now
            - sa.func.coalesce(self._after(base, "credit_account_id"), 0)
            + sa.func.coalesce(self._after(base, "debit_account_id"), 0)
        )
        ok = sa.and_(
            base.c.alone,
            base.c.remain_milli.is_not(None),
            answers.c.state_n == 1,
            sa.or_(answers.c.top_up_at.is_(None), answers.c.top_up_at <= base.c.reading_at),
            sa.func.coalesce(holds.c.flight, 0) == 0,
            sa.func.abs(base.c.remain_milli - 10 * credit) <= balance_milli,
            sa.or_(answers.c.price_at.is_(None), answers.c.price_n == 1),
        )
        return sa.select(
            base.c.account_id,
            sa.case((ok, 1), else_=0).label("ok"),
            base.c.tariff_id,
            base.c.persons,
            base.c.opened_on,
            confirmed.c.key.label("confirmed_key"),
            answers.c.state_data,
            sa.func.coalesce(holds.c.posted_times, 0).label("posted_times"),
            sa.func.coalesce(holds.c.posted_fen, 0).label("posted_fen"),
            base.c.reading_at,
            base.c.curr_price_milli,
            answers.c.price_data,
            answers.c.price_at,
        ).select_from(
            base.join(answers, answers.c.account_id == base.c.account_id)
            .outerjoin(holds, holds.c.account_id == base.c.account_id)
            .outerjoin(confirmed, confirmed.c.account_id == base.c.account_id)
        )

    def _with_reading(self, accounts: Any, as_of: datetime) -> Any:
        """The accounts with their meter's latest frozen reading with a balance by `as_of`:
        one backward step on the readings' primary key per meter (PostgreSQL: a lateral
        join; SQLite: the same step as scalar subqueries)."""
        found = accounts.subquery("acc")
        r = reading_t.alias("rp")
        step = (
            sa.select(
                r.c.acquisition_time.label("reading_at"),
                r.c.remain_money.label("remain_milli"),
                r.c.curr_price.label("curr_price_milli"),
            )
            .where(
                r.c.company_no == found.c.company_no,
                r.c.meter_comm_no == found.c.comm_no,
                r.c.data_type == FROZEN,
                r.c.acquisition_time <= as_of,
                r.c.acquisition_time >= found.c.bound_at,
                r.c.remain_money.is_not(None),
            )
            .order_by(r.c.acquisition_time.desc())
            .limit(1)
        )
        if self.pg:
            latest = step.lateral("reading")
            return sa.select(
                found, latest.c.reading_at, latest.c.remain_milli, latest.c.curr_price_milli
            ).select_from(found.outerjoin(latest, sa.true()))
        columns = [
            step.with_only_columns(c).scalar_subquery().label(c.name) for c in step.selected_columns
        ]
        return sa.select(found, *columns)

    def _after(self, base: Any, side: str) -> Any:
        """What took effect on the account's meter_credit (`side`) after its reading."""
        t = transfer_t.alias(f"after_{side[:6]}")
        return (
            sa.select(sa.func.sum(t.c.amount_fen))
            .where(
                t.c[side] == base.c.la,
                t.c.effective_at > base.c.reading_at,
                t.c.status.in_(POSTED),
            )
            .scalar_subquery()
        )

    def _answers(self, base: Any, as_of: datetime) -> Any:
        """Per account: the latest answered charge state, price and top-up by `as_of` of its
        meter, and how many done commands of the type finished at that instant (more
        than one: which the full path takes is its business)."""
        state, price = str(CtrlType.GET_CHARGE_STATE), str(CtrlType.GET_PRICE)
        top_up = str(CtrlType.REMOTE_CHARGE)
        c = command_t.alias("ca")
        latest = _materialized(
            sa.select(
                base.c.account_id,
                base.c.meter_id,
                sa.func.max(c.c.finished_at).filter(c.c.ctrl_type == state).label("state_at"),
                sa.func.max(c.c.finished_at).filter(c.c.ctrl_type == price).label("price_at"),
                sa.func.max(c.c.finished_at).filter(c.c.ctrl_type == top_up).label("top_up_at"),
            )
            .select_from(
                base.outerjoin(
                    c,
                    sa.and_(
                        c.c.meter_id == base.c.meter_id,
                        c.c.status == DONE,
                        c.c.ctrl_type.in_((state, price, top_up)),
                        c.c.return_data.is_not(None),
                        c.c.finished_at <= as_of,
                    ),
                )
            )
            .group_by(base.c.account_id, base.c.meter_id)
            .cte("latest")
        )
        d = command_t.alias("cd")
        at_state = sa.and_(d.c.ctrl_type == state, d.c.finished_at == latest.c.state_at)
        at_price = sa.and_(d.c.ctrl_type == price, d.c.finished_at == latest.c.price_at)
        return _materialized(
            sa.select(
                latest.c.account_id,
                latest.c.top_up_at,
                sa.func.count(d.c.id).filter(at_state).label("state_n"),
                sa.func.max(d.c.return_data).filter(at_state).label("state_data"),
                sa.func.max(d.c.finished_at).filter(at_state).label("state_at"),
                sa.func.count(d.c.id).filter(at_price).label("price_n"),
                sa.func.max(d.c.return_data).filter(at_price).label("price_data"),
                latest.c.price_at,
            )
            .select_from(
                latest.outerjoin(
                    d,
                    sa.and_(
                        d.c.meter_id == latest.c.meter_id,
                        d.c.status == DONE,
                        sa.or_(at_state, at_price),
                    ),
                )
            )
            .group_by(latest.c.account_id, latest.c.top_up_at, latest.c.price_at)
            .cte("answers")
        )

    def _holds(self, base: Any, answers: Any) -> Any:
        """Per account, its meter_credit's top-up holds: those in flight at the reading, and
        those started since the meter was bound and posted by the charge state's answer."""
        h, res = transfer_t.alias("h"), transfer_t.alias("hr")
        reading_at, state_at = base.c.reading_at, answers.c.state_at
        flying = sa.and_(
            h.c.effective_at <= reading_at,
            sa.or_(res.c.seq.is_(None), res.c.effective_at > reading_at),
        )
        confirmed = sa.and_(
            h.c.effective_at <= state_at,
            h.c.effective_at >= base.c.bound_at,
            res.c.status == "post_pending",
            res.c.effective_at <= state_at,
        )
        return (
            sa.select(
                base.c.account_id,
                sa.func.count(h.c.seq).filter(flying).label("flight"),
                sa.func.count(h.c.seq).filter(confirmed).label("posted_times"),
                sa.func.sum(h.c.amount_fen).filter(confirmed).label("posted_fen"),
            )
            .select_from(
                h.join(base, base.c.la == h.c.credit_account_id)
                .join(answers, answers.c.account_id == base.c.account_id)
                .outerjoin(res, res.c.pending_id == h.c.id)
            )
            .where(h.c.status == "pending")
            .group_by(base.c.account_id)
            .subquery("holds")
        )

    def _confirmed(self, scope: Scope) -> Any:
        """Per account of the range, the price changes its meter confirmed, as one text."""
        a, cm, c = account_t, campaign_meter_t, command_t.alias("conf")
        entry = campaign_t.c.label + SEP + sa.cast(c.c.finished_at, sa.String)
        return (
            sa.select(cm.c.account_id, sa.func.aggregate_strings(entry, SEP + SEP).label("key"))
            .select_from(
                cm.join(a, a.c.id == cm.c.account_id)
                .join(campaign_t, campaign_t.c.id == cm.c.campaign_id)
                .join(c, c.c.id == cm.c.setprice_id)
            )
            .where(
                scope_where(scope, a.c.id, a.c.company_no),
                campaign_t.c.tariff_id == a.c.tariff_id,
                c.c.status == DONE,
                c.c.finished_at.is_not(None),
            )
            .group_by(cm.c.account_id)
            .subquery("confirmed")
        )


def _one_binding(a: Any) -> Any:
    """No meter ever removed from the account: replacements take the full path."""
    old = binding_t.alias("old")
    return ~sa.exists().where(old.c.account_id == a.c.id, old.c.unbound_at.is_not(None))


def _materialized(cte: Any) -> Any:
    return cte.prefix_with("MATERIALIZED", dialect="postgresql")
