"""The exceptions queue: billing exceptions and corrected re-pushes, oldest first, one list.

A clerk works one queue: what billing could not decide alone, and the
platform's corrections (push conflicts) waiting for a decision. Both kinds
are merged by when they arose, then paged.
"""

from __future__ import annotations

from datetime import datetime

from gasbill.service.billing_ports import BillingUnitOfWork
from gasbill.service.ports import ExceptionRecord
from gasbill.service.push_conflicts import ConflictReview, review

QueueItem = ExceptionRecord | ConflictReview
# the queue's statuses, as conflict statuses
_CONFLICT_STATUS = {"open": ["open"], "resolved": ["accepted", "dismissed"]}


def exceptions_queue(
    uow: BillingUnitOfWork,
    *,
    status: str | None = "open",
    account_id: int | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[QueueItem]:
    """Billing exceptions and push conflicts (`open`, `resolved` or None for all), merged."""
    wanted = offset + limit
    with uow:
        exceptions = list(
            uow.exceptions.find(status=status, account_id=account_id, offset=0, limit=wanted)
        )
        statuses = None if status is None else _CONFLICT_STATUS.get(status, [status])
        found = uow.conflicts.find(statuses=statuses, limit=wanted)
        conflicts = [review(uow, row) for row in found]
    if account_id is not None:
        conflicts = [c for c in conflicts if c.account_id == account_id]
    merged: list[QueueItem] = [*exceptions, *conflicts]
    merged.sort(key=_arose)
    return merged[offset : offset + limit]


def _arose(item: QueueItem) -> tuple[datetime, int, int]:
    if isinstance(item, ConflictReview):
        return (item.conflict.received_at, 1, item.conflict.id or 0)
    return (item.created_at, 0, item.id or 0)
