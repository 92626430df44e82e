"""The decision for one account, inside the caller's unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gasbill.config import DecisionSettings
from gasbill.domain.accounts import BillingMode
from gasbill.domain.decisions import (
    LowBalanceWarning,
    WarningReason,
    WarningState,
    decide_low_balance,
)
from gasbill.service.accounts import NotFound
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.decisions.balance import Facts, judged_balance
from gasbill.service.decisions.display import sync_display
from gasbill.service.decisions.outcomes import Decision
from gasbill.service.decisions.policies import WINDOW_DAYS, valve_policy, warning_policy
from gasbill.service.decisions.valves import catch_up, decide_valve
from gasbill.service.ports import NewWarning, UnitOfWork


@dataclass(frozen=True, slots=True)
class DecisionRun:
    """What one run of decisions holds for every account it decides: the settings, the
    outbox's policy, the moment, and the utility's time zone ([app] timezone, in which
    quiet hours apply)."""

    settings: DecisionSettings
    command_policy: CommandPolicy
    now: datetime
    zone: str


def decide_account(
    uow: UnitOfWork,
    account_id: int,
    *,
    settings: DecisionSettings,
    command_policy: CommandPolicy,
    now: datetime,
    zone: str,
) -> list[Decision]:
    """Warn, close or reopen the valve, sync the display: whatever the balance calls for now.

    Inside the caller's unit of work; the caller commits. `zone` is the
    utility's time zone ([app] timezone), in which quiet hours apply.
    """
    facts = uow.decision_states.facts([account_id], window_days=WINDOW_DAYS).get(account_id)
    if facts is None:
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"no account {account_id}")
        return []  # not active
    decisions = decide_on(uow, facts, DecisionRun(settings, command_policy, now, zone))
    uow.decision_states.save(facts.row)  # written now, with the warning and command made
    return decisions


def decide_on(uow: UnitOfWork, facts: Facts, run: DecisionRun) -> list[Decision]:
    """`decide_account` on facts already loaded and locked (`load_facts`); its state row is
    changed in place, written at the next flush."""
    account, row, meter = facts.account, facts.row, facts.meter
    assert account.id is not None
    account_id = account.id
    settings, command_policy, now = run.settings, run.command_policy, run.now
    catch_up(uow, row, now)
    mode = BillingMode(account.billing_mode)
    judged = judged_balance(facts, settings=settings, now=now)
    decisions: list[Decision] = []

    warned = decide_low_balance(
        judged.balance,
        policy=warning_policy(settings, account),
        state=WarningState(
            low_fired_by=WarningReason(row.low_fired_by) if row.low_fired_by else None,
            below_zero_fired=row.below_zero_fired,
        ),
        recent_daily_use=facts.daily,
        marginal_price=facts.price,
    )
    row.low_fired_by = warned.state.low_fired_by.value if warned.state.low_fired_by else None
    row.below_zero_fired = warned.state.below_zero_fired
    for warning in warned.decisions:
        _record_warning(uow, account_id, warning, judged.source, now)
        decisions.append(warning)

    if mode is BillingMode.SYSTEM and meter is not None:
        policy = valve_policy(settings, account, run.zone)
        decisions += decide_valve(uow, command_policy, account, meter, row, judged, policy, now)
        if settings.sync_display_with_setremain:
            sync = sync_display(uow, command_policy, account, meter, row, judged, now)
            if sync is not None:
                decisions.append(sync)

    row.balance_fen = judged.balance.rounded().fen
    row.balance_source = judged.source
    row.decided_at = row.updated_at = now  # the row is kept as changed (DecisionStateRecord)
    return decisions


def _record_warning(
    uow: UnitOfWork, account_id: int, warning: LowBalanceWarning, source: str, now: datetime
) -> None:
    uow.warnings.add(
        NewWarning(
            account_id=account_id,
            level=warning.level.value,
            reason=warning.reason.value,
            balance_fen=warning.balance.rounded().fen,
            balance_source=source,
            days_left=None if warning.days_left is None else str(warning.days_left),
            message=warning.message,
            at=now,
        )
    )
