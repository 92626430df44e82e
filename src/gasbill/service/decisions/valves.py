"""The valve: closing after the grace period, reopening after payment, following our commands."""

from __future__ import annotations

from datetime import datetime

from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType, SetValveOff, SetValveOn
from gasbill.domain.decisions import (
    ClosedBy,
    ValveHold,
    ValveOff,
    ValveOn,
    ValvePolicy,
    ValvePosition,
    ValveState,
    decide_valve_off,
    decide_valve_on,
)
from gasbill.domain.outbox import OPEN, CommandStatus
from gasbill.service import ports
from gasbill.service.commands.queue import CommandPolicy, queue_command
from gasbill.service.decisions.outcomes import Decision, JudgedBalance
from gasbill.service.decisions.policies import ACTOR
from gasbill.service.decisions.state import state_row
from gasbill.service.ports import AccountRecord as Account
from gasbill.service.ports import DecisionStateRecord, UnitOfWork
from gasbill.service.ports import MeterRecord as Meter


def _valve_state(row: DecisionStateRecord) -> ValveState:
    return ValveState(
        position=ValvePosition(row.valve_position),
        closed_by=ClosedBy(row.closed_by) if row.closed_by else None,
        below_cutoff_since=row.below_cutoff_since,
    )


def _store_valve(row: DecisionStateRecord, state: ValveState) -> None:
    row.valve_position = state.position.value
    row.closed_by = state.closed_by.value if state.closed_by else None
    row.below_cutoff_since = state.below_cutoff_since


def decide_valve(
    uow: UnitOfWork,
    command_policy: CommandPolicy,
    account: Account,
    meter: Meter,
    row: DecisionStateRecord,
    judged: JudgedBalance,
    policy: ValvePolicy,
    now: datetime,
) -> list[Decision]:
    balance = judged.balance
    opened = decide_valve_on(balance, state=_valve_state(row), policy=policy, now=now)
    state = opened.state
    if (
        opened.hold is ValveHold.COMMAND_IN_FLIGHT
        and state.position is ValvePosition.CLOSE_PENDING
        and balance >= policy.reopen_threshold
        and _cancel_waiting_close(uow, row, now)
    ):
        # paid before our close went out: it never will, the valve stays open
        state = ValveState(below_cutoff_since=None)
    decisions: list[Decision] = []
    if opened.decision is not None:
        _queue_valve(uow, command_policy, account, meter, row, SetValveOn(), opened.decision)
        decisions.append(opened.decision)
    closed = decide_valve_off(balance, mode=BillingMode.SYSTEM, state=state, policy=policy, now=now)
    _store_valve(row, closed.state)
    if closed.decision is not None:
        _queue_valve(uow, command_policy, account, meter, row, SetValveOff(), closed.decision)
        decisions.append(closed.decision)
    return decisions


def _queue_valve(
    uow: UnitOfWork,
    command_policy: CommandPolicy,
    account: Account,
    meter: Meter,
    row: DecisionStateRecord,
    intent: SetValveOn | SetValveOff,
    decision: ValveOn | ValveOff,
) -> None:
    command = queue_command(
        uow,
        intent,
        meter=meter,
        now=decision.at,
        policy=command_policy,
        account_id=account.id,
        reason=decision.reason,
        actor=ACTOR,
    )
    row.valve_command_id = command.id
    row.valve_reason = decision.reason[:500]
    row.valve_changed_at = decision.at
    uow.audit.record(
        actor=ACTOR,
        action="valve.off" if isinstance(intent, SetValveOff) else "valve.on",
        entity="account",
        entity_id=account.id,
        after={
            "command": command.id,
            "balance_fen": decision.balance.rounded().fen,
            "reason": decision.reason,
        },
        at=decision.at,
    )


def _cancel_waiting_close(uow: UnitOfWork, row: DecisionStateRecord, now: datetime) -> bool:
    """Cancel our close if it has not gone out yet (or waits for a person); True if done."""
    if row.valve_command_id is None:
        return False
    # a command another transaction holds (the dispatcher, a result) is on its way:
    # never wait for it while holding the account's state
    command = uow.commands.lock_if_free(row.valve_command_id)
    if command is None or command.ctrl_type != CtrlType.SET_VALVE_OFF:
        return False
    waiting = command.status == CommandStatus.QUEUED and command.ctrl_id is None
    if not (waiting or command.status == CommandStatus.ATTENTION):
        return False
    command.status, command.outcome, command.finished_at = (
        CommandStatus.CANCELLED,
        "cancelled",
        now,
    )
    command.last_error = "cancelled: the balance reached the reopen threshold first"
    uow.commands.save(command)
    row.valve_command_id = None
    row.closed_by = None
    row.valve_reason = f"close #{command.id} cancelled: paid before it was sent"
    row.valve_changed_at = now
    return True


def on_valve_command_ended(
    uow: ports.UnitOfWork, command: ports.CommandRecord, now: datetime
) -> None:
    """Follow a `setvalveoff`/`setvalveon` that has just ended, inside the caller's unit of work.

    Call it after the ending is applied (the command's status set). DONE:
    the valve is closed (by us) or open. Retried by the outbox or waiting for
    a person: still pending. Given up otherwise (cancelled, refused): the
    position goes back; a failed close restarts the grace period, a
    cancelled open leaves the valve to a person.
    """
    if command.ctrl_type not in (CtrlType.SET_VALVE_OFF, CtrlType.SET_VALVE_ON):
        return
    account_id = command.account_id
    if account_id is None:
        binding = uow.accounts.binding_of_meter(command.meter_id)
        account_id = binding.account_id if binding is not None else None
    if account_id is None:
        return
    row = state_row(uow, account_id)
    _follow(row, command, now)
    uow.decision_states.save(row)


def catch_up(uow: UnitOfWork, row: DecisionStateRecord, now: datetime) -> None:
    if row.valve_command_id is None:
        return
    command = uow.commands.get(row.valve_command_id)
    if command is not None:
        _follow(row, command, now)


def _follow(row: DecisionStateRecord, command: ports.CommandRecord, now: datetime) -> None:
    status = CommandStatus(command.status)
    if status in OPEN or status is CommandStatus.ATTENTION:
        return  # still to be sent, in flight, retried, or waiting for a person
    closing = command.ctrl_type == CtrlType.SET_VALVE_OFF
    ours = command.id is not None and command.id == row.valve_command_id
    if not ours:
        # someone else's valve command: only a success tells us something, and
        # only when none of ours is pending
        if status is not CommandStatus.DONE or row.valve_command_id is not None:
            return
        row.valve_position = (ValvePosition.CLOSED if closing else ValvePosition.OPEN).value
        row.closed_by = ClosedBy.UNKNOWN.value if closing else None
        row.valve_reason = f"{'close' if closing else 'open'} #{command.id} by {command.actor}"
        row.valve_changed_at = now
        row.updated_at = now
        return
    row.valve_command_id = None
    row.valve_changed_at = row.updated_at = now
    if status is CommandStatus.DONE:
        row.valve_position = (ValvePosition.CLOSED if closing else ValvePosition.OPEN).value
        row.closed_by = ClosedBy.US.value if closing else None
        return
    row.valve_reason = f"{command.ctrl_type.rsplit('.', 1)[-1]} #{command.id} ended {status}"
    if closing:
        row.valve_position, row.closed_by = ValvePosition.OPEN.value, None
        if row.below_cutoff_since is not None:
            row.below_cutoff_since = now  # a new grace period before trying again
    else:
        row.valve_position = ValvePosition.CLOSED.value
        if status is CommandStatus.CANCELLED:
            row.closed_by = ClosedBy.UNKNOWN.value  # a person stopped our reopening
