"""Decisions: low-balance warnings, valve off and on, tariff pushes due.

Pure functions of an account's state and the time. Each takes the state it
last recorded and returns the new state together with what it decided; the
service layer stores both and carries the decisions out (a notice to the
customer, a command in the outbox). Nothing here reads a clock or does I/O:
`now` is always passed in, and must be aware.

Instants are compared in UTC: Python compares two datetimes that share a
`tzinfo` by their wall clocks, which is wrong across a DST change. Local
rules (quiet hours, holidays, weekdays) are applied in the utility's zone.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gasbill.domain.accounts import BillingMode
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money, Price, Volume

DEFAULT_ZONE = "Asia/Shanghai"
METER_READING_STALE_AFTER = timedelta(hours=48)
ZERO = Money.zero()


class DecisionError(GasbillError, ValueError):
    """A decision policy or input breaks a rule (a naive time, a positive cut-off, …)."""


def as_zone(zone: str | ZoneInfo) -> ZoneInfo:
    """A zone from its IANA key or as given."""
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DecisionError(f"unknown time zone {zone!r}") from None


def _utc(instant: datetime, what: str) -> datetime:
    """The same instant in UTC; a naive datetime is refused, not guessed."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise DecisionError(f"{what} must be an aware datetime, not {instant.isoformat()}")
    return instant.astimezone(UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _wall_reached(naive: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants from which the local clock shows `naive` (or later), in order.

    Usually one; two in a fall-back overlap (the wall time happens twice); in
    a spring-forward gap the wall time never shows, and the answer is the
    transition, where the clock jumps past it.
    """
    candidates = sorted({naive.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1)})
    real = [c for c in candidates if _wall(c, zone) == naive]
    if real:
        return real
    # In a gap the two folds straddle the transition (the clock shows less than
    # `naive` at the first, more at the second): find it to the second.
    low, high = candidates[0], candidates[-1]
    lo, hi = 0, int((high - low).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        if _wall(low + timedelta(seconds=mid), zone) >= naive:
            hi = mid
        else:
            lo = mid + 1
    return [low + timedelta(seconds=lo)]


def _local_instant(day: date, wall: time, zone: ZoneInfo, after: datetime) -> datetime:
    """The first UTC instant later than `after` at which the local clock reaches `wall` on `day`."""
    for candidate in _wall_reached(datetime.combine(day, wall), zone):
        if candidate > after:
            return candidate
    # Only reachable inside a DST overlap; step on so the caller always progresses.
    return after + timedelta(minutes=1)


# ---------------------------------------------------------------------------
# Balance to judge
# ---------------------------------------------------------------------------


def meter_mode_balance(
    *,
    reported_remain: Money | None,
    reported_at: datetime | None,
    top_ups_in_flight: Money,
    meter_credit: Money,
    now: datetime,
    stale_after: timedelta = METER_READING_STALE_AFTER,
) -> Money:
    """The balance a meter-mode account is judged by (DESIGN §7).

    The meter's latest reported `remain_money` plus top-ups still in flight
    (the meter has not counted them yet); the ledger's `meter_credit` when the
    meter has not reported for `stale_after`, since an old report no longer
    says what the meter holds.
    """
    if reported_remain is None or reported_at is None:
        return meter_credit
    if _utc(now, "now") - _utc(reported_at, "reported_at") > stale_after:
        return meter_credit
    return reported_remain + top_ups_in_flight


# ---------------------------------------------------------------------------
# Low-balance warning
# ---------------------------------------------------------------------------


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

    low_fired_by = state.low_fired_by
    below_zero_fired = state.below_zero_fired
    # Re-arm only past a margin, so a balance wobbling around a threshold
    # (a payment, a day's charge, a correction) does not warn every time.
    if below_zero_fired and balance > policy.rearm_margin:
        below_zero_fired = False
    if (
        low_fired_by is not None
        and balance > policy.amount_threshold + policy.rearm_margin
        and not left.at_most(policy.days_threshold + policy.rearm_days_margin)
    ):
        low_fired_by = None

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


# ---------------------------------------------------------------------------
# Valve off and on
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """A local wall-clock window, [start, end); it wraps past midnight when start > end."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise DecisionError("quiet hours are local wall-clock times, without a zone")
        if self.start == self.end:
            # Empty or all day? Neither is worth guessing: say it with weekdays or no window.
            raise DecisionError(f"quiet hours start and end at the same time {self.start}")

    @property
    def wraps(self) -> bool:
        return self.start > self.end

    def contains(self, wall: time) -> bool:
        if self.wraps:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class ValvePosition(enum.StrEnum):
    OPEN = "open"
    CLOSE_PENDING = "close_pending"  # a close command is queued or in flight
    CLOSED = "closed"
    OPEN_PENDING = "open_pending"  # an open command is queued or in flight


class ClosedBy(enum.StrEnum):
    """Why a valve is closed; we only reopen what we closed."""

    US = "closed_by_us"
    METER = "closed_by_meter"  # the meter's own protection: flow, tamper, its own balance
    UNKNOWN = "unknown"


class ValveHold(enum.StrEnum):
    """Why no valve command was decided now."""

    NOT_SYSTEM_MODE = "not_system_mode"
    ABOVE_CUTOFF = "above_cutoff"
    ALREADY_CLOSED = "already_closed"
    COMMAND_IN_FLIGHT = "command_in_flight"
    GRACE_PERIOD = "grace_period"
    QUIET_HOURS = "quiet_hours"
    HOLIDAY = "holiday"
    QUIET_WEEKDAY = "quiet_weekday"
    NOT_CLOSED = "not_closed"
    NOT_CLOSED_BY_US = "not_closed_by_us"
    BELOW_REOPEN = "below_reopen"


@dataclass(frozen=True)
class ValvePolicy:
    """When the valve may be closed for lack of credit and when it is reopened.

    `cutoff` is 0 or a negative overdraft allowance; the valve closes at
    `balance <= cutoff` once `grace` has passed since the balance first got
    there, and only when the local time is outside `quiet_hours`, the local
    date is not in `holidays` and its weekday (Monday 0) not in
    `quiet_weekdays`. It reopens at `balance >= reopen_threshold`.
    """

    cutoff: Money
    reopen_threshold: Money
    grace: timedelta = timedelta(hours=24)
    quiet_hours: QuietHours | None = None
    holidays: frozenset[date] = frozenset()
    quiet_weekdays: frozenset[int] = frozenset()
    zone: str | ZoneInfo = DEFAULT_ZONE

    def __post_init__(self) -> None:
        if not isinstance(self.cutoff, Money) or self.cutoff.value > 0:
            raise DecisionError(f"cutoff must be Money <= 0: {self.cutoff!r}")
        if not isinstance(self.reopen_threshold, Money) or self.reopen_threshold < self.cutoff:
            raise DecisionError(
                f"reopen_threshold {self.reopen_threshold!r} must be >= cutoff {self.cutoff!r}"
            )
        if self.grace < timedelta(0):
            raise DecisionError(f"grace must not be negative: {self.grace}")
        # Accept any set or iterable, keep a frozenset: the policy is a value.
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "quiet_weekdays", frozenset(self.quiet_weekdays))
        if not self.quiet_weekdays <= set(range(7)):
            raise DecisionError(f"quiet_weekdays are 0 (Monday)..6: {sorted(self.quiet_weekdays)}")
        if len(self.quiet_weekdays) == 7:
            raise DecisionError("quiet_weekdays cover the whole week: the valve could never close")
        as_zone(self.zone)  # fail on a bad key now, not at the first cut-off

    @property
    def tz(self) -> ZoneInfo:
        return as_zone(self.zone)


@dataclass(frozen=True)
class ValveState:
    """The valve as we last knew it, and since when the balance is at the cut-off."""

    position: ValvePosition = ValvePosition.OPEN
    closed_by: ClosedBy | None = None
    below_cutoff_since: datetime | None = None

    def __post_init__(self) -> None:
        if self.position is ValvePosition.CLOSED and self.closed_by is None:
            raise DecisionError("a closed valve records why it is closed (closed_by)")
        if self.position is ValvePosition.OPEN and self.closed_by is not None:
            raise DecisionError(f"an open valve has no closed_by: {self.closed_by}")
        if self.below_cutoff_since is not None:
            _utc(self.below_cutoff_since, "below_cutoff_since")


@dataclass(frozen=True)
class ValveOff:
    """Decision: close the valve for lack of credit."""

    at: datetime
    balance: Money
    cutoff: Money
    below_cutoff_since: datetime
    reason: str


@dataclass(frozen=True)
class ValveOn:
    """Decision: reopen a valve we closed, now that the balance is back."""

    at: datetime
    balance: Money
    reopen_threshold: Money
    reason: str


@dataclass(frozen=True)
class ValveOffResult:
    """The new state, and a decision or why not; `retry_at` is when to look again."""

    state: ValveState
    decision: ValveOff | None
    hold: ValveHold | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class ValveOnResult:
    state: ValveState
    decision: ValveOn | None
    hold: ValveHold | None = None


def closing_hold(policy: ValvePolicy, at: datetime) -> ValveHold | None:
    """Why the valve may not be closed at this instant by the calendar, or None."""
    local = _utc(at, "at").astimezone(policy.tz)
    if local.date() in policy.holidays:
        return ValveHold.HOLIDAY
    if local.weekday() in policy.quiet_weekdays:
        return ValveHold.QUIET_WEEKDAY
    if policy.quiet_hours is not None and policy.quiet_hours.contains(local.time()):
        return ValveHold.QUIET_HOURS
    return None


def next_closing_time(policy: ValvePolicy, at: datetime) -> datetime:
    """The first instant at or after `at` (in UTC) when the calendar allows closing."""
    zone = policy.tz
    t = _utc(at, "at")
    # Each step moves to the next local midnight or the end of quiet hours, so a
    # day costs at most two steps; blocked days are bounded by the holidays and
    # the (never full) set of quiet weekdays.
    for _ in range(2 * (len(policy.holidays) + 9)):
        hold = closing_hold(policy, t)
        if hold is None:
            return t
        local = t.astimezone(zone)
        quiet = policy.quiet_hours
        if hold is ValveHold.QUIET_HOURS and quiet is not None:
            ends_tomorrow = quiet.wraps and local.time() >= quiet.start
            day = local.date() + timedelta(days=1) if ends_tomorrow else local.date()
            t = _local_instant(day, quiet.end, zone, after=t)
        else:
            t = _local_instant(local.date() + timedelta(days=1), time(0), zone, after=t)
    raise DecisionError(f"no time to close a valve found after {at.isoformat()}")


def _fmt_duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{seconds}s" if seconds else "")
    return "".join(parts) or "0h"


def decide_valve_off(
    balance: Money,
    *,
    mode: BillingMode,
    state: ValveState,
    policy: ValvePolicy,
    now: datetime,
) -> ValveOffResult:
    """Close the valve of a system-mode account at the cut-off, when allowed.

    Records when the balance first reached the cut-off (and forgets it once
    the balance is back above); closes only after the grace period and
    outside quiet hours, holidays and quiet weekdays. When held by time,
    `retry_at` says when the close would be allowed.
    """
    now_utc = _utc(now, "now")
    if mode is not BillingMode.SYSTEM:
        # The meter closes its own valve when its balance runs out.
        return ValveOffResult(state, None, ValveHold.NOT_SYSTEM_MODE)
    if balance > policy.cutoff:
        return ValveOffResult(replace(state, below_cutoff_since=None), None, ValveHold.ABOVE_CUTOFF)

    since = state.below_cutoff_since
    if since is None:
        # First seen at the cut-off now; the caller may record an earlier
        # crossing (the charge's effective time) in the state instead.
        since = now_utc
        state = replace(state, below_cutoff_since=since)
    since_utc = _utc(since, "below_cutoff_since")

    if state.position in (ValvePosition.CLOSED, ValvePosition.CLOSE_PENDING):
        return ValveOffResult(state, None, ValveHold.ALREADY_CLOSED)
    if state.position is ValvePosition.OPEN_PENDING:
        # Let the open command land (or fail) before deciding against it.
        return ValveOffResult(state, None, ValveHold.COMMAND_IN_FLIGHT)

    grace_ends = since_utc + policy.grace
    if now_utc < grace_ends:
        return ValveOffResult(
            state, None, ValveHold.GRACE_PERIOD, next_closing_time(policy, grace_ends)
        )
    hold = closing_hold(policy, now_utc)
    if hold is not None:
        return ValveOffResult(state, None, hold, next_closing_time(policy, now_utc))

    since_local = since_utc.astimezone(policy.tz)
    reason = (
        f"balance {balance.fixed()} yuan at or below cut-off {policy.cutoff.fixed()} "
        f"since {since_local:%Y-%m-%d %H:%M}, grace {_fmt_duration(policy.grace)} elapsed"
    )
    decision = ValveOff(
        at=now_utc,
        balance=balance,
        cutoff=policy.cutoff,
        below_cutoff_since=since_utc,
        reason=reason,
    )
    closing = replace(state, position=ValvePosition.CLOSE_PENDING, closed_by=ClosedBy.US)
    return ValveOffResult(closing, decision)


def decide_valve_on(
    balance: Money,
    *,
    state: ValveState,
    policy: ValvePolicy,
    now: datetime,
) -> ValveOnResult:
    """Reopen a valve we closed once the balance reaches the reopen threshold.

    Any time of day: quiet hours protect customers from losing gas, not from
    getting it back. A valve closed by the meter or for an unknown reason is
    left to a person. While our close is still pending the hold is
    `COMMAND_IN_FLIGHT`: the service cancels the queued close if it can, or
    decides again once the close lands.
    """
    now_utc = _utc(now, "now")
    if balance > policy.cutoff:
        state = replace(state, below_cutoff_since=None)
    if state.position is ValvePosition.OPEN:
        return ValveOnResult(state, None, ValveHold.NOT_CLOSED)
    if state.position in (ValvePosition.CLOSE_PENDING, ValvePosition.OPEN_PENDING):
        return ValveOnResult(state, None, ValveHold.COMMAND_IN_FLIGHT)
    if state.closed_by is not ClosedBy.US:
        return ValveOnResult(state, None, ValveHold.NOT_CLOSED_BY_US)
    if balance < policy.reopen_threshold:
        return ValveOnResult(state, None, ValveHold.BELOW_REOPEN)
    reason = (
        f"balance {balance.fixed()} yuan at or above reopen threshold "
        f"{policy.reopen_threshold.fixed()}; valve was closed by us"
    )
    decision = ValveOn(
        at=now_utc, balance=balance, reopen_threshold=policy.reopen_threshold, reason=reason
    )
    # closed_by stays until the open is confirmed: if it fails, it is still ours to reopen.
    return ValveOnResult(replace(state, position=ValvePosition.OPEN_PENDING), decision)


# ---------------------------------------------------------------------------
# Tariff push
# ---------------------------------------------------------------------------

MeterKey = TypeVar("MeterKey", bound=Hashable)


@dataclass(frozen=True)
class TariffChange:
    """An instant a meter's prices change: a version's effective_from or a season start."""

    at: datetime
    label: str

    def __post_init__(self) -> None:
        # Kept in UTC so that ordering and equality are by instant.
        object.__setattr__(self, "at", _utc(self.at, f"tariff change {self.label!r}"))


@dataclass(frozen=True)
class TariffPushDue(Generic[MeterKey]):
    """Decision: push the prices in force from `change.at` to this meter."""

    meter: MeterKey
    change: TariffChange
    confirmed_at: datetime | None  # the newest change the meter has confirmed
    early: bool  # ahead of change.at, as the lead time allows
    reason: str


def tariff_change_due(
    changes: Iterable[TariffChange],
    confirmed_at: datetime | None,
    now: datetime,
    *,
    lead: timedelta = timedelta(0),
    queued_at: datetime | None = None,
) -> TariffChange | None:
    """The newest change at or before `now + lead` the meter does not have yet.

    `confirmed_at` is the instant of the newest change the meter confirmed;
    `queued_at` that of a push already queued or in flight, not pushed twice.
    Changes at the same instant (a version and a season) are one push.
    """
    if lead < timedelta(0):
        raise DecisionError(f"lead must not be negative: {lead}")
    # A meter applies a pushed price at once (setprice carries no effective
    # time), so a future change goes out early only within the lead time.
    horizon = _utc(now, "now") + lead
    in_force = sorted((c for c in changes if c.at <= horizon), key=lambda c: c.at)
    if not in_force:
        return None
    newest = in_force[-1].at
    for done in (confirmed_at, queued_at):
        if done is not None and _utc(done, "confirmed_at/queued_at") >= newest:
            return None
    labels = [c.label for c in in_force if c.at == newest]
    return TariffChange(at=newest, label=" + ".join(labels))


def tariff_pushes_due(
    changes: Sequence[TariffChange],
    confirmed: Mapping[MeterKey, datetime | None],
    now: datetime,
    *,
    lead: timedelta = timedelta(0),
    queued: Mapping[MeterKey, datetime] | None = None,
) -> list[TariffPushDue[MeterKey]]:
    """Which meters on one tariff need which push at `now`, in the mapping's order."""
    now_utc = _utc(now, "now")
    due: list[TariffPushDue[MeterKey]] = []
    for meter, confirmed_at in confirmed.items():
        queued_at = None if queued is None else queued.get(meter)
        change = tariff_change_due(changes, confirmed_at, now_utc, lead=lead, queued_at=queued_at)
        if change is None:
            continue
        early = change.at > now_utc
        had = "none" if confirmed_at is None else _utc(confirmed_at, "confirmed_at").isoformat()
        reason = (
            f"{change.label} effective {change.at.isoformat()} "
            f"{'ahead of time within lead' if early else 'in force'}; meter has {had}"
        )
        due.append(TariffPushDue(meter, change, confirmed_at, early, reason))
    return due
