"""Decisions on every balance change and in a periodic sweep (DESIGN §7).

`decide_account` runs inside the caller's unit of work, right after what
changed the balance (billing, a payment, a top-up's ending), and never
commits: a warning is recorded, and a valve command queued, in the same
transaction as the change behind it. It judges the account's balance (the
ledger's available prepaid money in system mode; the meter's reported
balance plus top-ups in flight in meter mode), runs the pure decision
functions with the state they last returned, and stores their new state.

The valve state follows the commands: `on_valve_command_ended` is called when
a `setvalveoff`/`setvalveon` of ours ends; `decide_account` also catches up
with a pending command that ended without that call (a cancellation, say).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.tables.accounts import Account, Meter
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.tables.decisions import BalanceWarning, DecisionState
from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.config import DecisionSettings, Settings
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType, SetRemain, SetValveOff, SetValveOn
from gasbill.domain.decisions import (
    ClosedBy,
    LowBalanceWarning,
    QuietHours,
    ValveHold,
    ValveOff,
    ValveOn,
    ValvePolicy,
    ValvePosition,
    ValveState,
    WarningPolicy,
    WarningReason,
    WarningState,
    decide_low_balance,
    decide_valve_off,
    decide_valve_on,
    meter_mode_balance,
)
from gasbill.domain.ledger import AccountCode
from gasbill.domain.ledger.balances import ZERO_BALANCE
from gasbill.domain.money import Money, Price, Volume
from gasbill.domain.outbox import OPEN, CommandStatus
from gasbill.service.accounts import NotFound
from gasbill.service.commands.queue import CommandPolicy, queue_intent

log = logging.getLogger("gasbill.decisions")

ACTOR = "decisions"
WINDOW_DAYS = 14  # DESIGN §7: average daily use of the last 14 frozen days


@dataclass(frozen=True, slots=True)
class DisplaySync:
    """Decision: send a system-mode meter its balance (`setremain`) for its display."""

    value: Money
    command_id: int
    replaced: bool  # a waiting setremain got the new value instead of a second one


Decision = LowBalanceWarning | ValveOff | ValveOn | DisplaySync


@dataclass(frozen=True, slots=True)
class JudgedBalance:
    balance: Money
    source: str  # prepaid | meter_reading | meter_credit


@dataclass(slots=True)
class SweepOutcome:
    accounts: int = 0
    batches: int = 0
    warnings: int = 0
    valves_off: int = 0
    valves_on: int = 0
    display_syncs: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)

    def count(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, LowBalanceWarning):
                self.warnings += 1
            elif isinstance(decision, ValveOff):
                self.valves_off += 1
            elif isinstance(decision, ValveOn):
                self.valves_on += 1
            else:
                self.display_syncs += 1


# -- policies from settings and the account's own thresholds -------------------------------


def _own(value: int | None, default: int) -> int:
    return default if value is None else value


def warning_policy(settings: DecisionSettings, account: Account) -> WarningPolicy:
    return WarningPolicy(
        amount_threshold=Money.of_fen(_own(account.warning_fen, settings.warning_fen)),
        days_threshold=settings.warning_days,
        rearm_margin=Money.of_fen(settings.rearm_margin_fen),
        rearm_days_margin=settings.rearm_days_margin,
        window_days=WINDOW_DAYS,
    )


def valve_policy(settings: DecisionSettings, account: Account, zone: str) -> ValvePolicy:
    cutoff = _own(account.cutoff_fen, -settings.cutoff_allowance_fen)
    # Reopen only strictly above the cut-off, or a valve at exactly the cut-off
    # would be reopened and closed again in turn.
    reopen = max(_own(account.reopen_fen, cutoff), cutoff + 1)
    quiet = None
    if settings.quiet_hours_start is not None and settings.quiet_hours_end is not None:
        quiet = QuietHours(settings.quiet_hours_start, settings.quiet_hours_end)
    return ValvePolicy(
        cutoff=Money.of_fen(cutoff),
        reopen_threshold=Money.of_fen(reopen),
        grace=timedelta(seconds=int(settings.grace_hours * 3600)),
        quiet_hours=quiet,
        holidays=frozenset(settings.holidays),
        quiet_weekdays=frozenset(settings.quiet_weekdays),
        zone=zone,
    )


# -- the decision for one account ----------------------------------------------------------


def decide_account(
    uow: UnitOfWork,
    account_id: int,
    *,
    settings: DecisionSettings,
    codec: Codec,
    command_policy: CommandPolicy,
    now: datetime,
    zone: str,
) -> list[Decision]:
    """Warn, close or reopen the valve, sync the display: whatever the balance calls for now.

    Inside the caller's unit of work; the caller commits. `zone` is the
    utility's time zone ([app] timezone), in which quiet hours apply.
    """
    account = uow.accounts.get(account_id, lock=True)
    if account is None:
        raise NotFound(f"no account {account_id}")
    if account.status != "active":
        return []
    row = state_row(uow, account_id)
    _catch_up(uow, row, now)
    mode = BillingMode(account.billing_mode)
    meter = _meter_of(uow, account_id)
    judged = judge_balance(uow, account, meter, settings=settings, now=now)
    decisions: list[Decision] = []

    daily, price = recent_use(uow, account_id)
    warned = decide_low_balance(
        judged.balance,
        policy=warning_policy(settings, account),
        state=WarningState(
            low_fired_by=WarningReason(row.low_fired_by) if row.low_fired_by else None,
            below_zero_fired=row.below_zero_fired,
        ),
        recent_daily_use=daily,
        marginal_price=price,
    )
    row.low_fired_by = warned.state.low_fired_by.value if warned.state.low_fired_by else None
    row.below_zero_fired = warned.state.below_zero_fired
    for warning in warned.decisions:
        _record_warning(uow, account_id, warning, judged.source, now)
        decisions.append(warning)

    if mode is BillingMode.SYSTEM and meter is not None:
        policy = valve_policy(settings, account, zone)
        decisions += _valve(uow, codec, command_policy, account, meter, row, judged, policy, now)
        if settings.sync_display_with_setremain:
            sync = _sync_display(uow, codec, command_policy, account, meter, row, judged, now)
            if sync is not None:
                decisions.append(sync)

    row.balance_fen = judged.balance.rounded().fen
    row.balance_source = judged.source
    row.decided_at = row.updated_at = now
    uow.session.add(row)
    uow.session.flush()
    return decisions


def judge_balance(
    uow: UnitOfWork,
    account: Account,
    meter: Meter | None,
    *,
    settings: DecisionSettings,
    now: datetime,
) -> JudgedBalance:
    """The balance the decisions go by (DESIGN §7)."""
    assert account.id is not None
    balances = uow.ledger.balances_of(account.id)
    if account.billing_mode == BillingMode.SYSTEM:
        prepaid = balances.get(AccountCode.prepaid(str(account.id)), ZERO_BALANCE)
        return JudgedBalance(Money.of_fen(prepaid.available), "prepaid")
    credit = balances.get(AccountCode.meter_credit(str(account.id)), ZERO_BALANCE)
    in_flight = Money.of_fen(credit.credits_pending)  # top-up holds not yet confirmed
    reported = _latest_remain(uow, account.id, meter) if meter is not None else None
    stale_after = timedelta(seconds=int(settings.meter_reading_stale_hours * 3600))
    balance = meter_mode_balance(
        reported_remain=reported[0] if reported else None,
        reported_at=reported[1] if reported else None,
        top_ups_in_flight=in_flight,
        # the ledger's view counts the top-ups in flight as well
        meter_credit=Money.of_fen(credit.posted) + in_flight,
        now=now,
        stale_after=stale_after,
    )
    fresh = reported is not None and now - reported[1] <= stale_after
    return JudgedBalance(balance, "meter_reading" if fresh else "meter_credit")


def recent_use(uow: UnitOfWork, account_id: int) -> tuple[list[Volume], Price]:
    """Litres per frozen day (the last 14 billed, oldest first) and the last price charged."""
    days = uow.session.execute(
        sa.select(col(ChargeDay.day), sa.func.sum(col(ChargeDay.litres)))
        .where(col(ChargeDay.account_id) == account_id)
        .group_by(col(ChargeDay.day))
        .order_by(col(ChargeDay.day).desc())
        .limit(WINDOW_DAYS)
    ).all()
    daily = [Volume.of_litres(int(litres)) for _, litres in reversed(days)]
    lines = uow.session.exec(
        select(ChargeDay.lines)
        .where(ChargeDay.account_id == account_id, ChargeDay.lines != "[]")
        .order_by(col(ChargeDay.day).desc(), col(ChargeDay.cycle_key).desc())
        .limit(1)
    ).first()
    price = Price(0)
    if lines:
        # [[version, tier, price_milli, litres, cost_micro], ...]: the highest tier reached
        top = max(json.loads(lines), key=lambda line: (int(line[1]), int(line[2])))
        price = Price.of_milli(int(top[2]))
    return daily, price


def state_row(uow: UnitOfWork, account_id: int) -> DecisionState:
    """The account's decision state, locked; created (all armed, valve open) on first use."""
    query = (
        select(DecisionState)
        .where(DecisionState.account_id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = uow.session.exec(query).first()
    if row is None:
        insert = _insert_ignore(uow)
        uow.session.execute(insert.values(account_id=account_id))
        row = uow.session.exec(query).one()
    return row


def _insert_ignore(uow: UnitOfWork) -> sa.Insert:
    table = DecisionState.__table__  # type: ignore[attr-defined]
    if uow.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=["account_id"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=["account_id"])


def _meter_of(uow: UnitOfWork, account_id: int) -> Meter | None:
    binding = uow.accounts.active_binding(account_id)
    return uow.accounts.meter_by_id(binding.meter_id) if binding is not None else None


def _latest_remain(uow: UnitOfWork, account_id: int, meter: Meter) -> tuple[Money, datetime] | None:
    """The meter's latest reported balance (since it was bound to the account), and when."""
    binding = uow.accounts.binding_of_meter(meter.id) if meter.id is not None else None
    if binding is None or binding.account_id != account_id:
        return None
    found = uow.session.execute(
        sa.select(col(MeterReading.remain_money), col(MeterReading.acquisition_time))
        .where(
            col(MeterReading.company_no) == meter.company_no,
            col(MeterReading.meter_comm_no) == meter.comm_no,
            col(MeterReading.acquisition_time) >= binding.bound_at,
            col(MeterReading.remain_money).is_not(None),
        )
        .order_by(col(MeterReading.acquisition_time).desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    thousandths, at = found
    return Money(Decimal(int(thousandths)).scaleb(-3)), at


def _record_warning(
    uow: UnitOfWork, account_id: int, warning: LowBalanceWarning, source: str, now: datetime
) -> None:
    uow.session.add(
        BalanceWarning(
            account_id=account_id,
            level=warning.level.value,
            reason=warning.reason.value,
            balance_fen=warning.balance.rounded().fen,
            balance_source=source,
            days_left=None if warning.days_left is None else str(warning.days_left),
            message=warning.message[:500],
            at=now,
            next_attempt_at=now,
        )
    )


# -- the valve -----------------------------------------------------------------------------


def _valve_state(row: DecisionState) -> ValveState:
    return ValveState(
        position=ValvePosition(row.valve_position),
        closed_by=ClosedBy(row.closed_by) if row.closed_by else None,
        below_cutoff_since=row.below_cutoff_since,
    )


def _store_valve(row: DecisionState, state: ValveState) -> None:
    row.valve_position = state.position.value
    row.closed_by = state.closed_by.value if state.closed_by else None
    row.below_cutoff_since = state.below_cutoff_since


def _valve(
    uow: UnitOfWork,
    codec: Codec,
    command_policy: CommandPolicy,
    account: Account,
    meter: Meter,
    row: DecisionState,
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
        _queue_valve(uow, codec, command_policy, account, meter, row, SetValveOn(), opened.decision)
        decisions.append(opened.decision)
    closed = decide_valve_off(balance, mode=BillingMode.SYSTEM, state=state, policy=policy, now=now)
    _store_valve(row, closed.state)
    if closed.decision is not None:
        _queue_valve(
            uow, codec, command_policy, account, meter, row, SetValveOff(), closed.decision
        )
        decisions.append(closed.decision)
    return decisions


def _queue_valve(
    uow: UnitOfWork,
    codec: Codec,
    command_policy: CommandPolicy,
    account: Account,
    meter: Meter,
    row: DecisionState,
    intent: SetValveOn | SetValveOff,
    decision: ValveOn | ValveOff,
) -> None:
    command = queue_intent(
        uow,
        codec,
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


def _cancel_waiting_close(uow: UnitOfWork, row: DecisionState, now: datetime) -> bool:
    """Cancel our close if it has not gone out yet (or waits for a person); True if done."""
    if row.valve_command_id is None:
        return False
    command = _lock_command(uow, row.valve_command_id)
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
    CommandStore(uow.session).save(command)
    row.valve_command_id = None
    row.closed_by = None
    row.valve_reason = f"close #{command.id} cancelled: paid before it was sent"
    row.valve_changed_at = now
    return True


def _lock_command(uow: UnitOfWork, command_id: int) -> Command | None:
    # SKIP LOCKED: a command another transaction holds (the dispatcher, a result)
    # is on its way; never wait for it while holding the account's state.
    return uow.session.exec(
        select(Command)
        .where(Command.id == command_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).first()


def on_valve_command_ended(uow: UnitOfWork, command: Command, now: datetime) -> None:
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
    uow.session.add(row)
    uow.session.flush()


def _catch_up(uow: UnitOfWork, row: DecisionState, now: datetime) -> None:
    if row.valve_command_id is None:
        return
    command = CommandStore(uow.session).get(row.valve_command_id)
    if command is not None:
        _follow(row, command, now)


def _follow(row: DecisionState, command: Command, now: datetime) -> None:
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


# -- the meter's display (system mode) -----------------------------------------------------


def _sync_display(
    uow: UnitOfWork,
    codec: Codec,
    command_policy: CommandPolicy,
    account: Account,
    meter: Meter,
    row: DecisionState,
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
    if waiting is not None:
        waiting.ctrl_data = codec.encode(intent)[1]
        waiting.reason = reason
        CommandStore(uow.session).save(waiting)
        command, replaced = waiting, True
    else:
        command = queue_intent(
            uow,
            codec,
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


# -- the sweep -----------------------------------------------------------------------------


def sweep(
    uow_factory: Callable[[], UnitOfWork],
    *,
    settings: DecisionSettings,
    codec: Codec,
    command_policy: CommandPolicy,
    now: datetime,
    zone: str,
    batch: int = 500,
) -> SweepOutcome:
    """Decide every active account, one transaction per batch of accounts.

    An account whose decision fails is rolled back alone (a savepoint), logged
    and reported; the rest of its batch goes on.
    """
    outcome = SweepOutcome()
    after = 0
    while True:
        with uow_factory() as uow:
            ids = [
                int(i)
                for i in uow.session.exec(
                    select(Account.id)
                    .where(Account.status == "active", col(Account.id) > after)
                    .order_by(col(Account.id))
                    .limit(batch)
                ).all()
                if i is not None
            ]
            if not ids:
                return outcome
            for account_id in ids:
                try:
                    with uow.session.begin_nested():
                        decisions = decide_account(
                            uow,
                            account_id,
                            settings=settings,
                            codec=codec,
                            command_policy=command_policy,
                            now=now,
                            zone=zone,
                        )
                except Exception as exc:  # one account must not stop the sweep
                    log.exception("decisions: account %s failed", account_id)
                    outcome.failures.append((account_id, f"{type(exc).__name__}: {exc}"))
                    continue
                outcome.accounts += 1
                outcome.count(decisions)
            uow.commit()
        outcome.batches += 1
        after = ids[-1]


def account_decider(settings: Settings) -> Callable[[UnitOfWork, int, datetime], object]:
    """`decide_account` with these settings, for the services that change a balance."""
    codec = Codec(ZoneInfo(settings.app.platform_timezone))
    policy = CommandPolicy.from_settings(settings.commands)

    def decide(uow: UnitOfWork, account_id: int, now: datetime) -> object:
        return decide_account(
            uow,
            account_id,
            settings=settings.decisions,
            codec=codec,
            command_policy=policy,
            now=now,
            zone=settings.app.timezone,
        )

    return decide
