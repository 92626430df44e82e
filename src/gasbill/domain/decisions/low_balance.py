"""Low-balance warnings, by amount and by days of gas left, each fired once per crossing."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from gasbill.domain.decisions.common import DecisionError
from gasbill.domain.money import Money, Price, Volume

ZERO = Money.zero()


class WarningLevel(enum.StrEnum):
    """Warnings fire and re-arm per level, independently."""

    LOW = "low"
    BELOW_ZERO = "below_zero"


class WarningReason(enum.StrEnum):
    BY_AMOUNT = "by_amount"
    BY_DAYS = "by_days"
    BELOW_ZERO = "below_zero"


@dataclass(frozen=True)
class WarningPolicy:
    """When to warn, and how far the balance must recover before warning again.

    The low level fires at `balance <= amount_threshold` or at
    `days left <= days_threshold`; it re-arms once the balance is above
    `amount_threshold + rearm_margin` and the days left are above
    `days_threshold + rearm_days_margin` (or unknown, or unlimited). The
    below-zero level fires at `balance < 0` and re-arms above `rearm_margin`.
    Days are judged only once `min_days_known` of the last `window_days`
    frozen days are known; until then, by amount only.
    """

    amount_threshold: Money
    days_threshold: int
    rearm_margin: Money = ZERO
    rearm_days_margin: int = 0
    window_days: int = 14
    min_days_known: int = 7

    def __post_init__(self) -> None:
        if not isinstance(self.amount_threshold, Money) or self.amount_threshold.is_negative():
            # A negative threshold would let an account go below zero without a low warning.
            raise DecisionError(f"amount_threshold must be Money >= 0: {self.amount_threshold!r}")
        if not isinstance(self.rearm_margin, Money) or self.rearm_margin.is_negative():
            raise DecisionError(f"rearm_margin must be Money >= 0: {self.rearm_margin!r}")
        for name in ("days_threshold", "rearm_days_margin", "window_days", "min_days_known"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DecisionError(f"{name} must be an int >= 0: {value!r}")
        if not 1 <= self.min_days_known <= self.window_days:
            raise DecisionError(
                f"min_days_known must be in 1..window_days ({self.window_days}): "
                f"{self.min_days_known}"
            )


@dataclass(frozen=True)
class GasLeft:
    """How long a balance lasts at recent use, kept exact.

    `window_cost` is the exact cost, at the marginal price, of the
    `days_known` frozen days averaged. Tests compare
    `balance × days_known` with `days × window_cost`, so no division rounds.
    """

    balance: Money
    days_known: int
    window_cost: Money
    known: bool  # enough days to judge by days

    @property
    def unlimited(self) -> bool:
        """No (or negative) recent use: the balance is not running down."""
        return self.known and self.window_cost.value <= 0

    @property
    def days(self) -> Decimal | None:
        """Days left floored to 0.1 (0 once the balance is gone); None if unknown or unlimited."""
        if not self.known or self.unlimited:
            return None
        if self.balance.value <= 0:
            return Decimal("0.0")
        # Integer division of exact decimals: the floor, with no rounding context involved.
        tenths = (self.balance.value * self.days_known * 10) // self.window_cost.value
        return Decimal(int(tenths)).scaleb(-1)

    def at_most(self, days: int) -> bool:
        """Whether the balance lasts `days` days or fewer; False when unknown or unlimited."""
        if not self.known or self.unlimited:
            return False
        return self.balance * self.days_known <= self.window_cost * days


def gas_left(
    balance: Money,
    recent_daily_use: Sequence[Volume],
    marginal_price: Price,
    *,
    window_days: int = 14,
    min_days_known: int = 7,
) -> GasLeft:
    """Days of gas left = balance / (average daily use of the last frozen days × price).

    `recent_daily_use` is one volume per frozen day, oldest first; only the
    last `window_days` count.
    """
    window = list(recent_daily_use)[-window_days:] if window_days > 0 else []
    total = Volume.zero()
    for volume in window:
        total = total + volume
    return GasLeft(
        balance=balance,
        days_known=len(window),
        window_cost=marginal_price.cost(total),
        known=len(window) >= min_days_known,
    )


@dataclass(frozen=True)
class WarningState:
    """What has fired and not yet re-armed. `WarningState()` is all armed.

    `low_fired_by` is None while the low level is armed, else why it fired.
    """

    low_fired_by: WarningReason | None = None
    below_zero_fired: bool = False

    def armed(self, level: WarningLevel) -> bool:
        if level is WarningLevel.LOW:
            return self.low_fired_by is None
        return not self.below_zero_fired


@dataclass(frozen=True)
class LowBalanceWarning:
    """Decision: tell the customer the balance is low (or gone)."""

    level: WarningLevel
    reason: WarningReason
    balance: Money
    days_left: Decimal | None  # None: fewer days known than needed, or no recent use
    amount_threshold: Money
    days_threshold: int

    @property
    def message(self) -> str:
        balance = f"balance {self.balance.fixed()} yuan"
        left = "" if self.days_left is None else f", about {self.days_left} days of gas left"
        if self.reason is WarningReason.BELOW_ZERO:
            return f"{balance} is below zero"
        if self.reason is WarningReason.BY_DAYS:
            return f"{balance}{left}, at or below {self.days_threshold} days"
        return f"{balance} at or below {self.amount_threshold.fixed()}{left}"


@dataclass(frozen=True)
class WarningResult:
    state: WarningState
    decisions: tuple[LowBalanceWarning, ...]


def decide_low_balance(
    balance: Money,
    *,
    policy: WarningPolicy,
    state: WarningState,
    recent_daily_use: Sequence[Volume],
    marginal_price: Price,
) -> WarningResult:
    """Warn once per downward crossing, per level; re-arm after recovery.

    When the balance drops below zero while the low level is still armed, a
    single below-zero warning is emitted and both levels are marked fired:
    one notice says all the customer needs to know.
    """
    left = gas_left(
        balance,
        recent_daily_use,
        marginal_price,
        window_days=policy.window_days,
        min_days_known=policy.min_days_known,
    )
    by_amount = balance <= policy.amount_threshold
    by_days = left.at_most(policy.days_threshold)
    below_zero = balance.is_negative()

    armed = _rearmed(state, balance, left, policy)
    low_fired_by, below_zero_fired = armed.low_fired_by, armed.below_zero_fired

    def warning(level: WarningLevel, reason: WarningReason) -> LowBalanceWarning:
        return LowBalanceWarning(
            level=level,
            reason=reason,
            balance=balance,
            days_left=left.days,
            amount_threshold=policy.amount_threshold,
            days_threshold=policy.days_threshold,
        )

    decisions: list[LowBalanceWarning] = []
    # The amount is the plainer reason to give when both hold.
    low_reason = WarningReason.BY_AMOUNT if by_amount else WarningReason.BY_DAYS
    if below_zero and not below_zero_fired:
        below_zero_fired = True
        decisions.append(warning(WarningLevel.BELOW_ZERO, WarningReason.BELOW_ZERO))
        if low_fired_by is None:
            low_fired_by = low_reason
    elif (by_amount or by_days) and low_fired_by is None:
        low_fired_by = low_reason
        decisions.append(warning(WarningLevel.LOW, low_reason))

    return WarningResult(
        state=WarningState(low_fired_by=low_fired_by, below_zero_fired=below_zero_fired),
        decisions=tuple(decisions),
    )


def _rearmed(
    state: WarningState, balance: Money, left: GasLeft, policy: WarningPolicy
) -> WarningState:
    """`state` with each level re-armed that the balance has recovered from.

    Re-arm only past a margin, so a balance wobbling around a threshold
    (a payment, a day's charge, a correction) does not warn every time.
    """
    low_fired_by = state.low_fired_by
    below_zero_fired = state.below_zero_fired
    if below_zero_fired and balance > policy.rearm_margin:
        below_zero_fired = False
    if (
        low_fired_by is not None
        and balance > policy.amount_threshold + policy.rearm_margin
        and not left.at_most(policy.days_threshold + policy.rearm_days_margin)
    ):
        low_fired_by = None
    return WarningState(low_fired_by=low_fired_by, below_zero_fired=below_zero_fired)
