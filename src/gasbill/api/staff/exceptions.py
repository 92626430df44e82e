"""The exceptions queue: what billing could not decide alone, and corrected re-pushes.

A push conflict is listed with kind `push_conflict` (its id is the conflict's)
and is decided at `/exceptions/conflicts/{id}/accept` (auditor, admin: it
moves money) or `/dismiss` (any staff).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from gasbill.adapters.db.repositories.exceptions import ExceptionRepository
from gasbill.api.deps import CatalogDep, ContextDep, CurrentUser, UowDep
from gasbill.api.errors import not_found
from gasbill.api.policy import API
from gasbill.api.staff.schemas import (
    ConflictDecisionIn,
    ConflictOut,
    ExceptionOut,
    Id,
    Offset,
    PathId,
    ResolutionIn,
)
from gasbill.service.exceptions import resolve_exception
from gasbill.service.exceptions_queue import QueueItem, exceptions_queue
from gasbill.service.ports import ExceptionRecord
from gasbill.service.push_conflicts import (
    ConflictReview,
    accept_correction,
    conflict_review,
    dismiss_conflict,
    list_conflicts,
)

router = APIRouter(prefix=f"{API}/exceptions", tags=["exceptions"])


def exception_out(row: ExceptionRecord) -> ExceptionOut:
    return ExceptionOut.model_validate(row, from_attributes=True)


def conflict_out(found: ConflictReview) -> ExceptionOut:
    """A push conflict as an item of the queue, its details and actions beside."""
    c = found.conflict
    assert c.id is not None
    base = f"{API}/exceptions/conflicts/{c.id}"
    return ExceptionOut(
        id=c.id,
        kind="push_conflict",
        status="open" if c.status == "open" else "resolved",
        account_id=found.account_id,
        company_no=c.company_no,
        meter_comm_no=found.meter_comm_no,
        reading_at=found.acquired_at,
        detail=found.detail(),
        resolution=c.review_reason,
        resolved_by=c.reviewed_by,
        resolved_at=c.reviewed_at,
        created_at=c.received_at,
        conflict=ConflictOut(
            status=c.status,
            record=c.kind,
            data_type=found.data_type,
            stored=found.stored,
            corrected=found.corrected,
            times_seen=c.times_seen,
            first_seen_at=c.received_at,
            last_seen_at=c.last_seen_at,
            accept=f"{base}/accept",
            dismiss=f"{base}/dismiss",
        ),
    )


def item_out(item: QueueItem) -> ExceptionOut:
    return conflict_out(item) if isinstance(item, ConflictReview) else exception_out(item)


@router.get("", summary="Exceptions and push conflicts, oldest first (open ones by default)")
def find(
    uow: UowDep,
    status: Literal["open", "resolved", "all"] = "open",
    account_id: Annotated[Id | None, Query()] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ExceptionOut]:
    items = exceptions_queue(
        uow,
        status=None if status == "all" else status,
        account_id=account_id,
        offset=offset,
        limit=limit,
    )
    return [item_out(i) for i in items]


@router.get("/conflicts", summary="Push conflicts only, oldest first (open ones by default)")
def conflicts(
    uow: UowDep,
    status: Literal["open", "accepted", "dismissed", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ExceptionOut]:
    found = list_conflicts(uow, status=None if status == "all" else status, limit=limit)
    return [conflict_out(c) for c in found]


@router.post(
    "/conflicts/{conflict_id}/accept",
    summary="Accept a correction: the reading takes the re-pushed values, the account is "
    "re-rated from it and only the difference posted (auditor, admin)",
)
def accept(
    conflict_id: PathId,
    body: ConflictDecisionIn,
    user: CurrentUser,
    ctx: ContextDep,
    uow: UowDep,
    catalog: CatalogDep,
) -> ExceptionOut:
    accept_correction(
        uow,
        conflict_id,
        reason=body.reason,
        actor=user.username,
        catalog=catalog,
        max_flow_m3_per_hour=ctx.settings.rating.max_flow_m3_per_hour,
        now=ctx.clock(),
    )
    return conflict_out(conflict_review(uow, conflict_id))


@router.post(
    "/conflicts/{conflict_id}/dismiss",
    summary="Dismiss a push conflict with a reason: the stored values stay, no money moves",
)
def dismiss(
    conflict_id: PathId, body: ConflictDecisionIn, user: CurrentUser, ctx: ContextDep, uow: UowDep
) -> ExceptionOut:
    dismiss_conflict(uow, conflict_id, reason=body.reason, actor=user.username, now=ctx.clock())
    return conflict_out(conflict_review(uow, conflict_id))


@router.get("/{exception_id}", summary="One exception")
def get(exception_id: PathId, uow: UowDep) -> ExceptionOut:
    with uow:
        row = ExceptionRepository(uow.session).get(exception_id)
    if row is None:
        raise not_found(f"no exception {exception_id}")
    return exception_out(row)


@router.post("/{exception_id}/resolve", summary="Resolve an exception, saying what was done")
def resolve(
    exception_id: PathId, body: ResolutionIn, user: CurrentUser, ctx: ContextDep, uow: UowDep
) -> ExceptionOut:
    row = resolve_exception(
        uow, exception_id, resolution=body.resolution, actor=user.username, now=ctx.clock()
    )
    return exception_out(row)
