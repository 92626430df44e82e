"""Tariff campaigns as staff see them: n of m confirmed, failures with reasons, a retry."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from gasbill.api.deps import ContextDep, CurrentUser, UowDep
from gasbill.api.policy import API
from gasbill.api.staff.schemas import PathId
from gasbill.service.accounts import NotFound
from gasbill.service.campaign_progress import campaign_progress, campaigns
from gasbill.service.campaign_retry import retry_failed_meters

router = APIRouter(prefix=f"{API}/campaigns", tags=["campaigns"])


def progress_view(progress: Any) -> dict[str, Any]:
    """Whatever the campaign's progress holds (counts, failures, true-up totals), as JSON."""
    view = asdict(progress)
    view["summary"] = progress.summary
    return view


@router.get("", summary="Every tariff campaign with its counts")
def list_(uow: UowDep) -> list[dict[str, Any]]:
    return [progress_view(p) for p in campaigns(uow)]


@router.get("/{campaign_id}", summary="One campaign: n of m confirmed, each failure's reason")
def show(campaign_id: PathId, uow: UowDep) -> dict[str, Any]:
    try:
        return progress_view(campaign_progress(uow, campaign_id))
    except LookupError as exc:
        raise NotFound(str(exc)) from None


@router.post("/{campaign_id}/retry-failed", summary="Send the change again to every failed meter")
def retry_failed(
    campaign_id: PathId, user: CurrentUser, ctx: ContextDep, uow: UowDep
) -> dict[str, Any]:
    assert ctx.services is not None
    outcome = retry_failed_meters(
        uow,
        campaign_id,
        catalog=ctx.catalog,
        policy=ctx.commands,
        actor=user.username,
        now=ctx.clock(),
    )
    return {
        "campaign_id": campaign_id,
        "retried": len(outcome.retried),
        "still_failed": [{"meter_id": m, "reason": r} for m, r in outcome.still_failed],
    }
