"""Money in and out of an account: payments and refunds (clerk), corrections (auditor).

Each needs an `Idempotency-Key` header: a repeat replays the first answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from gasbill.adapters.db.uow import retried
from gasbill.api.deps import ContextDep, CurrentUser, UowDep
from gasbill.api.edge import NO_NUL
from gasbill.api.idempotency import IdempotencyKey, idempotent
from gasbill.api.policy import API
from gasbill.api.staff.schemas import (
    AdjustmentIn,
    PathId,
    PaymentIn,
    PaymentOut,
    RefundIn,
    ReversalIn,
    TransferOut,
)
from gasbill.service import ledger, payments

router = APIRouter(prefix=API, tags=["money"])

CREATED: dict[int | str, dict[str, Any]] = {
    201: {"model": TransferOut, "description": "The transfer (also on a replay)."},
    400: {"description": "No Idempotency-Key header, or a malformed one."},
}
TransferId = Annotated[str, Path(min_length=1, max_length=40, pattern=NO_NUL)]


@router.post(
    "/accounts/{account_id}/payments",
    status_code=201,
    responses=CREATED,
    summary="Record a payment; on a meter-mode account it becomes a remote top-up",
)
def pay(
    account_id: PathId,
    body: PaymentIn,
    user: CurrentUser,
    ctx: ContextDep,
    uow: UowDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def run(k: str) -> PaymentOut:
        outcome = retried(
            lambda: payments.take_payment(
                uow,
                account_id=account_id,
                amount_fen=body.amount_fen,
                channel=body.channel,
                idempotency_key=k,
                actor=user.username,
                now=ctx.clock(),
                policy=ctx.commands,
                memo=body.memo,
                decide=ctx.decide,
                limits=ctx.settings.money.limits(),
            )
        )
        return PaymentOut.of(outcome.payment, top_up_id=outcome.top_up_id)

    return idempotent(
        uow,
        key=key,
        scope="payment",
        request={"account_id": account_id, **body.model_dump(mode="json")},
        run=run,
    )


@router.post(
    "/accounts/{account_id}/refunds",
    status_code=201,
    responses=CREATED,
    summary="Pay money back to the customer out of their prepaid balance",
)
def refund(
    account_id: PathId,
    body: RefundIn,
    user: CurrentUser,
    ctx: ContextDep,
    uow: UowDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return idempotent(
        uow,
        key=key,
        scope="refund",
        request={"account_id": account_id, **body.model_dump(mode="json")},
        run=lambda k: TransferOut.of(
            retried(
                lambda: ledger.refund(
                    uow,
                    account_id=account_id,
                    amount_fen=body.amount_fen,
                    channel=body.channel,
                    reason=body.reason,
                    actor=user.username,
                    idempotency_key=k,
                    limits=ctx.settings.money.limits(),
                )
            )
        ),
    )


@router.post(
    "/accounts/{account_id}/adjustments",
    status_code=201,
    responses=CREATED,
    summary="Correct a balance (auditor): signed amount, target and a reason",
)
def adjust(
    account_id: PathId,
    body: AdjustmentIn,
    user: CurrentUser,
    ctx: ContextDep,
    uow: UowDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return idempotent(
        uow,
        key=key,
        scope="adjustment",
        request={"account_id": account_id, **body.model_dump(mode="json")},
        run=lambda k: TransferOut.of(
            retried(
                lambda: ledger.post_adjustment(
                    uow,
                    account_id=account_id,
                    amount_fen=body.amount_fen,
                    target=body.target,
                    reason=body.reason,
                    actor=user.username,
                    idempotency_key=k,
                    limits=ctx.settings.money.limits(),
                )
            )
        ),
    )


@router.post(
    "/transfers/{transfer_id}/reversal",
    status_code=201,
    responses=CREATED,
    summary="Reverse a posted transfer (auditor), with a reason",
)
def reverse(
    transfer_id: TransferId,
    body: ReversalIn,
    user: CurrentUser,
    uow: UowDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return idempotent(
        uow,
        key=key,
        scope="reversal",
        request={"transfer_id": transfer_id, **body.model_dump(mode="json")},
        run=lambda k: TransferOut.of(
            retried(
                lambda: ledger.reverse_transfer(
                    uow,
                    transfer_id=transfer_id,
                    reason=body.reason,
                    actor=user.username,
                    idempotency_key=k,
                )
            )
        ),
    )
