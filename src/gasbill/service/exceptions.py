"""Billing exceptions: a clerk resolves what billing could not decide alone."""

from __future__ import annotations

from datetime import UTC, datetime

from gasbill.adapters.db.repositories.exceptions import ExceptionRepository
from gasbill.adapters.db.tables.billing import BillingException
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.accounts import AccountError
from gasbill.service.accounts import Conflict, NotFound, snapshot


def resolve_exception(
    uow: UnitOfWork,
    exception_id: int,
    *,
    resolution: str,
    actor: str,
    now: datetime | None = None,
) -> BillingException:
    """Close an open exception with what was done about it; resolving twice is a conflict."""
    if not resolution.strip():
        raise AccountError("a resolution says what was done")
    now = now or datetime.now(UTC)
    with uow:
        exceptions = ExceptionRepository(uow.session)
        row = exceptions.get(exception_id, lock=True)
        if row is None:
            raise NotFound(f"no exception {exception_id}")
        if row.status != "open":
            raise Conflict(f"exception {exception_id} was already resolved by {row.resolved_by}")
        before = snapshot(row)
        row.status = "resolved"
        row.resolution = resolution
        row.resolved_by = actor
        row.resolved_at = now
        exceptions.save(row)
        uow.audit.record(
            actor=actor,
            action="exception.resolve",
            entity="billing_exception",
            entity_id=row.id,
            before=before,
            after=snapshot(row),
            at=now,
        )
        uow.commit()
        return row
