"""Putting commands in the outbox, inside the caller's unit of work.

A command row is written in the same transaction as the decision and the
ledger hold that caused it, so neither exists without the other. It holds the
domain command (its intent); the platform adapter writes the wire's text only
when it is handed over. A top-up's `charge_times` and `total_value` (and so
its intent) are filled in only when it is dispatched, from the meter's
confirmed counters: one prepay command is in flight per meter, so the count
it carries is always the next one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict, Unpack

from gasbill.config import CommandSettings
from gasbill.domain.commands import Command as Intent
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import (
    AccountCode,
    Transfer,
    TransferKind,
    TransferStatus,
    new_transfer_id,
)
from gasbill.domain.outbox import CommandStatus
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.ports import (
    AccountRecord,
    CommandRecord,
    MeterRecord,
    NewCommand,
    UnitOfWork,
)


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """Timing of the outbox; every figure configurable."""

    timeout: timedelta = timedelta(hours=72)  # ctrl_timeout: meters wake about daily
    timeouts: dict[CtrlType, timedelta] = field(default_factory=dict)
    max_attempts: int = 6
    backoff_base: timedelta = timedelta(minutes=5)
    backoff_cap: timedelta = timedelta(hours=6)
    lookup_after: timedelta = timedelta(minutes=10)  # a lost Add reply: find it by define_no
    poll_after: timedelta = timedelta(hours=6)  # no news of a sent command: ask for it
    batch_size: int = 50
    # the account's decisions, run when a top-up or an opening ends (set by gasbill.bootstrap):
    # decide(uow, account_id, now), given the unit of work the ending runs in
    decide: Callable[..., object] | None = field(default=None, compare=False, repr=False)

    def timeout_for(self, ctrl_type: CtrlType) -> timedelta:
        return self.timeouts.get(ctrl_type, self.timeout)

    @classmethod
    def from_settings(cls, settings: CommandSettings) -> CommandPolicy:
        return cls(
            timeout=timedelta(hours=settings.timeout_hours),
            max_attempts=settings.max_attempts,
            backoff_base=timedelta(minutes=settings.backoff_base_minutes),
            backoff_cap=timedelta(minutes=settings.backoff_cap_minutes),
            lookup_after=timedelta(minutes=settings.lookup_after_minutes),
            poll_after=timedelta(minutes=settings.poll_after_minutes),
            batch_size=settings.batch_size,
        )


def new_define_no() -> str:
    """Our id for a command on the platform (`ctrl_define_no`, nvarchar(50))."""
    return "gb-" + uuid.uuid4().hex


class CommandDetails(TypedDict, total=False):
    """What a queued command may carry besides its intent: the one list `queue_command`
    and `new_command` take (and `queue_command` passes on as it is)."""

    account_id: int | None
    reason: str
    actor: str
    hold_id: str | None
    amount_fen: int | None
    settles_id: int | None
    campaign_id: int | None


def queue_command(
    uow: UnitOfWork,
    intent: Intent,
    *,
    meter: MeterRecord,
    now: datetime,
    policy: CommandPolicy,
    **details: Unpack[CommandDetails],
) -> CommandRecord:
    """Queue a command whose data is known now (all but top-ups: `queue_top_up`)."""
    return uow.commands.add(new_command(intent, meter=meter, now=now, policy=policy, **details))


def new_command(
    intent: Intent,
    *,
    meter: MeterRecord,
    now: datetime,
    policy: CommandPolicy,
    **details: Unpack[CommandDetails],
) -> NewCommand:
    """A queued command's row, not yet added (`queue_command` adds one; a campaign adds a
    page of them in one flush)."""
    return _new(intent.ctrl_type, intent, meter, now, policy, details)


def _new(
    ctrl_type: CtrlType,
    intent: Intent | None,
    meter: MeterRecord,
    now: datetime,
    policy: CommandPolicy,
    details: CommandDetails,
) -> NewCommand:
    assert meter.id is not None
    return NewCommand(
        define_no=new_define_no(),
        company_no=meter.company_no,
        meter_id=meter.id,
        meter_comm_no=meter.comm_no,
        ctrl_type=str(ctrl_type),
        intent=intent,
        status=CommandStatus.QUEUED,
        next_attempt_at=now,
        timeout_at=now + policy.timeout_for(ctrl_type),
        created_at=now,
        account_id=details.get("account_id"),
        hold_id=details.get("hold_id"),
        amount_fen=details.get("amount_fen"),
        settles_id=details.get("settles_id"),
        campaign_id=details.get("campaign_id"),
        reason=details.get("reason", "")[:500],
        actor=details.get("actor", "system")[:100],
    )


def active_meter(uow: UnitOfWork, account: AccountRecord) -> MeterRecord:
    assert account.id is not None
    binding = uow.accounts.active_binding(account.id)
    if binding is None:
        raise Conflict(f"account {account.number} has no meter")
    meter = uow.accounts.meter_by_id(binding.meter_id)
    if meter is None:
        raise NotFound(f"meter {binding.meter_id} is missing")
    return meter


def hold_for_meter(
    uow: UnitOfWork,
    account: AccountRecord,
    amount_fen: int,
    *,
    key: str,
    actor: str,
    now: datetime,
    reason: str,
) -> Transfer:
    """Reserve money in prepaid for the meter: prepaid → meter_credit, pending."""
    assert account.id is not None
    hold = Transfer(
        id=new_transfer_id(),
        idempotency_key=key,
        debit_account=AccountCode.prepaid(str(account.id)),
        credit_account=AccountCode.meter_credit(str(account.id)),
        amount=amount_fen,
        kind=TransferKind.TOP_UP,
        status=TransferStatus.PENDING,
        effective_at=now,
        recorded_at=now,
        reason=reason,
        actor=actor,
    )
    return uow.ledger.record(hold)


def queue_top_up(
    uow: UnitOfWork,
    account: AccountRecord,
    amount_fen: int,
    *,
    key: str,
    actor: str,
    now: datetime,
    policy: CommandPolicy,
    reason: str = "",
) -> CommandRecord:
    """Hold the amount and queue a `remotecharge` for the account's meter."""
    meter = active_meter(uow, account)
    hold = hold_for_meter(
        uow,
        account,
        amount_fen,
        key=f"top-up-hold:{key}",
        actor=actor,
        now=now,
        reason=reason or "remote top-up",
    )
    # its RemoteCharge is made at dispatch, with the count and total the meter has confirmed
    details = CommandDetails(
        account_id=account.id,
        reason=reason or "remote top-up",
        actor=actor,
        hold_id=hold.id,
        amount_fen=amount_fen,
    )
    return uow.commands.add(_new(CtrlType.REMOTE_CHARGE, None, meter, now, policy, details))
