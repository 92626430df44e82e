"""The endings that move money: a top-up (`remotecharge`) or an opening (`openaccount`)
applied, refused or unknown; and the charge-state read that settles an unknown one or
sets the meter's counters as the baseline for the top-ups to come."""

from __future__ import annotations

from datetime import datetime

from gasbill.domain.commands import (
    CommandResult,
    CtrlState,
    CtrlType,
    GetChargeState,
    OpenAccount,
    RemoteChargeState,
)
from gasbill.domain.ledger import HoldAction
from gasbill.domain.outbox import (
    CommandStatus,
    Counters,
    Settlement,
    Verdict,
    settle_top_up,
    verdict,
)
from gasbill.service.commands.followups import (
    meter_of,
    open_exception,
    resolve_hold_of,
    send_again,
)
from gasbill.service.commands.queue import CommandPolicy, queue_command
from gasbill.service.ports import CommandRecord, PrepayStateRecord, UnitOfWork


def money_ending(
    uow: UnitOfWork,
    command: CommandRecord,
    ctrl_type: CtrlType,
    state: CtrlState,
    result: CommandResult | None,
    policy: CommandPolicy,
    now: datetime,
    cancelled_while_waiting: bool,
) -> None:
    store = uow.commands
    prepay = store.prepay_state(command.meter_id)
    ending = verdict(ctrl_type, state, result, cancelled_while_waiting=cancelled_while_waiting)
    if ending is Verdict.APPLIED:
        resolve_hold_of(uow, command, HoldAction.POST, now)
        command.status, command.outcome = CommandStatus.DONE, "applied"
        if ctrl_type is CtrlType.REMOTE_CHARGE:
            _confirm(prepay, command.charge_times or 0, command.total_fen or 0, now)
        else:
            _opened(uow, command, prepay, policy, now)
    elif ending is Verdict.NOT_APPLIED:
        resolve_hold_of(uow, command, HoldAction.VOID, now)
        command.status, command.outcome = CommandStatus.REFUSED, "not_applied"
        open_exception(
            uow,
            command,
            "top_up_refused" if ctrl_type is CtrlType.REMOTE_CHARGE else "open_refused",
            f"{ctrl_type.name.lower()} #{command.id} was not applied by the meter "
            f"(state {int(state)}): the money stays in prepaid; retry or refund",
            now,
        )
    else:
        _settle_later(uow, command, state, prepay, policy, now)


def _opened(
    uow: UnitOfWork,
    command: CommandRecord,
    prepay: PrepayStateRecord,
    policy: CommandPolicy,
    now: datetime,
) -> None:
    """An opening applied: the meter holds its ladder, and its own counters become the
    baseline for the top-ups to come. Until they are read no top-up may go (its
    charge_times and total_value come from them), so the read blocks the meter's other
    prepay commands as a settling does."""
    if isinstance(command.intent, OpenAccount):  # the opened meter holds the ladder it carried
        prepay.ladder, prepay.ladder_confirmed_at = command.intent.ladder, now
    baseline = queue_command(
        uow,
        GetChargeState(),
        meter=meter_of(uow, command),
        now=now,
        policy=policy,
        account_id=command.account_id,
        reason=f"baseline after account opening #{command.id}",
    )
    prepay.blocked_by = baseline.id
    prepay.updated_at = now
    uow.commands.save_prepay(prepay)


def _settle_later(
    uow: UnitOfWork,
    command: CommandRecord,
    state: CtrlState,
    prepay: PrepayStateRecord,
    policy: CommandPolicy,
    now: datetime,
) -> None:
    """Ended without proof: the meter is blocked and its counters read to settle it."""
    command.status, command.outcome = CommandStatus.UNKNOWN, "unknown"
    prepay.blocked_by = command.id
    prepay.updated_at = now
    uow.commands.save_prepay(prepay)
    queue_command(
        uow,
        GetChargeState(),
        meter=meter_of(uow, command),
        now=now,
        policy=policy,
        account_id=command.account_id,
        settles_id=command.id,
        reason=f"settle #{command.id}: ended in state {int(state)} without proof",
    )


def charge_state_ending(
    uow: UnitOfWork,
    command: CommandRecord,
    result: CommandResult | None,
    policy: CommandPolicy,
    now: datetime,
) -> None:
    store = uow.commands
    prepay = store.prepay_state(command.meter_id)
    if not isinstance(result, RemoteChargeState):
        command.status, command.outcome = CommandStatus.REFUSED, "unreadable"
        send_again(uow, command, "no readable charge state", policy, now)
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
        open_exception(
            uow,
            target,
            "open_unknown",
            f"account opening #{target.id} ended without proof; the meter reports "
            f"{result.remote_charge_times} remote top-ups totalling "
            f"{result.remote_total_value}: check the meter, then post or void",
            now,
        )
        return
    _settle(uow, target, prepay, result, now)


def _settle(
    uow: UnitOfWork,
    target: CommandRecord,
    prepay: PrepayStateRecord,
    result: RemoteChargeState,
    now: datetime,
) -> None:
    """A top-up of unknown outcome settled by the meter's counters: applied, not applied,
    or (counters that fit neither) left to a person with the meter still blocked."""
    store = uow.commands
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
        open_exception(
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
        open_exception(
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
    store.save_prepay(prepay)


def _baseline(
    uow: UnitOfWork,
    command: CommandRecord,
    prepay: PrepayStateRecord,
    result: RemoteChargeState,
    now: datetime,
) -> None:
    card_total = result.card_total_value.rounded().fen
    if prepay.card_times is not None and (
        prepay.card_times != result.card_charge_times or prepay.card_total_fen != card_total
    ):
        open_exception(
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
    uow.commands.save_prepay(prepay)


def _confirm(prepay: PrepayStateRecord, times: int, total_fen: int, now: datetime) -> None:
    prepay.confirmed_times, prepay.confirmed_total_fen = times, total_fen
    prepay.updated_at = now
