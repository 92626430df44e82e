"""Reconciliation's reads of commands and holds: each command's latest answer with the
ledger at its time, confirmed price changes, and top-up holds, for a range of accounts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gasbill.adapters.db.id_lists import IdIn
from gasbill.adapters.db.repositories.reconciliation_sql import (
    StoreBase,
    account_t,
    binding_t,
    campaign_meter_t,
    campaign_t,
    command_t,
    credit_after,
    hold_sums,
    holds_at,
    join_sums,
    ledger_t,
    scalar_of,
    scope_where,
    transfer_t,
)
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountKind
from gasbill.domain.outbox import CommandStatus
from gasbill.service.reconciliation_rows import (
    HoldRow,
    ReplyRow,
    Scope,
)


class CommandFacts(StoreBase):
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
            .where(scope_where(scope, a.c.id, a.c.company_no), a.c.billing_mode == "meter")
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
                - sa.func.coalesce(credit_after(la.c.id, latest.c.at), 0),
                scalar_of(holds_at(la.c.id, latest.c.at), 1),
            ]
        joins: list[Any] = []
        if ctrl_type is CtrlType.GET_CHARGE_STATE:
            keys = (latest.c.account_id,)
            since = latest.c.bound_at
            posted = hold_sums(latest, keys, latest.c.at, since=since, posted=True, lateral=self.pg)
            joins.append(posted)
            columns += [sa.literal(0)]
            if ledger:
                flight = hold_sums(latest, keys, latest.c.at, since=since, lateral=self.pg)
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
            joined = join_sums(joined, sums, (latest.c.account_id,), lateral=self.pg)
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
                scope_where(scope, a.c.id, a.c.company_no),
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
                IdIn(ledger_t.c.account_id, account_ids),
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
