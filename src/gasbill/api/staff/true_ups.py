"""The price-change true-up, run on demand by an auditor or an admin (the job runs it daily)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.deps import ContextDep, CurrentUser, NowDep
from gasbill.api.policy import API
from gasbill.api.staff.schemas import Id
from gasbill.domain.money import Money
from gasbill.service.true_up import run_true_ups
from gasbill.service.true_up_check import in_force_report

router = APIRouter(prefix=f"{API}/true-ups", tags=["true-ups"])


class TrueUpRunOut(BaseModel):
    accounts: int  # meter-mode accounts re-rated (a divergence still open)
    days_changed: int
    charged: str  # yuan, prepaid → revenue
    refunded: str  # yuan, revenue → prepaid
    transfers: list[str]  # the ledger lines posted (ids)


@router.post("", summary="Run the price-change true-up now (idempotent)")
def run(ctx: ContextDep, user: CurrentUser, now: NowDep) -> TrueUpRunOut:
    job = ctx.settings.jobs.true_up
    outcome = run_true_ups(
        lambda: UnitOfWork(ctx.engine),
        catalog=ctx.catalog,
        now=now,
        batch=job.batch,
        settled_after=timedelta(days=job.settled_after_days),
        max_flow_m3_per_hour=ctx.settings.rating.max_flow_m3_per_hour,
        actor=user.username,
    )
    return TrueUpRunOut(
        accounts=outcome.accounts,
        days_changed=outcome.days_changed,
        charged=Money.of_fen(outcome.charged_fen).fixed(),
        refunded=Money.of_fen(outcome.refunded_fen).fixed(),
        transfers=[t.id for t in outcome.transfers],
    )


@router.get(
    "/check",
    summary="Meter-mode accounts: charges + true-ups against the tariff in force, to the fen",
)
def check(
    ctx: ContextDep, now: NowDep, account_id: Annotated[list[Id] | None, Query()] = None
) -> dict[str, Any]:
    return in_force_report(
        lambda: UnitOfWork(ctx.engine),
        account_id,
        catalog=ctx.catalog,
        now=now,
        max_flow_m3_per_hour=ctx.settings.rating.max_flow_m3_per_hour,
    )
