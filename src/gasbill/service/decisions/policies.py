"""The decision policies: the settings, overridden by an account's own thresholds."""

from __future__ import annotations

from datetime import timedelta

from gasbill.config import DecisionSettings
from gasbill.domain.decisions import (
    QuietHours,
    ValvePolicy,
    WarningPolicy,
)
from gasbill.domain.money import Money
from gasbill.service.ports import DecidedAccount as Account

ACTOR = "decisions"
WINDOW_DAYS = 14  # DESIGN §7: average daily use of the last 14 frozen days


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
