"""Billing exceptions: the clerk's queue of what billing could not decide alone."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from gasbill.adapters.db.repositories.exceptions import ExceptionRepository
from gasbill.adapters.db.tables.billing import BillingException
from gasbill.api.deps import ContextDep, CurrentUser, UowDep
from gasbill.api.errors import not_found
from gasbill.api.policy import API
from gasbill.api.staff.schemas import ExceptionOut, Id, Offset, PathId, ResolutionIn
from gasbill.service.exceptions import resolve_exception

router = APIRouter(prefix=f"{API}/exceptions", tags=["exceptions"])


def exception_out(row: BillingException) -> ExceptionOut:
    return ExceptionOut.model_validate(row, from_attributes=True)


@router.get("", summary="Exceptions, oldest first (open ones by default)")
def find(
    uow: UowDep,
    status: Literal["open", "resolved", "all"] = "open",
    account_id: Annotated[Id | None, Query()] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ExceptionOut]:
    with uow:
        rows = ExceptionRepository(uow.session).find(
            status=None if status == "all" else status,
            account_id=account_id,
            offset=offset,
            limit=limit,
        )
    return [exception_out(r) for r in rows]


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
