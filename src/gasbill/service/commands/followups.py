"""What a command's ending leaves behind: its hold resolved, an exception for a clerk, the
command back in the queue (a new define_no, or the same one if never sent) or to a person."""

from __future__ import annotations

from datetime import datetime

from gasbill.domain.ledger import HoldAction, resolve_hold
from gasbill.domain.outbox import (
    CommandStatus,
    next_attempt,
)
from gasbill.service.commands.queue import CommandPolicy, new_define_no
from gasbill.service.ports import CommandRecord, MeterRecord, NewException, UnitOfWork


def resolve_hold_of(
    uow: UnitOfWork, command: CommandRecord, action: HoldAction, now: datetime
) -> None:
    if command.hold_id is None:
        return
    hold = uow.ledger.transfer(command.hold_id)
    if hold is None:
        raise LookupError(f"command {command.id}: hold {command.hold_id} is missing")
    resolution = resolve_hold(
        hold,
        action,
        key=f"{action.value}:{command.hold_id}",
        at=now,
        reason=f"{command.ctrl_type.rsplit('.', 1)[-1]} #{command.id} {action.value}",
        actor="outbox",
    )
    uow.ledger.record(resolution)


def meter_of(uow: UnitOfWork, command: CommandRecord) -> MeterRecord:
    meter = uow.accounts.meter_by_id(command.meter_id)
    assert meter is not None
    return meter


def open_exception(
    uow: UnitOfWork, command: CommandRecord, kind: str, detail: str, now: datetime
) -> None:
    opened = NewException(
        kind=kind,
        company_no=command.company_no,
        meter_comm_no=command.meter_comm_no,
        reading_at=command.created_at,
        detail=detail,
        at=now,
        account_id=command.account_id,
    )
    uow.exceptions.add_once([opened])


def send_again(
    uow: UnitOfWork, command: CommandRecord, why: str, policy: CommandPolicy, now: datetime
) -> None:
    """A command that ended without effect and is safe to repeat goes out as a new one."""
    if command.attempts >= policy.max_attempts:
        command.status = CommandStatus.ATTENTION
        uow.commands.save(command)
        open_exception(
            uow,
            command,
            "command_attention",
            f"{command.ctrl_type} #{command.id} failed {command.attempts} times "
            f"({why}); cancel or retry it",
            now,
        )
        return
    command.status = CommandStatus.QUEUED
    command.define_no = new_define_no()  # the ended record keeps the old one on the platform
    command.ctrl_id = None
    command.platform_state = None
    command.finished_at = None
    command.last_error = why[:1000]
    command.next_attempt_at = next_attempt(
        command.attempts, now, base=policy.backoff_base, cap=policy.backoff_cap
    )
    uow.commands.save(command)


def retry_later(
    uow: UnitOfWork, command: CommandRecord, why: str, *, policy: CommandPolicy, now: datetime
) -> None:
    """Back to the queue (same define_no: the platform never had it), or to a person."""
    if command.attempts >= policy.max_attempts:
        command.status = CommandStatus.ATTENTION
        command.last_error = why[:1000]
        uow.commands.save(command)
        open_exception(
            uow,
            command,
            "command_attention",
            f"{command.ctrl_type} #{command.id} could not be sent after "
            f"{command.attempts} attempts ({why}); cancel or retry it",
            now,
        )
        return
    command.status = CommandStatus.QUEUED
    command.last_error = why[:1000]
    command.next_attempt_at = next_attempt(
        command.attempts, now, base=policy.backoff_base, cap=policy.backoff_cap
    )
    uow.commands.save(command)
