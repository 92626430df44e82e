"""The display of a system-mode meter: its balance sent with `setremain`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.tables.accounts import Account, Meter
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.commands import CtrlType, SetRemain
from gasbill.domain.outbox import CommandStatus
from gasbill.service.commands.queue import CommandPolicy, queue_command
from gasbill.service.decisions.outcomes import DisplaySync, JudgedBalance
from gasbill.service.decisions.policies import ACTOR
from gasbill.service.ports import CommandRecord, DecisionStateRecord


def sync_display(
    uow: UnitOfWork,
    command_policy: CommandPolicy,
    account: Account,
    meter: Meter,
    row: DecisionStateRecord,
    judged: JudgedBalance,
    now: datetime,
) -> DisplaySync | None:
    """Queue `setremain` with the balance, replacing the value of one still waiting."""
    target = judged.balance.rounded()
    if row.display_fen == target.fen:
        return None
    intent = SetRemain(target)
    reason = f"display sync: balance {target.fixed()} yuan"
    assert meter.id is not None
    waiting = uow.session.exec(
        select(Command)
        .where(
            Command.meter_id == meter.id,
            Command.ctrl_type == str(CtrlType.SET_REMAIN),
            Command.status == CommandStatus.QUEUED,
            col(Command.ctrl_id).is_(None),
        )
        .order_by(col(Command.id))
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).first()
    command: CommandRecord
    if waiting is not None:
        waiting.intent = intent
        waiting.reason = reason
        CommandStore(uow.session).save(waiting)
        command, replaced = waiting, True
    else:
        command = queue_command(
            uow,
            intent,
            meter=meter,
            now=now,
            policy=command_policy,
            account_id=account.id,
            reason=reason,
            actor=ACTOR,
        )
        replaced = False
    row.display_fen = target.fen
    assert command.id is not None
    return DisplaySync(target, command.id, replaced)
