"""The billing inbox: claim pending rows so two workers never take the same one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.accounts import Meter, MeterBinding
from gasbill.adapters.db.tables.readings import BillingInbox


class InboxStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, limit: int) -> Sequence[BillingInbox]:
        """The oldest unhandled rows, locked for this transaction (skipped by other workers)."""
        query = (
            select(BillingInbox)
            .where(col(BillingInbox.handled_at).is_(None))
            .order_by(col(BillingInbox.id))
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return self.session.exec(query).all()

    def pending(self) -> int:
        return int(
            self.session.execute(
                sa.select(sa.func.count()).where(col(BillingInbox.handled_at).is_(None))
            ).scalar_one()
        )

    def bindings_of(
        self, meters: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[MeterBinding]]:
        """Every binding, past and present, of these meters."""
        result: dict[tuple[str, str], list[MeterBinding]] = {}
        if not meters:
            return result
        rows = self.session.exec(
            select(Meter, MeterBinding)
            .join(MeterBinding, col(MeterBinding.meter_id) == col(Meter.id))
            .where(sa.tuple_(col(Meter.company_no), col(Meter.comm_no)).in_(sorted(set(meters))))
            .order_by(col(MeterBinding.bound_at))
        ).all()
        for meter, binding in rows:
            result.setdefault((meter.company_no, meter.comm_no), []).append(binding)
        return result

    def mark_handled(self, outcomes: dict[int, str], at: datetime) -> None:
        """Stamp the rows handled with their outcomes: one statement, executed for every row
        (the outcomes name the account, so grouping by outcome was a statement per account)."""
        if not outcomes:
            return
        table = BillingInbox.__table__  # type: ignore[attr-defined]
        self.session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values(handled_at=at, outcome=sa.bindparam("row_outcome")),
            [
                {"row_id": row_id, "row_outcome": outcome[:200]}
                for row_id, outcome in sorted(outcomes.items())
            ],
        )
