"""The billing inbox: claim pending rows so two workers never take the same one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.id_lists import TextIn
from gasbill.adapters.db.tables.accounts import Meter, MeterBinding
from gasbill.adapters.db.tables.readings import BillingInbox

METER = Meter.__table__  # type: ignore[attr-defined]
BINDING = MeterBinding.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class BindingSpan:
    """An account's use of a meter, as the inbox reads it: from `bound_at` until `unbound_at`."""

    account_id: int
    bound_at: datetime
    unbound_at: datetime | None


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
    ) -> dict[tuple[str, str], list[BindingSpan]]:
        """Every binding, past and present, of these meters: one statement per company
        (there is one company, mostly), its meters' numbers as one parameter."""
        result: dict[tuple[str, str], list[BindingSpan]] = {}
        by_company: dict[str, set[str]] = {}
        for company_no, comm_no in meters:
            by_company.setdefault(company_no, set()).add(comm_no)
        for company_no, comm_nos in sorted(by_company.items()):
            rows = self.session.execute(
                sa.select(
                    METER.c.comm_no, BINDING.c.account_id, BINDING.c.bound_at, BINDING.c.unbound_at
                )
                .join(BINDING, BINDING.c.meter_id == METER.c.id)
                .where(METER.c.company_no == company_no, TextIn(METER.c.comm_no, sorted(comm_nos)))
                .order_by(BINDING.c.bound_at)
            )
            for comm_no, account_id, bound_at, unbound_at in rows:
                result.setdefault((company_no, comm_no), []).append(
                    BindingSpan(int(account_id), bound_at, unbound_at)
                )
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
