"""The display of a system-mode meter: its balance sent with `setremain`."""

from __future__ import annotations

from datetime import datetime

from gasbill.domain.commands import CtrlType, SetRemain
from gasbill.service.commands.queue import CommandPolicy, queue_command
from gasbill.service.decisions.outcomes import DisplaySync, JudgedBalance
from gasbill.service.decisions.policies import ACTOR
from gasbill.service.ports import AccountRecord as Account
from gasbill.service.ports import CommandRecord, DecisionStateRecord, UnitOfWork
from gasbill.service.ports import MeterRecord as Meter


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
    waiting = uow.commands.waiting_unsent(meter.id, str(CtrlType.SET_REMAIN))
    command: CommandRecord
    if waiting is not None:
        waiting.intent = intent
        waiting.reason = reason
        uow.commands.save(waiting)
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
