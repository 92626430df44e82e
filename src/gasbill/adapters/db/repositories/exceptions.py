"""Billing exceptions: what a clerk must look at, listed and resolved."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.billing import BillingException
from gasbill.service.ports import ExceptionRecord, NewException


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

    def save(self, row: ExceptionRecord) -> None:
        self.session.add(row)
        self.session.flush()

    def add(self, exception: NewException) -> None:
        self.session.add(
            BillingException(
                kind=exception.kind,
                account_id=exception.account_id,
                company_no=exception.company_no,
                meter_comm_no=exception.meter_comm_no,
                reading_at=exception.reading_at,
                detail=exception.detail[:1000],
                created_at=exception.at,
            )
        )
        self.session.flush()

    def add_once(self, exceptions: Sequence[NewException]) -> None:
        """Record exceptions once: the same anomaly found again is not repeated."""
        if not exceptions:
            return
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.session.execute(
            insert(BillingException).on_conflict_do_nothing(
                index_elements=["kind", "company_no", "meter_comm_no", "reading_at"]
            ),
            [
                {
                    "kind": e.kind,
                    "status": "open",
                    "account_id": e.account_id,
                    "company_no": e.company_no,
                    "meter_comm_no": e.meter_comm_no,
                    "reading_at": e.reading_at,
                    "detail": e.detail[:1000],
                    "resolution": "",
                    "created_at": e.at,
                }
                for e in exceptions
            ],
        )

    def open_for_meter(self, kind: str, company_no: str, comm_no: str) -> BillingException | None:
        return self.session.exec(
            select(BillingException)
            .where(
                BillingException.kind == kind,
                BillingException.status == "open",
                BillingException.company_no == company_no,
                BillingException.meter_comm_no == comm_no,
            )
            .with_for_update()
        ).first()
