"""Reconciliation's first pass, meter mode: the parts of its query (each account's latest
frozen reading, the top-ups and charge-state answers around it, the holds, the price
changes its meter confirmed). VerdictStore (reconciliation_verdicts.py) joins them."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gasbill.adapters.db.repositories.reconciliation_sql import (
    FROZEN,
    POSTED,
    StoreBase,
    account_t,
    binding_t,
    campaign_meter_t,
    campaign_t,
    command_t,
    reading_t,
    scope_where,
    transfer_t,
)
from gasbill.domain.commands import CtrlType
from gasbill.domain.outbox import CommandStatus
from gasbill.service.reconciliation_rows import Scope

DONE = str(CommandStatus.DONE)
SEP = "\x1f"


class MeterParts(StoreBase):
    """The meter-mode subqueries, as the verdict store's base."""

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
        latest = materialized(
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
        return materialized(
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

    def _answers_each(self, base: Any, as_of: datetime) -> tuple[Any, Any]:
        """PostgreSQL: what `_answers` finds, per account through its meter's index on
        `command` (two lateral subqueries: the instants, then the answers at them), so
        that a range costs what its accounts do, not a pass over every command."""
        state, price = str(CtrlType.GET_CHARGE_STATE), str(CtrlType.GET_PRICE)
        top_up = str(CtrlType.REMOTE_CHARGE)
        c = command_t.alias("ca")
        latest = (
            sa.select(
                sa.func.max(c.c.finished_at).filter(c.c.ctrl_type == state).label("state_at"),
                sa.func.max(c.c.finished_at).filter(c.c.ctrl_type == price).label("price_at"),
                sa.func.max(c.c.finished_at).filter(c.c.ctrl_type == top_up).label("top_up_at"),
            )
            .where(
                c.c.meter_id == base.c.meter_id,
                c.c.status == DONE,
                c.c.ctrl_type.in_((state, price, top_up)),
                c.c.return_data.is_not(None),
                c.c.finished_at <= as_of,
            )
            .lateral("latest")
        )
        d = command_t.alias("cd")
        at_state = sa.and_(d.c.ctrl_type == state, d.c.finished_at == latest.c.state_at)
        at_price = sa.and_(d.c.ctrl_type == price, d.c.finished_at == latest.c.price_at)
        found = (
            sa.select(
                sa.func.count(d.c.id).filter(at_state).label("state_n"),
                sa.func.max(d.c.return_data).filter(at_state).label("state_data"),
                sa.func.count(d.c.id).filter(at_price).label("price_n"),
                sa.func.max(d.c.return_data).filter(at_price).label("price_data"),
            )
            .where(d.c.meter_id == base.c.meter_id, d.c.status == DONE, sa.or_(at_state, at_price))
            .lateral("answers")
        )
        return latest, found

    def _holds_each(self, base: Any, state_at: Any) -> Any:
        """PostgreSQL: what `_holds` finds, per account through its meter_credit's index on
        `transfer` (a lateral subquery), not a pass over every hold of the table."""
        h, res = transfer_t.alias("h"), transfer_t.alias("hr")
        flying, confirmed = _hold_filters(h, res, base, state_at)
        return (
            sa.select(
                sa.func.count(h.c.seq).filter(flying).label("flight"),
                sa.func.count(h.c.seq).filter(confirmed).label("posted_times"),
                sa.func.sum(h.c.amount_fen).filter(confirmed).label("posted_fen"),
            )
            .select_from(h.outerjoin(res, res.c.pending_id == h.c.id))
            .where(h.c.credit_account_id == base.c.la, h.c.status == "pending")
            .lateral("holds")
        )

    def _holds(self, base: Any, answers: Any) -> Any:
        """Per account, its meter_credit's top-up holds: those in flight at the reading, and
        those started since the meter was bound and posted by the charge state's answer."""
        h, res = transfer_t.alias("h"), transfer_t.alias("hr")
        flying, confirmed = _hold_filters(h, res, base, answers.c.state_at)
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


def _hold_filters(h: Any, res: Any, base: Any, state_at: Any) -> tuple[Any, Any]:
    """Which of an account's holds `h` (with `res`, what resolved each) were in flight at
    its reading, and which were posted by the charge state's answer since its meter was
    bound."""
    reading_at = base.c.reading_at
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
    return flying, confirmed


def one_binding(a: Any) -> Any:
    """No meter ever removed from the account: replacements take the full path."""
    old = binding_t.alias("old")
    return ~sa.exists().where(old.c.account_id == a.c.id, old.c.unbound_at.is_not(None))


def materialized(cte: Any) -> Any:
    return cte.prefix_with("MATERIALIZED", dialect="postgresql")
