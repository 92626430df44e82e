"""What the decisions return, and what a sweep counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gasbill.domain.decisions import (
    LowBalanceWarning,
    ValveOff,
    ValveOn,
)
from gasbill.domain.money import Money


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
