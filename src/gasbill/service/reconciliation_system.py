"""System-mode accounts and replaced meters in the reconciliation (DESIGN §5, §9).

A system-mode account's ledger balance against its payments and charges,
and its valve against the policy the decisions follow (the account's own
cut-off and reopen threshold, the grace period, quiet hours and holidays of
`[decisions]`). The valve's position is the one its last confirmed valve
command left, so a report as of an earlier instant sees the valve as it was.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from gasbill.config import DecisionSettings
from gasbill.domain.commands import CtrlType
from gasbill.domain.decisions.valve import QuietHours, ValvePolicy
from gasbill.domain.money import Money
from gasbill.domain.outbox import OPEN, CommandStatus
from gasbill.domain.reconciliation import Finding
from gasbill.domain.reconciliation_system import (
    LedgerPoint,
    ReplacementPoint,
    ValvePoint,
    check_ledger,
    check_replacement,
    check_valve,
)
from gasbill.service.reconciliation_rows import AccountRow, LedgerSums, ReplacementRow, ValveRow

OPEN_STATUSES = frozenset(str(s) for s in OPEN)
OFF, ON = str(CtrlType.SET_VALVE_OFF), str(CtrlType.SET_VALVE_ON)
NO_SUMS = LedgerSums(0, 0, 0, 0)


def base_valve_policy(settings: DecisionSettings, zone: str) -> ValvePolicy:
    """The calendar and grace of `[decisions]`; each account brings its own thresholds."""
    quiet = None
    if settings.quiet_hours_start is not None and settings.quiet_hours_end is not None:
        quiet = QuietHours(settings.quiet_hours_start, settings.quiet_hours_end)
    return ValvePolicy(
        cutoff=Money("0"),
        reopen_threshold=Money("0.01"),
        grace=timedelta(seconds=int(settings.grace_hours * 3600)),
        quiet_hours=quiet,
        holidays=frozenset(settings.holidays),
        quiet_weekdays=frozenset(settings.quiet_weekdays),
        zone=zone,
    )


class SystemChecks:
    def __init__(self, base: ValvePolicy, as_of: datetime) -> None:
        self.base, self.as_of = base, as_of
        self._policies: dict[tuple[int, int], ValvePolicy] = {}

    def policy(self, account: AccountRow) -> ValvePolicy:
        """As the decisions have it: reopen only strictly above the cut-off."""
        cutoff = account.cutoff_fen
        reopen = max(account.reopen_fen, cutoff + 1)
        found = self._policies.get((cutoff, reopen))
        if found is None:
            found = replace(
                self.base, cutoff=Money.of_fen(cutoff), reopen_threshold=Money.of_fen(reopen)
            )
            self._policies[(cutoff, reopen)] = found
        return found

    def quick(self, account: AccountRow, sums: LedgerSums | None, valves: list[ValveRow]) -> bool:
        """Agrees on both checks, known from integers alone (the common case)."""
        sums = sums or NO_SUMS
        if account.prepaid_posted != sums.summed_fen:
            return False
        balance = sums.payments_fen + sums.charges_fen + sums.other_fen
        closed = _position(valves, self.as_of)[0]
        if closed:
            return balance < max(account.reopen_fen, account.cutoff_fen + 1)
        return balance > account.cutoff_fen

    def findings(
        self, account: AccountRow, sums: LedgerSums | None, valves: list[ValveRow]
    ) -> tuple[Finding, ...]:
        sums = sums or NO_SUMS
        point = LedgerPoint(
            f"prepaid:{account.account_id}",
            Money.of_fen(sums.payments_fen),
            Money.of_fen(sums.charges_fen),
            Money.of_fen(sums.other_fen),
            Money.of_fen(account.prepaid_posted),
            Money.of_fen(sums.summed_fen),
        )
        closed, last, pending = _position(valves, self.as_of)
        valve = ValvePoint(
            point.balance,
            closed,
            None if last is None else last.command_id,
            None if last is None else last.at,
            None if pending is None else ("off" if pending.ctrl_type == OFF else "on"),
            None if pending is None else pending.command_id,
            account.below_cutoff_since,
        )
        return (
            check_ledger(point, self.as_of),
            check_valve(valve, self.policy(account), self.as_of),
        )


def _position(
    valves: list[ValveRow], as_of: datetime
) -> tuple[bool, ValveRow | None, ValveRow | None]:
    """Closed or not by the last valve command done by `as_of`; and a valve command still on
    its way then (open now, or ended only after `as_of`: the rows are those created by it)."""
    last = pending = None
    for row in valves:  # in id order
        ended = row.at is not None and row.at <= as_of
        if row.status == CommandStatus.DONE and row.at is not None and ended:
            if last is None or row.at >= (last.at or row.at):
                last = row
        elif row.status in OPEN_STATUSES or (row.at is not None and not ended):
            pending = row
    return (last is not None and last.ctrl_type == OFF), last, pending


def replacement_findings(account: AccountRow, rows: list[ReplacementRow]) -> tuple[Finding, ...]:
    """One finding per meter the account had removed by then."""
    found = []
    for row in rows:
        point = ReplacementPoint(
            row.binding_id,
            row.old_comm_no,
            row.removed_at,
            row.final_litres,
            row.last_litres,
            row.last_at,
            int(row.stray or 0),
            row.new_comm_no or "",
            int(row.opening_litres or 0),
            row.first_litres,
            row.first_at,
        )
        found.append(check_replacement(point, account.company_no))
    return tuple(found)
