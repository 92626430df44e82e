"""What a person can do with a command: cancel it, or have the platform retry it.

A top-up the meter refused (0xbb) has ended for good: its hold was voided
and the money is back in `prepaid`. Retrying it queues a new top-up of the
same amount from that money, once (a second retry names the first).
"""

from __future__ import annotations

from datetime import datetime

from gasbill.domain.commands import CtrlState, CtrlType
from gasbill.domain.ledger import AccountCode, HoldAction
from gasbill.domain.outbox import CommandStatus
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.commands.followups import resolve_hold_of
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from gasbill.service.ports import CommandPlatform, CommandRecord, PlatformError, UnitOfWork


def cancel_command(
    uow: UnitOfWork, platform: CommandPlatform, command_id: int, *, actor: str, now: datetime
) -> CommandRecord:
    """Cancel a command: locally if not yet sent, else on the platform while still waiting."""
    with uow:
        store = uow.commands
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
    platform: CommandPlatform,
    command_id: int,
    *,
    actor: str,
    now: datetime,
    policy: CommandPolicy | None = None,
) -> CommandRecord:
    """Give a command that needs a person another go: the platform's Retry, or a resend;
    a refused top-up, a new top-up of the same amount (the command returned is the new one)."""
    with uow:
        store = uow.commands
        command = store.get(command_id, lock=True)
        if command is None:
            raise NotFound(f"no command {command_id}")
        if command.status == CommandStatus.REFUSED and command.ctrl_type == CtrlType.REMOTE_CHARGE:
            again = _top_up_again(uow, command, actor, now, policy or CommandPolicy())
            uow.commit()
            return again
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


def _top_up_again(
    uow: UnitOfWork, refused: CommandRecord, actor: str, now: datetime, policy: CommandPolicy
) -> CommandRecord:
    """A new top-up of the refused one's amount, from the money its void put back in prepaid."""
    amount = refused.amount_fen or 0
    if refused.account_id is None or amount <= 0:
        raise Conflict(f"command {refused.id} carries no account or amount to top up again")
    key = f"retry-of-{refused.id}"
    earlier = uow.ledger.transfer_by_key(f"top-up-hold:{key}")
    if earlier is not None:
        again = uow.commands.by_hold(earlier.id)
        raise Conflict(
            f"command {refused.id} was already topped up again as command "
            f"{again.id if again is not None else '?'}"
        )
    account = uow.accounts.get(refused.account_id, lock=True)
    if account is None or account.status != "active":
        raise Conflict(f"account {refused.account_id} is not active: refund the money instead")
    prepaid = AccountCode.prepaid(str(account.id))
    available = uow.ledger.lock([prepaid])[prepaid].available
    if available < amount:
        raise Conflict(
            f"only {available} fen of the {amount} are still in prepaid "
            "(refunded or used since): take a payment or top up less"
        )
    again = queue_top_up(
        uow,
        account,
        amount,
        key=key,
        actor=actor,
        now=now,
        policy=policy,
        reason=f"remote top-up, again after command {refused.id} was refused",
    )
    uow.audit.record(
        actor=actor,
        action="command.retry",
        entity="command",
        entity_id=refused.id,
        before={"status": refused.status},
        after={"topped_up_again_as": again.id, "amount_fen": amount},
    )
    return again
