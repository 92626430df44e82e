"""What a command's ending does: post or void its hold, confirm a ladder, or settle.

Reports and polled records come in any order and more than once: a command
already ended ignores them (only a Retry we asked for reopens it), and a
non-final state never moves a command backwards. Every ending is applied
once, inside the caller's unit of work.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.tables.commands import Command, MeterPrepayState
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.platform.jsontext import dumps_exact, loads_exact
from gasbill.adapters.platform.wire import CtrlDataRecord
from gasbill.domain.commands import (
    CommandResult,
    CtrlState,
    CtrlType,
    OpenAccount,
    RemoteChargeState,
    SetPrice,
)
from gasbill.domain.ledger import HoldAction, resolve_hold
from gasbill.domain.outbox import (
    IN_FLIGHT,
    CommandStatus,
    Counters,
    Settlement,
    Verdict,
    next_attempt,
    settle_top_up,
    verdict,
)
from gasbill.service.commands.queue import CommandPolicy, new_define_no, queue_command
from gasbill.service.decisions import on_valve_command_ended
from gasbill.service.ports import NewException

log = logging.getLogger("gasbill.commands")


def apply_record(
    uow: UnitOfWork,
    codec: Codec,
    command: Command,
    record: CtrlDataRecord,
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
    codec: Codec,
    command: Command,
    state: CtrlState,
    return_data: Any,
    feedback: str,
    *,
    policy: CommandPolicy,
    now: datetime,
    cancelled_while_waiting: bool = False,
) -> None:
    store = CommandStore(uow.session)
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
        _money_ending(
            uow, codec, command, ctrl_type, state, result, policy, now, cancelled_while_waiting
        )
    elif ctrl_type is CtrlType.GET_CHARGE_STATE:
        _charge_state_ending(uow, command, result, policy, now)
    elif state is CtrlState.SUCCESS:
        _done(uow, command, ctrl_type, now)
    else:
        command.status = CommandStatus.REFUSED
        command.outcome = f"state {int(state)}"
        store.save(command)
        _send_again(uow, command, f"ended in state {int(state)}", policy, now)
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
        with uow.session.begin_nested():
            policy.decide(uow, account_id, now)
    except Exception:
        log.exception("decisions after a command's ending failed on account %s", account_id)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return dumps_exact(value)


def _money_ending(
    uow: UnitOfWork,
    codec: Codec,
    command: Command,
    ctrl_type: CtrlType,
    state: CtrlState,
    result: CommandResult | None,
    policy: CommandPolicy,
    now: datetime,
    cancelled_while_waiting: bool,
) -> None:
    store = CommandStore(uow.session)
    prepay = store.prepay_state(command.meter_id)
    ending = verdict(ctrl_type, state, result, cancelled_while_waiting=cancelled_while_waiting)
    if ending is Verdict.APPLIED:
        resolve_hold_of(uow, command, HoldAction.POST, now)
        command.status, command.outcome = CommandStatus.DONE, "applied"
        if ctrl_type is CtrlType.REMOTE_CHARGE:
            _confirm(prepay, command.charge_times or 0, command.total_fen or 0, now)
        else:
            _ladder_on_meter(codec, command, prepay, now)
            # the meter's own counters become the baseline for the top-ups to come; until
            # they are read, no top-up may go (its charge_times and total_value come from
            # them), so the read blocks the meter's other prepay commands as a settling does
            baseline = queue_command(
                uow,
                meter=_meter(uow, command),
                ctrl_type=CtrlType.GET_CHARGE_STATE,
                ctrl_data="{}",
                now=now,
                policy=policy,
                account_id=command.account_id,
                reason=f"baseline after account opening #{command.id}",
            )
            prepay.blocked_by = baseline.id
            prepay.updated_at = now
            store.session.add(prepay)
    elif ending is Verdict.NOT_APPLIED:
        resolve_hold_of(uow, command, HoldAction.VOID, now)
        command.status, command.outcome = CommandStatus.REFUSED, "not_applied"
        _exception(
            uow,
            command,
            "top_up_refused" if ctrl_type is CtrlType.REMOTE_CHARGE else "open_refused",
            f"{ctrl_type.name.lower()} #{command.id} was not applied by the meter "
            f"(state {int(state)}): the money stays in prepaid; retry or refund",
            now,
        )
    else:
        command.status, command.outcome = CommandStatus.UNKNOWN, "unknown"
        prepay.blocked_by = command.id
        prepay.updated_at = now
        store.session.add(prepay)
        queue_command(
            uow,
            meter=_meter(uow, command),
            ctrl_type=CtrlType.GET_CHARGE_STATE,
            ctrl_data="{}",
            now=now,
            policy=policy,
            account_id=command.account_id,
            settles_id=command.id,
            reason=f"settle #{command.id}: ended in state {int(state)} without proof",
        )


def _charge_state_ending(
    uow: UnitOfWork,
    command: Command,
    result: CommandResult | None,
    policy: CommandPolicy,
    now: datetime,
) -> None:
    store = CommandStore(uow.session)
    prepay = store.prepay_state(command.meter_id)
    if not isinstance(result, RemoteChargeState):
        command.status, command.outcome = CommandStatus.REFUSED, "unreadable"
        _send_again(uow, command, "no readable charge state", policy, now)
        return
    command.status, command.outcome = CommandStatus.DONE, "read"
    target = store.get(command.settles_id, lock=True) if command.settles_id else None
    if target is None:
        _baseline(uow, command, prepay, result, now)
        return
    if CtrlType(target.ctrl_type) is not CtrlType.REMOTE_CHARGE:
        # an account opening of unknown outcome: its credit cannot be told apart here
        target.status = CommandStatus.ATTENTION
        store.save(target)
        _exception(
            uow,
            target,
            "open_unknown",
            f"account opening #{target.id} ended without proof; the meter reports "
            f"{result.remote_charge_times} remote top-ups totalling "
            f"{result.remote_total_value}: check the meter, then post or void",
            now,
        )
        return
    settlement = settle_top_up(
        Counters(prepay.confirmed_times, prepay.confirmed_total_fen),
        target.amount_fen or 0,
        result,
    )
    if settlement is Settlement.APPLIED:
        resolve_hold_of(uow, target, HoldAction.POST, now)
        _confirm(prepay, result.remote_charge_times, result.remote_total_value.rounded().fen, now)
        target.status, target.outcome = CommandStatus.SETTLED, "applied"
    elif settlement is Settlement.NOT_APPLIED:
        resolve_hold_of(uow, target, HoldAction.VOID, now)
        target.status, target.outcome = CommandStatus.SETTLED, "not_applied"
        _exception(
            uow,
            target,
            "top_up_not_applied",
            f"top-up #{target.id} did not reach the meter (its counter did not move): "
            "the money stays in prepaid; retry or refund",
            now,
        )
    else:
        target.status, target.outcome = CommandStatus.ATTENTION, "counter_mismatch"
        store.save(target)
        _exception(
            uow,
            target,
            "counter_mismatch",
            f"top-up #{target.id}: we confirmed {prepay.confirmed_times} top-ups "
            f"({prepay.confirmed_total_fen} fen), the meter reports "
            f"{result.remote_charge_times} ({result.remote_total_value}); a person "
            "must reconcile before the next top-up",
            now,
        )
        return
    prepay.blocked_by = None
    store.save(target)
    store.session.add(prepay)


def _baseline(
    uow: UnitOfWork,
    command: Command,
    prepay: MeterPrepayState,
    result: RemoteChargeState,
    now: datetime,
) -> None:
    card_total = result.card_total_value.rounded().fen
    if prepay.card_times is not None and (
        prepay.card_times != result.card_charge_times or prepay.card_total_fen != card_total
    ):
        _exception(
            uow,
            command,
            "card_top_up",
            f"the meter's IC-card counters moved ({prepay.card_times} → "
            f"{result.card_charge_times}): a card top-up outside the ledger",
            now,
        )
    prepay.card_times, prepay.card_total_fen = result.card_charge_times, card_total
    if prepay.baseline_at is None or prepay.blocked_by in (None, command.id):
        _confirm(prepay, result.remote_charge_times, result.remote_total_value.rounded().fen, now)
        prepay.baseline_at = now
    if prepay.blocked_by == command.id:  # the baseline after an opening is in: top-ups may go
        prepay.blocked_by = None
    uow.session.add(prepay)


def _confirm(prepay: MeterPrepayState, times: int, total_fen: int, now: datetime) -> None:
    prepay.confirmed_times, prepay.confirmed_total_fen = times, total_fen
    prepay.updated_at = now


def _ladder_on_meter(
    codec: Codec, command: Command, prepay: MeterPrepayState, now: datetime
) -> None:
    """An opened meter holds the ladder its `openaccount` carried."""
    intent = codec.decode_command(command.ctrl_type, command.ctrl_data)
    if isinstance(intent, OpenAccount):
        prepay.ladder = codec.encode(SetPrice(intent.ladder))[1]
        prepay.ladder_confirmed_at = now


def _done(uow: UnitOfWork, command: Command, ctrl_type: CtrlType, now: datetime) -> None:
    command.status, command.outcome = CommandStatus.DONE, "applied"
    if ctrl_type is CtrlType.SET_PRICE:
        prepay = CommandStore(uow.session).prepay_state(command.meter_id)
        prepay.ladder, prepay.ladder_confirmed_at = command.ctrl_data, now
        uow.session.add(prepay)


def resolve_hold_of(uow: UnitOfWork, command: Command, action: HoldAction, now: datetime) -> None:
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


def _meter(uow: UnitOfWork, command: Command) -> Any:
    meter = uow.accounts.meter_by_id(command.meter_id)
    assert meter is not None
    return meter


def _exception(uow: UnitOfWork, command: Command, kind: str, detail: str, now: datetime) -> None:
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


def _send_again(
    uow: UnitOfWork, command: Command, why: str, policy: CommandPolicy, now: datetime
) -> None:
    """A command that ended without effect and is safe to repeat goes out as a new one."""
    if command.attempts >= policy.max_attempts:
        command.status = CommandStatus.ATTENTION
        CommandStore(uow.session).save(command)
        _exception(
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
    CommandStore(uow.session).save(command)


def retry_later(
    uow: UnitOfWork, command: Command, why: str, *, policy: CommandPolicy, now: datetime
) -> None:
    """Back to the queue (same define_no: the platform never had it), or to a person."""
    if command.attempts >= policy.max_attempts:
        command.status = CommandStatus.ATTENTION
        command.last_error = why[:1000]
        CommandStore(uow.session).save(command)
        _exception(
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
    CommandStore(uow.session).save(command)


def apply_stored_reports(
    uow: UnitOfWork, codec: Codec, command: Command, *, policy: CommandPolicy, now: datetime
) -> None:
    """Reports that came before we knew the command's ctrl_id apply once we do."""
    if command.ctrl_id is None:
        return
    store = CommandStore(uow.session)
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
        uow.session.add(report)
