"""What a command's ending does: post or void its hold, confirm a ladder, or settle.

Reports and polled records come in any order and more than once: a command
already ended ignores them (only a Retry we asked for reopens it), and a
non-final state never moves a command backwards. Every ending is applied
once, inside the caller's unit of work.
"""

from __future__ import annotations

import logging
from datetime import datetime

from gasbill.domain.commands import CtrlState, CtrlType, SetPrice
from gasbill.domain.outbox import (
    IN_FLIGHT,
    CommandStatus,
)
from gasbill.jsontext import dumps_exact, loads_exact
from gasbill.service.commands.followups import send_again
from gasbill.service.commands.money_endings import charge_state_ending, money_ending
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.decisions import on_valve_command_ended
from gasbill.service.ports import (
    CommandCodec,
    CommandRecord,
    PlatformCommandState,
    UnitOfWork,
)

log = logging.getLogger("gasbill.commands")


def apply_record(
    uow: UnitOfWork,
    codec: CommandCodec,
    command: CommandRecord,
    record: PlatformCommandState,
    *,
    policy: CommandPolicy,
    now: datetime,
) -> None:
    state = record.state
    if state is None:
        log.warning("command %s: unknown ctrl_state %s", command.id, record.ctrl_state)
        return
    apply_state(
        uow,
        codec,
        command,
        state,
        record.return_data,
        record.ctrl_feedback_msg or "",
        policy=policy,
        now=now,
    )


def apply_state(
    uow: UnitOfWork,
    codec: CommandCodec,
    command: CommandRecord,
    state: CtrlState,
    return_data: object,
    feedback: str,
    *,
    policy: CommandPolicy,
    now: datetime,
    cancelled_while_waiting: bool = False,
) -> None:
    store = uow.commands
    if CommandStatus(command.status) not in IN_FLIGHT:
        return  # ended already (or not sent): a repeated or late report changes nothing
    if not state.is_final:
        if command.platform_state is None or state > command.platform_state:
            command.platform_state = int(state)
            store.save(command)
        return
    command.platform_state = int(state)
    command.return_data = _text(return_data)
    command.feedback = feedback[:2000]
    command.finished_at = now
    result = (
        codec.decode_result(command.ctrl_type, return_data) if state is CtrlState.SUCCESS else None
    )
    ctrl_type = CtrlType(command.ctrl_type)
    if ctrl_type in (CtrlType.REMOTE_CHARGE, CtrlType.OPEN_ACCOUNT):
        money_ending(uow, command, ctrl_type, state, result, policy, now, cancelled_while_waiting)
    elif ctrl_type is CtrlType.GET_CHARGE_STATE:
        charge_state_ending(uow, command, result, policy, now)
    elif state is CtrlState.SUCCESS:
        _done(uow, command, now)
    else:
        command.status = CommandStatus.REFUSED
        command.outcome = f"state {int(state)}"
        store.save(command)
        send_again(uow, command, f"ended in state {int(state)}", policy, now)
    store.save(command)
    if ctrl_type in (CtrlType.SET_VALVE_OFF, CtrlType.SET_VALVE_ON):
        on_valve_command_ended(uow, command, now)
    if ctrl_type in MONEY_ENDINGS or (
        ctrl_type is CtrlType.GET_CHARGE_STATE and command.settles_id
    ):
        decide_after(uow, policy, command.account_id, now)


# a top-up or an opening ending (or settled) changes what the meter holds: decide at once
MONEY_ENDINGS = frozenset({CtrlType.REMOTE_CHARGE, CtrlType.OPEN_ACCOUNT})


def decide_after(
    uow: UnitOfWork, policy: CommandPolicy, account_id: int | None, now: datetime
) -> None:
    """The account's decisions (valve on, warnings) in this unit of work, in a savepoint:
    a failing decision is logged and left to the sweep, never fails the ending itself."""
    if account_id is None or policy.decide is None:
        return
    try:
        with uow.savepoint():
            policy.decide(uow, account_id, now)
    except Exception:
        log.exception("decisions after a command's ending failed on account %s", account_id)


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return dumps_exact(value)


def _done(uow: UnitOfWork, command: CommandRecord, now: datetime) -> None:
    command.status, command.outcome = CommandStatus.DONE, "applied"
    if isinstance(command.intent, SetPrice):  # the meter holds the ladder it was sent
        prepay = uow.commands.prepay_state(command.meter_id)
        prepay.ladder, prepay.ladder_confirmed_at = command.intent.ladder, now
        uow.commands.save_prepay(prepay)


def apply_stored_reports(
    uow: UnitOfWork,
    codec: CommandCodec,
    command: CommandRecord,
    *,
    policy: CommandPolicy,
    now: datetime,
) -> None:
    """Reports that came before we knew the command's ctrl_id apply once we do."""
    if command.ctrl_id is None:
        return
    store = uow.commands
    for report in store.unmatched_reports(command.company_no, command.ctrl_id):
        payload = loads_exact(report.payload)
        apply_state(
            uow,
            codec,
            command,
            CtrlState(report.ctrl_state),
            payload.get("return_data"),
            str(payload.get("ctrl_feedback_msg") or ""),
            policy=policy,
            now=now,
        )
        report.matched_at = now
        store.save_report(report)
