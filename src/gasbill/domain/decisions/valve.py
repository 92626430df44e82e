"""Valve off for lack of credit (after a grace period, outside quiet times) and on again."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gasbill.domain.accounts import BillingMode
from gasbill.domain.decisions.common import (
    DEFAULT_ZONE,
    DecisionError,
    as_zone,
    local_instant,
    to_utc,
)
from gasbill.domain.money import Money


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
            to_utc(self.below_cutoff_since, "below_cutoff_since")


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
    local = to_utc(at, "at").astimezone(policy.tz)
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
    t = to_utc(at, "at")
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
            t = local_instant(day, quiet.end, zone, after=t)
        else:
            t = local_instant(local.date() + timedelta(days=1), time(0), zone, after=t)
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
    now_utc = to_utc(now, "now")
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
    since_utc = to_utc(since, "below_cutoff_since")

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
    now_utc = to_utc(now, "now")
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
