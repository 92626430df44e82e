"""Money in the ledger: payments, refunds, adjustments, reversals and holds (DESIGN §6).

Each use case is one unit of work and commits only here, with an audit
entry for the change. Idempotency keys are namespaced per operation
(`payment:<key>`, `refund:<key>`, …): the same key and request returns the
first transfer and writes nothing, the same key with another request raises
`IdempotencyConflict`. The effective time (`at`, now by default) is set by
the first request: a replay is not refused for coming later.

Each takes `limits` (config.toml [money]): one payment, refund or
adjustment above its maximum is refused (`AmountOutOfRange`, a 422) before
anything is read or written.
"""

from __future__ import annotations

from datetime import datetime

from gasbill.domain.errors import InvalidTransfer, OverdraftRefused
from gasbill.domain.ledger import (
    AccountCode,
    AccountKind,
    Balance,
    HoldAction,
    LedgerReport,
    Transfer,
    TransferKind,
    TransferStatus,
    resolve_hold,
    reverse,
)
from gasbill.domain.money import MoneyLimits
from gasbill.service.accounts import NotFound
from gasbill.service.ports import LedgerRepository, UnitOfWork
from gasbill.service.transfers import (
    DEFAULT_LIMITS,
    describe,
    namespaced,
    new_transfer,
    payment_transfer,
    record_once,
    utc_now,
)

ADJUSTABLE = (AccountKind.PREPAID, AccountKind.METER_CREDIT)


def record_payment(
    uow: UnitOfWork,
    *,
    account_id: int,
    amount_fen: int,
    channel: str,
    idempotency_key: str,
    actor: str,
    at: datetime | None = None,
    memo: str = "",
    limits: MoneyLimits = DEFAULT_LIMITS,
) -> Transfer:
    """Money in through `channel`: cash:<channel> → prepaid."""
    candidate = payment_transfer(
        account_id=account_id,
        amount_fen=amount_fen,
        channel=channel,
        idempotency_key=idempotency_key,
        actor=actor,
        now=utc_now(),
        at=at,
        memo=memo,
        limits=limits,
    )
    with uow:
        _require_account(uow, account_id)
        return _settle(uow, candidate, action="ledger.payment", entity=("account", account_id))


def refund(
    uow: UnitOfWork,
    *,
    account_id: int,
    amount_fen: int,
    channel: str,
    reason: str,
    actor: str,
    idempotency_key: str,
    at: datetime | None = None,
    limits: MoneyLimits = DEFAULT_LIMITS,
) -> Transfer:
    """Money paid back through `channel`: prepaid → refunds, at most what is available."""
    limits.check("refund", amount_fen)
    prepaid = AccountCode.prepaid(str(account_id))
    AccountCode.cash(channel)  # a channel is named like a cash account
    candidate = new_transfer(
        key=namespaced("refund", idempotency_key),
        debit=prepaid,
        credit=AccountCode.refunds(),
        amount=amount_fen,
        kind=TransferKind.REFUND,
        now=utc_now(),
        at=at,
        reason=f"{channel}: {reason}",
        actor=actor,
    )
    with uow:
        _require_account(uow, account_id)
        ledger = uow.ledger
        if ledger.transfer_by_key(candidate.idempotency_key) is None:
            available = ledger.lock([prepaid])[prepaid].available
            if amount_fen > available:
                raise OverdraftRefused(
                    f"cannot refund {amount_fen} fen: {available} available on {prepaid}"
                )
        return _settle(
            uow, candidate, action="ledger.refund", entity=("account", account_id), ledger=ledger
        )


def closing_refund(
    uow: UnitOfWork,
    *,
    source: AccountCode,
    amount_fen: int,
    channel: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
) -> Transfer:
    """What a closed account still holds on `source`, paid back; in the caller's unit of work."""
    AccountCode.cash(channel)
    candidate = new_transfer(
        key=namespaced("close-refund", idempotency_key),
        debit=source,
        credit=AccountCode.refunds(),
        amount=amount_fen,
        kind=TransferKind.REFUND,
        now=now,
        at=now,
        reason=f"{channel}: account closed",
        actor=actor,
    )
    transfer, _ = record_once(uow.ledger, candidate)
    return transfer


def post_adjustment(
    uow: UnitOfWork,
    *,
    account_id: int,
    amount_fen: int,
    target: str,
    reason: str,
    actor: str,
    idempotency_key: str,
    at: datetime | None = None,
    limits: MoneyLimits = DEFAULT_LIMITS,
) -> Transfer:
    """A correction against `adjustments`: a positive amount credits the customer's `target`.

    Adjustments record a decision already taken, so no overdraft limit
    refuses them; the maximum for one adjustment does.
    """
    try:
        kind = AccountKind(target)
    except ValueError:
        kind = None
    if kind not in ADJUSTABLE:
        raise InvalidTransfer(f"an adjustment targets prepaid or meter_credit, not {target!r}")
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen == 0:
        raise InvalidTransfer(
            f"an adjustment is a non-zero whole number of fen, not {amount_fen!r}"
        )
    limits.check("adjustment", amount_fen)
    customer = AccountCode(AccountKind(target), str(account_id))
    debit, credit = (
        (AccountCode.adjustments(), customer)
        if amount_fen > 0
        else (customer, AccountCode.adjustments())
    )
    candidate = new_transfer(
        key=namespaced("adjustment", idempotency_key),
        debit=debit,
        credit=credit,
        amount=abs(amount_fen),
        kind=TransferKind.ADJUSTMENT,
        now=utc_now(),
        at=at,
        reason=reason,
        actor=actor,
    )
    with uow:
        _require_account(uow, account_id)
        return _settle(
            uow,
            candidate,
            action="ledger.adjustment",
            entity=("account", account_id),
            enforce_limits=False,
        )


def reverse_transfer(
    uow: UnitOfWork,
    *,
    transfer_id: str,
    reason: str,
    actor: str,
    idempotency_key: str,
    at: datetime | None = None,
) -> Transfer:
    """Undo a posted transfer with a new one, accounts swapped; at most once."""
    now = utc_now()
    with uow:
        ledger = uow.ledger
        original = _require_transfer(ledger, transfer_id)
        candidate = reverse(
            original,
            reason=reason,
            actor=actor,
            key=namespaced("reversal", idempotency_key),
            at=now,
            effective_at=at,
        )
        return _settle(
            uow,
            candidate,
            action="ledger.reversal",
            entity=("transfer", transfer_id),
            ledger=ledger,
        )


def place_hold(
    uow: UnitOfWork,
    *,
    account_id: int,
    amount_fen: int,
    idempotency_key: str,
    actor: str,
    at: datetime | None = None,
    reason: str = "",
    kind: TransferKind = TransferKind.TOP_UP,
) -> Transfer:
    """Reserve money for a top-up in flight: a pending prepaid → meter_credit.

    Refused (OverdraftRefused) beyond the available prepaid balance. Holds
    never expire: each is posted or voided once.
    """
    candidate = new_transfer(
        key=namespaced("hold", idempotency_key),
        debit=AccountCode.prepaid(str(account_id)),
        credit=AccountCode.meter_credit(str(account_id)),
        amount=amount_fen,
        kind=kind,
        now=utc_now(),
        at=at,
        reason=reason,
        actor=actor,
        status=TransferStatus.PENDING,
    )
    with uow:
        _require_account(uow, account_id)
        return _settle(uow, candidate, action="ledger.hold", entity=("account", account_id))


def post_hold(
    uow: UnitOfWork,
    *,
    hold_id: str,
    amount_fen: int | None = None,
    idempotency_key: str,
    actor: str,
    at: datetime | None = None,
    reason: str = "",
) -> Transfer:
    """The meter applied it: move `amount_fen` (all of the hold by default), release the rest."""
    return _resolve(uow, hold_id, HoldAction.POST, amount_fen, idempotency_key, actor, at, reason)


def void_hold(
    uow: UnitOfWork,
    *,
    hold_id: str,
    idempotency_key: str,
    actor: str,
    at: datetime | None = None,
    reason: str = "",
) -> Transfer:
    """The meter certainly did not apply it: release the whole hold."""
    return _resolve(uow, hold_id, HoldAction.VOID, None, idempotency_key, actor, at, reason)


def account_balances(uow: UnitOfWork, account_id: int) -> dict[str, Balance]:
    """The account's balances by ledger account kind: `prepaid`, `meter_credit`."""
    with uow:
        _require_account(uow, account_id)
        return {str(code.kind): b for code, b in uow.ledger.balances_of(account_id).items()}


def account_transfers(
    uow: UnitOfWork, account_id: int, *, offset: int = 0, limit: int = 100
) -> list[Transfer]:
    """The account's ledger lines, newest first."""
    with uow:
        _require_account(uow, account_id)
        return uow.ledger.transfers_of(account_id, offset=offset, limit=limit)


def verify_ledger(uow: UnitOfWork) -> LedgerReport:
    """Recompute every balance from the transfers and check the whole ledger."""
    with uow:
        return uow.ledger.verify()


def _settle(
    uow: UnitOfWork,
    candidate: Transfer,
    *,
    action: str,
    entity: tuple[str, object],
    enforce_limits: bool = True,
    ledger: LedgerRepository | None = None,
) -> Transfer:
    transfer, new = record_once(ledger or uow.ledger, candidate, enforce_limits=enforce_limits)
    if new:
        uow.audit.record(
            actor=transfer.actor,
            action=action,
            entity=entity[0],
            entity_id=entity[1],
            after=describe(transfer),
            at=transfer.recorded_at,
        )
        uow.commit()
    return transfer


def _resolve(
    uow: UnitOfWork,
    hold_id: str,
    action: HoldAction,
    amount_fen: int | None,
    idempotency_key: str,
    actor: str,
    at: datetime | None,
    reason: str,
) -> Transfer:
    now = utc_now()
    with uow:
        ledger = uow.ledger
        hold = _require_transfer(ledger, hold_id)
        candidate = resolve_hold(
            hold,
            action,
            amount_fen,
            key=namespaced(str(action), idempotency_key),
            at=now,
            effective_at=at,
            reason=reason,
            actor=actor,
        )
        return _settle(
            uow, candidate, action=f"ledger.{action}", entity=("transfer", hold_id), ledger=ledger
        )


def _require_account(uow: UnitOfWork, account_id: int) -> None:
    if uow.accounts.get(account_id) is None:
        raise NotFound(f"no account {account_id}")


def _require_transfer(ledger: LedgerRepository, transfer_id: str) -> Transfer:
    transfer = ledger.transfer(transfer_id)
    if transfer is None:
        raise NotFound(f"no transfer {transfer_id}")
    return transfer
