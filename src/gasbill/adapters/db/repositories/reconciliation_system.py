"""Reconciliation's reads for system-mode accounts and replaced meters, set-based like the rest.

The ledger's sums are one grouped pass over the transfers of the range's
prepaid accounts; valve commands and replacements are rare, so their rows
are read as they are and sorted out by the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from gasbill.adapters.db.repositories.reconciliation_sql import (
    FROZEN,
    POSTED,
    VALVES,
    account_t,
    binding_t,
    command_t,
    ledger_t,
    meter_t,
    reading_t,
    scope_where,
    transfer_t,
)
from gasbill.domain.ledger import AccountKind, TransferKind
from gasbill.service.reconciliation_rows import LedgerSums, ReplacementRow, Scope, ValveRow

SLOTS = {str(TransferKind.PAYMENT): 0, str(TransferKind.CHARGE): 1}


class SystemStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ledger_sums(self, scope: Scope, as_of: datetime) -> dict[int, LedgerSums]:
        """Per system-mode account, its prepaid account's posted transfers summed."""
        by_kind: dict[int, list[int]] = {}
        for side, sign in (("credit_account_id", 1), ("debit_account_id", -1)):
            t = transfer_t
            query = (
                sa.select(
                    ledger_t.c.account_id,
                    t.c.kind,
                    sa.func.sum(sa.case((t.c.effective_at <= as_of, t.c.amount_fen), else_=0)),
                    sa.func.sum(t.c.amount_fen),
                )
                .select_from(
                    t.join(ledger_t, ledger_t.c.id == t.c[side]).join(
                        account_t, account_t.c.id == ledger_t.c.account_id
                    )
                )
                .where(
                    scope_where(scope, account_t.c.id, account_t.c.company_no),
                    account_t.c.billing_mode == "system",
                    ledger_t.c.kind == str(AccountKind.PREPAID),
                    t.c.status.in_(POSTED),
                )
                .group_by(ledger_t.c.account_id, t.c.kind)
            )
            for account_id, kind, by_then, every in self.session.execute(query).all():
                sums = by_kind.setdefault(int(account_id), [0, 0, 0, 0])
                slot = SLOTS.get(kind, 2)
                sums[slot] += sign * int(by_then or 0)
                sums[3] += sign * int(every or 0)
        return {a: LedgerSums(*sums) for a, sums in by_kind.items()}

    def valve_commands(self, scope: Scope, as_of: datetime) -> list[ValveRow]:
        """Valve commands to the system-mode accounts' active meters created by `as_of`."""
        a, b, c = account_t, binding_t, command_t
        query = (
            sa.select(b.c.account_id, c.c.id, c.c.ctrl_type, c.c.status, c.c.finished_at)
            .select_from(
                a.join(b, sa.and_(b.c.account_id == a.c.id, b.c.unbound_at.is_(None))).join(
                    c, c.c.meter_id == b.c.meter_id
                )
            )
            .where(
                scope_where(scope, a.c.id, a.c.company_no),
                a.c.billing_mode == "system",
                c.c.ctrl_type.in_(VALVES),
                c.c.created_at <= as_of,
            )
            .order_by(c.c.id)
        )
        return [ValveRow(*row) for row in self.session.execute(query).all()]

    def replacements(self, scope: Scope, as_of: datetime) -> list[ReplacementRow]:
        """Meters removed from the range's accounts by `as_of`: the old meter's last frozen
        reading before its removal, its readings after, and the next meter's first."""
        a, b, m = account_t, binding_t, meter_t
        b2, m2 = binding_t.alias("nb"), meter_t.alias("nm")
        r, r2 = reading_t.alias("rr"), reading_t.alias("nr")
        old = sa.and_(
            r.c.company_no == m.c.company_no,
            r.c.meter_comm_no == m.c.comm_no,
            r.c.data_type == FROZEN,
        )
        before = sa.and_(old, r.c.acquisition_time >= b.c.bound_at)
        before = sa.and_(before, r.c.acquisition_time <= b.c.unbound_at)
        last = sa.select(r.c.acquisition_time, _register(r)).where(before)
        last = last.order_by(r.c.acquisition_time.desc()).limit(1)
        stray = sa.select(sa.func.count()).where(
            old, r.c.acquisition_time > b.c.unbound_at, r.c.acquisition_time <= as_of
        )
        new = sa.and_(
            r2.c.company_no == m2.c.company_no,
            r2.c.meter_comm_no == m2.c.comm_no,
            r2.c.data_type == FROZEN,
            r2.c.acquisition_time >= b2.c.bound_at,
            r2.c.acquisition_time <= as_of,
        )
        first = sa.select(r2.c.acquisition_time, _register(r2)).where(new)
        first = first.order_by(r2.c.acquisition_time).limit(1)
        query = (
            sa.select(
                b.c.account_id,
                b.c.id,
                m.c.comm_no,
                b.c.unbound_at,
                b.c.final_litres,
                _column(last, 0),
                _column(last, 1),
                stray.scalar_subquery(),
                m2.c.comm_no,
                b2.c.opening_litres,
                _column(first, 0),
                _column(first, 1),
            )
            .join(a, a.c.id == b.c.account_id)
            .join(m, m.c.id == b.c.meter_id)
            .outerjoin(b2, sa.and_(b2.c.account_id == b.c.account_id, b2.c.unbound_at.is_(None)))
            .outerjoin(m2, m2.c.id == b2.c.meter_id)
            .where(
                scope_where(scope, a.c.id, a.c.company_no),
                b.c.unbound_at.is_not(None),
                b.c.unbound_at <= as_of,
            )
            .order_by(b.c.account_id, b.c.unbound_at)
        )
        return [ReplacementRow(*row) for row in self.session.execute(query).all()]


def _column(select: Any, index: int) -> Any:
    return select.with_only_columns(select.selected_columns[index]).scalar_subquery()


def _register(r: Any) -> Any:
    return sa.func.coalesce(r.c.std_sum, r.c.work_sum)
