"""What a person can do with a command: cancel it, or have the platform retry it."""

from __future__ import annotations

from datetime import datetime

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.client import PlatformError
from gasbill.domain.commands import CtrlState
from gasbill.domain.ledger import HoldAction
from gasbill.domain.outbox import CommandStatus
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.commands.dispatch import PlatformApi
from gasbill.service.commands.results import resolve_hold_of


def cancel_command(
    uow: UnitOfWork, platform: PlatformApi, command_id: int, *, actor: str, now: datetime
) -> Command:
    """Cancel a command: locally if not yet sent, else on the platform while still waiting."""
    with uow:
        store = CommandStore(uow.session)
        command = store.get(command_id, lock=True)
        if command is None:
            raise NotFound(f"no command {command_id}")
        before = command.status
        if (
            command.status in (CommandStatus.QUEUED, CommandStatus.ATTENTION)
            and command.ctrl_id is None
        ):
            resolve_hold_of(uow, command, HoldAction.VOID, now)
            command.status, command.outcome, command.finished_at = (
                CommandStatus.CANCELLED,
                "cancelled",
                now,
            )
            store.save(command)
        elif command.status == CommandStatus.SENT and command.ctrl_id is not None:
            try:
                platform.cancel(command.ctrl_id)
            except PlatformError as exc:
                raise Conflict(f"the platform would not cancel it: {exc}") from None
            # cancelled on the platform: it was still waiting, so the meter never saw it
            resolve_hold_of(uow, command, HoldAction.VOID, now)
            command.status, command.outcome, command.finished_at = (
                CommandStatus.CANCELLED,
                "cancelled",
                now,
            )
            command.platform_state = int(CtrlState.CANCELLED)
            store.save(command)
        else:
            raise Conflict(f"a command that is {command.status} cannot be cancelled")
        uow.audit.record(
            actor=actor,
            action="command.cancel",
            entity="command",
            entity_id=command.id,
            before={"status": before},
            after={"status": command.status},
        )
        uow.commit()
        return command


def retry_command(
    uow: UnitOfWork,
    platform: PlatformApi,
    command_id: int,
    *,
    actor: str,
    now: datetime,
) -> Command:
    """Give a command that needs a person another go: the platform's Retry, or a resend."""
    with uow:
        store = CommandStore(uow.session)
        command = store.get(command_id, lock=True)
        if command is None:
            raise NotFound(f"no command {command_id}")
        if command.status != CommandStatus.ATTENTION:
            raise Conflict(
                f"only a command needing attention is retried, not a {command.status} one"
            )
        if command.ctrl_id is not None:
            try:
                platform.retry(command.ctrl_id)
            except PlatformError as exc:
                raise Conflict(f"the platform would not retry it: {exc}") from None
            # the one way a command leaves a final state: a Retry we asked for (back to 0)
            command.status, command.platform_state, command.sent_at = (
                CommandStatus.SENT,
                int(CtrlState.WAITING),
                now,
            )
        else:
            command.status, command.next_attempt_at = CommandStatus.QUEUED, now
        command.attempts = 0
        command.finished_at = None
        store.save(command)
        uow.audit.record(
            actor=actor,
            action="command.retry",
            entity="command",
            entity_id=command.id,
            before={"status": "attention"},
            after={"status": command.status},
        )
        uow.commit()
        return command
