"""What a meter answers to a prepay command (spec §5.4): a top-up's or an opening's own
success flag (read into an `Outcome`), the charge counters, or nothing readable.

Re-exported by `gasbill.domain.commands`, beside the intents they answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gasbill.domain.money import Money

CHARGE_APPLIED = 0xAA  # remote_charge_return.success
CHARGE_REFUSED = 0xBB
OPEN_APPLIED = 0  # open_account_return.success: not the 0xaa convention
OPEN_REFUSED = 1


class Outcome(enum.Enum):
    """What a prepay command's own success flag says."""

    APPLIED = "applied"
    REFUSED = "refused"
    UNKNOWN = "unknown"  # a flag value the spec does not define


@dataclass(frozen=True, slots=True)
class RemoteChargeReturn:
    """`remote_charge_return`: 0xaa applied, 0xbb refused; anything else unknown."""

    success: int
    reason: int | None = None
    calc_type: int | None = None
    remain: Money | None = None

    @property
    def outcome(self) -> Outcome:
        if self.success == CHARGE_APPLIED:
            return Outcome.APPLIED
        if self.success == CHARGE_REFUSED:
            return Outcome.REFUSED
        return Outcome.UNKNOWN

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED

    @property
    def refused(self) -> bool:
        return self.outcome is Outcome.REFUSED


@dataclass(frozen=True, slots=True)
class RemoteChargeState:
    """`remote_charge_state`: IC-card and remote top-up counters (count, last, total)."""

    card_charge_times: int
    card_charge_value: Money
    card_total_value: Money
    remote_charge_times: int
    remote_charge_value: Money
    remote_total_value: Money


@dataclass(frozen=True, slots=True)
class OpenAccountReturn:
    """`open_account_return`: 0 applied, 1 refused; anything else unknown."""

    success: int
    reason: int | None = None
    reason_msg: str = ""
    remain: Money | None = None

    @property
    def outcome(self) -> Outcome:
        if self.success == OPEN_APPLIED:
            return Outcome.APPLIED
        if self.success == OPEN_REFUSED:
            return Outcome.REFUSED
        return Outcome.UNKNOWN

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED

    @property
    def refused(self) -> bool:
        return self.outcome is Outcome.REFUSED


@dataclass(frozen=True, slots=True)
class EmptyReturn:
    """A readable `{}`: what setprice, the valve commands and setcumulant return."""


@dataclass(frozen=True, slots=True)
class Unreadable:
    """`return_data` missing or not the expected structure: never a success."""

    reason: str
    raw: str = ""
