"""The ports of warnings and decisions: the warning log and each account's decision state.

Declared here, re-exported by `service.ports`; `adapters/db` implements them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from gasbill.domain.money import Money, Price, Volume

if TYPE_CHECKING:
    from gasbill.service.ports import DecisionFacts


@dataclass(frozen=True, slots=True)
class WarningNotice:
    """A claimed low-balance warning, and who it is for: what a notifier is given."""

    id: int
    account_id: int
    account_number: str
    customer_name: str
    customer_phone: str
    level: str  # low | below_zero
    reason: str  # by_amount | by_days | below_zero
    balance_fen: int
    balance_source: str
    days_left: str | None
    message: str
    at: datetime
    attempt: int

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": "low_balance_warning",
            "account_id": self.account_id,
            "account_number": self.account_number,
            "customer_name": self.customer_name,
            "customer_phone": self.customer_phone,
            "level": self.level,
            "reason": self.reason,
            "balance_fen": self.balance_fen,
            "balance_source": self.balance_source,
            "days_left": self.days_left,
            "message": self.message,
            "at": self.at.isoformat(),
            "attempt": self.attempt,
        }


@dataclass(frozen=True, slots=True)
class NewWarning:
    """A warning to record, due for delivery at once."""

    account_id: int
    level: str
    reason: str
    balance_fen: int
    balance_source: str
    days_left: str | None
    message: str
    at: datetime


class WarningRepository(Protocol):
    """The warning log: recorded once, claimed under a lease, stamped once."""

    def add(self, warning: NewWarning) -> None: ...

    def claim_due(self, *, now: datetime, batch: int, lease_until: datetime) -> list[WarningNotice]:
        """Due warnings (oldest first, none another worker holds), each attempt counted
        and its next attempt moved to `lease_until`."""

    def stamp_delivered(self, warning_id: int, *, at: datetime) -> bool:
        """Delivered at `at`, unless already stamped; True if this call stamped it."""

    def stamp_failed(
        self, warning_id: int, *, attempt: int, error: str, at: datetime, retry_at: datetime | None
    ) -> bool:
        """A failed attempt at `at`: due again at `retry_at`, or given up (None). Only the
        claim that made `attempt` may stamp it, and never once delivered; True if stamped."""


class DecisionStateRecord(Protocol):
    """One account's decision state (which warnings fired, the valve), changed in place
    and kept when the unit of work commits."""

    account_id: int
    low_fired_by: str | None
    below_zero_fired: bool
    valve_position: str
    closed_by: str | None
    below_cutoff_since: datetime | None
    valve_command_id: int | None
    valve_reason: str
    valve_changed_at: datetime | None
    display_fen: int | None
    balance_fen: int | None
    balance_source: str
    decided_at: datetime | None
    updated_at: datetime


class DecisionStateRepository(Protocol):
    """Each account's decision state, and what the decisions read besides the ledger."""

    def locked(self, account_id: int) -> DecisionStateRecord:
        """The account's state, locked for this unit of work; created (all armed, valve
        open) on first use."""

    def facts(self, account_ids: Sequence[int], *, window_days: int) -> Mapping[int, DecisionFacts]:
        """What the decisions read, for those of `account_ids` that are active, locked: the
        accounts (ascending id), then their states."""

    def recent_use(self, account_id: int, *, window_days: int) -> tuple[list[Volume], Price]:
        """Litres per frozen day (the last `window_days` billed, oldest first) and the
        highest tier's price on the last day charged (0 if none)."""

    def latest_remain(
        self, company_no: str, comm_no: str, *, since: datetime
    ) -> tuple[Money, datetime] | None:
        """The meter's latest reported balance at or after `since`, and when."""

    def save(self, state: DecisionStateRecord) -> None:
        """Write the state now (and whatever else the unit of work holds)."""
