"""Billing exceptions: what a clerk must look at, listed and resolved."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.billing import BillingException


class ExceptionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, exception_id: int, *, lock: bool = False) -> BillingException | None:
        if lock:
            return self.session.exec(
                select(BillingException)
                .where(BillingException.id == exception_id)
                .with_for_update()
            ).first()
        return self.session.get(BillingException, exception_id)

    def find(
        self,
        *,
        status: str | None = None,
        account_id: int | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Sequence[BillingException]:
        """Oldest first, so the queue is worked in the order things went wrong."""
        query = select(BillingException).order_by(col(BillingException.id))
        if status is not None:
            query = query.where(BillingException.status == status)
        if account_id is not None:
            query = query.where(BillingException.account_id == account_id)
        return self.session.exec(query.offset(offset).limit(limit)).all()

    def save(self, row: BillingException) -> BillingException:
        self.session.add(row)
        self.session.flush()
        return row
