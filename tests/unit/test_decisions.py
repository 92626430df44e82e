"""Decisions: low-balance warnings, valve off/on, tariff pushes due."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasbill.domain.decisions import (
    BillingMode,
    ClosedBy,
    DecisionError,
    QuietHours,
    TariffChange,
    ValveHold,
    ValveOff,
    ValveOffResult,
    ValvePolicy,
    ValvePosition,
    ValveState,
    WarningLevel,
    WarningPolicy,
    WarningReason,
    WarningState,
    closing_hold,
    decide_low_balance,
    decide_valve_off,
    decide_valve_on,
    gas_left,
    meter_mode_balance,
    next_closing_time,
    tariff_change_due,
    tariff_pushes_due,
)
from gasbill.domain.money import Money, Price, Volume

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
PRICE = Price("3.000")


def m(text: str) -> Money:
    return Money(text)


def days_of(volume: str, n: int) -> list[Volume]:
    return [Volume(volume)] * n


def local(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    tz: ZoneInfo = SH,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


# ---------------------------------------------------------------------------
# Days of gas left
# ---------------------------------------------------------------------------


class TestGasLeft:
    def test_unknown_while_fewer_than_seven_days(self) -> None:
        left = gas_left(m("10"), days_of("2", 6), PRICE)
        assert not left.known
        assert left.days is None
        assert not left.at_most(1000)

    def test_known_from_seven_days(self) -> None:
        # 7 days × 2 m³ × 3.000 = 42 yuan over 7 days: 6 yuan a day.
        left = gas_left(m("30"), days_of("2", 7), PRICE)
        assert left.known
        assert left.days == Decimal("5.0")
        assert left.at_most(5)
        assert not left.at_most(4)

    def test_only_the_last_fourteen_days_count(self) -> None:
        # 10 old heavy days, then 14 days of 1 m³: 3 yuan a day.
        use = days_of("9", 10) + days_of("1", 14)
        left = gas_left(m("30"), use, PRICE)
        assert left.days_known == 14
        assert left.days == Decimal("10.0")

    def test_days_floor_to_a_tenth(self) -> None:
        left = gas_left(m("10"), days_of("1", 7), PRICE)  # 10 / 3 = 3.33…
        assert left.days == Decimal("3.3")
        assert left.at_most(4)
        assert not left.at_most(3)

    def test_zero_or_negative_use_is_unlimited(self) -> None:
        for use in (days_of("0", 14), [*days_of("1", 7), Volume("-20")]):
            left = gas_left(m("1"), use, PRICE)
            assert left.unlimited
            assert left.days is None
            assert not left.at_most(10_000)

    def test_zero_price_is_unlimited(self) -> None:
        assert gas_left(m("1"), days_of("5", 14), Price("0")).unlimited

    def test_gone_balance_has_zero_days(self) -> None:
        left = gas_left(m("-4"), days_of("1", 7), PRICE)
        assert left.days == Decimal("0.0")
        assert left.at_most(0)


# ---------------------------------------------------------------------------
# Low-balance warning
# ---------------------------------------------------------------------------

POLICY = WarningPolicy(amount_threshold=m("20"), days_threshold=5, rearm_margin=m("10"))


def step(
    balance: str,
    state: WarningState,
    policy: WarningPolicy = POLICY,
    use: list[Volume] | None = None,
) -> tuple[WarningState, list[WarningReason]]:
    result = decide_low_balance(
        m(balance),
        policy=policy,
        state=state,
        recent_daily_use=use or [],
        marginal_price=PRICE,
    )
    return result.state, [d.reason for d in result.decisions]


class TestLowBalanceWarning:
    def test_fires_once_by_amount_then_stays_silent(self) -> None:
        state, fired = step("50", WarningState())
        assert fired == []
        state, fired = step("20", state)
        assert fired == [WarningReason.BY_AMOUNT]
        assert state.low_fired_by is WarningReason.BY_AMOUNT
        for balance in ("15", "19", "5", "0"):
            state, fired = step(balance, state)
            assert fired == []

    def test_hysteresis_rearms_only_above_threshold_plus_margin(self) -> None:
        state, _ = step("18", WarningState())
        # Back above the threshold but within the margin: still fired.
        state, fired = step("30", state)
        assert fired == []
        assert not state.armed(WarningLevel.LOW)
        state, fired = step("19", state)
        assert fired == []
        # Past threshold + margin (20 + 10): re-armed, and the next crossing warns.
        state, fired = step("30.01", state)
        assert fired == []
        assert state.armed(WarningLevel.LOW)
        state, fired = step("19.99", state)
        assert fired == [WarningReason.BY_AMOUNT]

    def test_without_margin_rearms_just_above_threshold(self) -> None:
        policy = WarningPolicy(amount_threshold=m("20"), days_threshold=5)
        state, _ = step("20", WarningState(), policy)
        state, _ = step("20.01", state, policy)
        assert state.armed(WarningLevel.LOW)

    def test_by_days_when_enough_days_known(self) -> None:
        # 14 days × 3 m³ × 3.000: 9 yuan a day; 40 yuan lasts 4.4 days.
        use = days_of("3", 14)
        _, fired = step("40", WarningState(), use=use)
        assert fired == [WarningReason.BY_DAYS]
        result = decide_low_balance(
            m("40"),
            policy=POLICY,
            state=WarningState(),
            recent_daily_use=use,
            marginal_price=PRICE,
        )
        warning = result.decisions[0]
        assert warning.level is WarningLevel.LOW
        assert warning.days_left == Decimal("4.4")
        assert (
            warning.message == "balance 40.00 yuan, about 4.4 days of gas left, at or below 5 days"
        )

    def test_amount_only_while_fewer_than_seven_days_known(self) -> None:
        heavy = days_of("10", 6)  # 30 yuan a day, but only 6 days known
        state, fired = step("40", WarningState(), use=heavy)
        assert fired == []
        state, fired = step("40", state, use=[*heavy, Volume("10")])
        assert fired == [WarningReason.BY_DAYS]

    def test_amount_is_the_reason_when_both_hold(self) -> None:
        _, fired = step("10", WarningState(), use=days_of("3", 14))
        assert fired == [WarningReason.BY_AMOUNT]

    def test_no_days_warning_without_use(self) -> None:
        state, fired = step("21", WarningState(), use=days_of("0", 14))
        assert fired == []
        assert state == WarningState()

    def test_days_rearm_needs_days_recovered_too(self) -> None:
        policy = WarningPolicy(
            amount_threshold=m("20"), days_threshold=5, rearm_margin=m("10"), rearm_days_margin=2
        )
        use = days_of("3", 14)  # 9 yuan a day
        state, fired = step("40", WarningState(), policy, use)
        assert fired == [WarningReason.BY_DAYS]
        # 60 yuan is past the amount margin but lasts only 6.6 days (<= 5 + 2).
        state, fired = step("60", state, policy, use)
        assert not state.armed(WarningLevel.LOW)
        # 64 yuan lasts 7.1 days: recovered.
        state, fired = step("64", state, policy, use)
        assert state.armed(WarningLevel.LOW)
        # Use drops to nothing: days unlimited, the amount decides alone.
        state, _ = step("40", WarningState(low_fired_by=WarningReason.BY_DAYS), policy, [])
        assert state.armed(WarningLevel.LOW)

    def test_below_zero_is_its_own_level(self) -> None:
        state, fired = step("15", WarningState())
        assert fired == [WarningReason.BY_AMOUNT]
        state, fired = step("-0.01", state)
        assert fired == [WarningReason.BELOW_ZERO]
        state, fired = step("-5", state)
        assert fired == []
        # Below zero re-arms above 0 + margin; low is still fired until 30.
        state, fired = step("10.01", state)
        assert state.armed(WarningLevel.BELOW_ZERO)
        assert not state.armed(WarningLevel.LOW)
        state, fired = step("-1", state)
        assert fired == [WarningReason.BELOW_ZERO]

    def test_straight_below_zero_sends_one_notice(self) -> None:
        result = decide_low_balance(
            m("-3.2"),
            policy=POLICY,
            state=WarningState(),
            recent_daily_use=[],
            marginal_price=PRICE,
        )
        assert [d.level for d in result.decisions] == [WarningLevel.BELOW_ZERO]
        assert result.decisions[0].message == "balance -3.20 yuan is below zero"
        assert result.state == WarningState(
            low_fired_by=WarningReason.BY_AMOUNT, below_zero_fired=True
        )

    def test_zero_is_not_below_zero(self) -> None:
        _, fired = step("0", WarningState())
        assert fired == [WarningReason.BY_AMOUNT]

    def test_amount_message(self) -> None:
        result = decide_low_balance(
            m("12.3"),
            policy=POLICY,
            state=WarningState(),
            recent_daily_use=days_of("1", 7),
            marginal_price=PRICE,
        )
        assert result.decisions[0].message == (
            "balance 12.30 yuan at or below 20.00, about 4.1 days of gas left"
        )

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"amount_threshold": m("-1"), "days_threshold": 5},
            {"amount_threshold": m("1"), "days_threshold": -1},
            {"amount_threshold": m("1"), "days_threshold": 5, "rearm_margin": m("-1")},
            {"amount_threshold": m("1"), "days_threshold": 5, "min_days_known": 15},
            {"amount_threshold": m("1"), "days_threshold": 5, "min_days_known": 0},
        ],
    )
    def test_policy_is_validated(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(DecisionError):
            WarningPolicy(**kwargs)  # type: ignore[arg-type]


# One step of a walk: the balance moves (fen) and a new frozen day is used (litres).
walk_steps = st.tuples(
    st.integers(min_value=-3000, max_value=3000), st.integers(min_value=0, max_value=4000)
)


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(min_value=-2000, max_value=8000),
    steps=st.lists(walk_steps, min_size=1, max_size=60),
    threshold=st.integers(min_value=0, max_value=3000),
    margin=st.integers(min_value=0, max_value=1500),
    days=st.integers(min_value=0, max_value=6),
    days_margin=st.integers(min_value=0, max_value=3),
)
def test_warnings_fire_once_per_crossing_and_rearm_only_after_recovery(
    start: int,
    steps: list[tuple[int, int]],
    threshold: int,
    margin: int,
    days: int,
    days_margin: int,
) -> None:
    policy = WarningPolicy(
        amount_threshold=Money.of_fen(threshold),
        days_threshold=days,
        rearm_margin=Money.of_fen(margin),
        rearm_days_margin=days_margin,
    )
    use: list[Volume] = []
    state = WarningState()
    balance = Money.of_fen(start)
    recovered_low = recovered_zero = True  # nothing fired yet
    for move, litres in steps:
        balance = balance + Money.of_fen(move)
        use.append(Volume.of_litres(litres))
        result = decide_low_balance(
            balance, policy=policy, state=state, recent_daily_use=use, marginal_price=PRICE
        )
        left = gas_left(balance, use, PRICE)
        low_now = balance <= policy.amount_threshold or left.at_most(days)
        # Recovery as the policy defines it, computed here on its own.
        if balance > policy.amount_threshold + policy.rearm_margin and not left.at_most(
            days + days_margin
        ):
            recovered_low = True
        if balance > policy.rearm_margin:
            recovered_zero = True
        levels = [d.level for d in result.decisions]
        assert len(levels) <= 1  # one notice per evaluation
        if WarningLevel.LOW in levels:
            assert low_now
            assert recovered_low, "low warning again without recovery"
            recovered_low = False
        if WarningLevel.BELOW_ZERO in levels:
            assert balance.is_negative()
            assert recovered_zero, "below-zero warning again without recovery"
            recovered_zero = recovered_low = False
        # Never silent on a crossing: whenever a level's condition holds, it is fired.
        if low_now:
            assert not result.state.armed(WarningLevel.LOW)
        if balance.is_negative():
            assert not result.state.armed(WarningLevel.BELOW_ZERO)
        state = result.state


class TestMeterModeBalance:
    now = datetime(2025, 3, 3, 12, tzinfo=UTC)

    def test_reported_plus_in_flight(self) -> None:
        balance = meter_mode_balance(
            reported_remain=m("5"),
            reported_at=self.now - timedelta(hours=47),
            top_ups_in_flight=m("50"),
            meter_credit=m("99"),
            now=self.now,
        )
        assert balance == m("55")

    def test_ledger_when_no_reading_for_48_hours(self) -> None:
        for reported_at in (self.now - timedelta(hours=48, seconds=1), None):
            balance = meter_mode_balance(
                reported_remain=m("5"),
                reported_at=reported_at,
                top_ups_in_flight=m("50"),
                meter_credit=m("99"),
                now=self.now,
            )
            assert balance == m("99")


# ---------------------------------------------------------------------------
# Valve off
# ---------------------------------------------------------------------------

NIGHT = QuietHours(time(20), time(8))
VALVE = ValvePolicy(
    cutoff=m("0"),
    reopen_threshold=m("10"),
    grace=timedelta(hours=24),
    quiet_hours=NIGHT,
    holidays=frozenset({date(2025, 3, 5), date(2025, 3, 6)}),
    zone="Asia/Shanghai",
)
CROSSED = local(2025, 3, 1, 8)  # a Saturday
AT_CUTOFF = ValveState(below_cutoff_since=CROSSED)


def off(
    balance: str,
    now: datetime,
    state: ValveState = AT_CUTOFF,
    policy: ValvePolicy = VALVE,
    mode: BillingMode = BillingMode.SYSTEM,
) -> ValveOffResult:
    return decide_valve_off(m(balance), mode=mode, state=state, policy=policy, now=now)


class TestValveOff:
    def test_closes_after_grace_outside_quiet_hours(self) -> None:
        result = off("-3.2", local(2025, 3, 2, 9))
        assert isinstance(result.decision, ValveOff)
        assert result.decision.reason == (
            "balance -3.20 yuan at or below cut-off 0.00 since 2025-03-01 08:00, grace 24h elapsed"
        )
        assert result.state.position is ValvePosition.CLOSE_PENDING
        assert result.state.closed_by is ClosedBy.US
        assert result.hold is None

    def test_first_crossing_records_the_time_and_waits_for_grace(self) -> None:
        now = local(2025, 3, 1, 10, 30)
        result = off("0", now, ValveState())
        assert result.decision is None
        assert result.hold is ValveHold.GRACE_PERIOD
        assert result.state.below_cutoff_since == now
        assert result.retry_at == local(2025, 3, 2, 10, 30)

    def test_grace_not_yet_elapsed(self) -> None:
        result = off("-1", local(2025, 3, 2, 7, 59))
        assert result.hold is ValveHold.GRACE_PERIOD
        assert result.retry_at == local(2025, 3, 2, 8)

    def test_grace_ending_in_quiet_hours_retries_when_they_end(self) -> None:
        state = ValveState(below_cutoff_since=local(2025, 3, 1, 21))
        result = off("-1", local(2025, 3, 1, 22), state)
        assert result.hold is ValveHold.GRACE_PERIOD
        assert result.retry_at == local(2025, 3, 3, 8)

    @pytest.mark.parametrize(
        ("now", "retry_at"),
        [
            (local(2025, 3, 2, 20), local(2025, 3, 3, 8)),  # quiet starts
            (local(2025, 3, 2, 23, 30), local(2025, 3, 3, 8)),  # before midnight
            (local(2025, 3, 3, 0, 0), local(2025, 3, 3, 8)),  # after midnight
            (local(2025, 3, 3, 7, 59, 59), local(2025, 3, 3, 8)),
        ],
    )
    def test_quiet_hours_wrapping_midnight(self, now: datetime, retry_at: datetime) -> None:
        result = off("-1", now)
        assert result.decision is None
        assert result.hold is ValveHold.QUIET_HOURS
        assert result.retry_at == retry_at

    @pytest.mark.parametrize("now", [local(2025, 3, 3, 8), local(2025, 3, 2, 19, 59, 59)])
    def test_quiet_hours_edges_allow(self, now: datetime) -> None:
        assert off("-1", now).decision is not None

    def test_quiet_hours_within_a_day(self) -> None:
        lunch = ValvePolicy(
            cutoff=m("0"),
            reopen_threshold=m("0"),
            grace=timedelta(0),
            quiet_hours=QuietHours(time(12), time(14)),
        )
        assert off("-1", local(2025, 3, 3, 11, 59), policy=lunch).decision is not None
        held = off("-1", local(2025, 3, 3, 12), policy=lunch)
        assert held.hold is ValveHold.QUIET_HOURS
        assert held.retry_at == local(2025, 3, 3, 14)
        assert off("-1", local(2025, 3, 3, 14), policy=lunch).decision is not None

    def test_holidays_in_a_row(self) -> None:
        result = off("-1", local(2025, 3, 5, 10))
        assert result.hold is ValveHold.HOLIDAY
        # 6 March is a holiday too; 7 March 00:00-08:00 is quiet.
        assert result.retry_at == local(2025, 3, 7, 8)

    def test_quiet_weekdays(self) -> None:
        weekend = ValvePolicy(
            cutoff=m("0"),
            reopen_threshold=m("0"),
            quiet_weekdays=frozenset({5, 6}),
            quiet_hours=NIGHT,
        )
        result = off("-1", local(2025, 3, 8, 12), policy=weekend)  # Saturday
        assert result.hold is ValveHold.QUIET_WEEKDAY
        assert result.retry_at == local(2025, 3, 10, 8)  # Monday morning

    def test_overdraft_allowance(self) -> None:
        overdraft = ValvePolicy(cutoff=m("-10"), reopen_threshold=m("0"))
        above = off("-9.99", local(2025, 3, 3, 12), policy=overdraft)
        assert above.hold is ValveHold.ABOVE_CUTOFF
        assert above.state.below_cutoff_since is None
        at = off("-10", local(2025, 3, 3, 12), policy=overdraft)
        assert at.decision is not None
        assert "cut-off -10.00" in at.decision.reason

    def test_recovery_forgets_the_crossing(self) -> None:
        result = off("0.01", local(2025, 3, 3, 12))
        assert result.hold is ValveHold.ABOVE_CUTOFF
        assert result.state == ValveState()

    @pytest.mark.parametrize(
        ("state", "hold"),
        [
            (ValveState(ValvePosition.CLOSED, ClosedBy.US, CROSSED), ValveHold.ALREADY_CLOSED),
            (ValveState(ValvePosition.CLOSED, ClosedBy.METER, CROSSED), ValveHold.ALREADY_CLOSED),
            (
                ValveState(ValvePosition.CLOSE_PENDING, ClosedBy.US, CROSSED),
                ValveHold.ALREADY_CLOSED,
            ),
            (
                ValveState(ValvePosition.OPEN_PENDING, ClosedBy.US, CROSSED),
                ValveHold.COMMAND_IN_FLIGHT,
            ),
        ],
    )
    def test_never_closes_twice(self, state: ValveState, hold: ValveHold) -> None:
        result = off("-1", local(2025, 3, 3, 12), state)
        assert result.decision is None
        assert result.hold is hold
        assert result.state == state

    def test_meter_mode_never_closes(self) -> None:
        result = off("-100", local(2025, 3, 3, 12), mode=BillingMode.METER)
        assert result.hold is ValveHold.NOT_SYSTEM_MODE

    def test_naive_time_is_refused(self) -> None:
        with pytest.raises(DecisionError):
            off("-1", datetime(2025, 3, 3, 12))

    def test_grace_counts_elapsed_time_across_dst(self) -> None:
        # 24 h after 12:00 CET on 29 March is 13:00 CEST on 30 March.
        policy = ValvePolicy(cutoff=m("0"), reopen_threshold=m("0"), zone=BERLIN)
        state = ValveState(below_cutoff_since=local(2025, 3, 29, 12, tz=BERLIN))
        held = off("-1", local(2025, 3, 30, 12, 59, tz=BERLIN), state, policy)
        assert held.hold is ValveHold.GRACE_PERIOD
        assert held.retry_at == local(2025, 3, 30, 13, tz=BERLIN)

    def test_quiet_end_in_a_dst_gap(self) -> None:
        # 02:30 does not exist on 30 March in Berlin: quiet ends at 03:00 CEST.
        policy = ValvePolicy(
            cutoff=m("0"),
            reopen_threshold=m("0"),
            quiet_hours=QuietHours(time(0), time(2, 30)),
            zone="Europe/Berlin",
        )
        assert next_closing_time(policy, local(2025, 3, 30, 0, 30, tz=BERLIN)) == datetime(
            2025, 3, 30, 1, tzinfo=UTC
        )
        # In the fall-back overlap the wall clock passes 02:00-02:30 twice.
        second = datetime(2025, 10, 26, 1, 10, tzinfo=UTC)  # 02:10 CET
        assert closing_hold(policy, second) is ValveHold.QUIET_HOURS
        assert next_closing_time(policy, second) == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"cutoff": m("1"), "reopen_threshold": m("2")},
            {"cutoff": m("0"), "reopen_threshold": m("-1")},
            {"cutoff": m("0"), "reopen_threshold": m("0"), "grace": timedelta(hours=-1)},
            {"cutoff": m("0"), "reopen_threshold": m("0"), "quiet_weekdays": frozenset(range(7))},
            {"cutoff": m("0"), "reopen_threshold": m("0"), "quiet_weekdays": frozenset({7})},
            {"cutoff": m("0"), "reopen_threshold": m("0"), "zone": "Mars/Olympus"},
        ],
    )
    def test_policy_is_validated(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(DecisionError):
            ValvePolicy(**kwargs)  # type: ignore[arg-type]

    def test_empty_quiet_window_is_refused(self) -> None:
        with pytest.raises(DecisionError):
            QuietHours(time(8), time(8))


wall_times = st.times().map(lambda t: t.replace(microsecond=0))


@st.composite
def valve_policies(draw: st.DrawFn) -> ValvePolicy:
    quiet = None
    if draw(st.booleans()):
        start, end = draw(wall_times), draw(wall_times)
        if start != end:
            quiet = QuietHours(start, end)
    days = st.dates(min_value=date(2025, 1, 1), max_value=date(2025, 2, 28))
    return ValvePolicy(
        cutoff=Money.of_fen(-draw(st.integers(0, 2000))),
        reopen_threshold=Money.of_fen(draw(st.integers(0, 2000))),
        grace=timedelta(minutes=draw(st.integers(0, 3 * 24 * 60))),
        quiet_hours=quiet,
        holidays=frozenset(draw(st.lists(days, max_size=20))),
        quiet_weekdays=frozenset(draw(st.lists(st.integers(0, 6), max_size=6, unique=True))),
        zone=draw(st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York"])),
    )


def held_by_calendar(policy: ValvePolicy, instant: datetime) -> bool:
    """The test's own reading of the calendar rules."""
    wall = instant.astimezone(policy.tz)
    quiet = policy.quiet_hours
    in_quiet = False
    if quiet is not None:
        t = wall.time()
        if quiet.start < quiet.end:
            in_quiet = quiet.start <= t < quiet.end
        else:
            in_quiet = t >= quiet.start or t < quiet.end
    return in_quiet or wall.date() in policy.holidays or wall.weekday() in policy.quiet_weekdays


instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2025, 2, 28), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    policy=valve_policies(),
    now=instants,
    since_before=st.integers(min_value=0, max_value=5 * 24 * 60),
    below=st.integers(min_value=0, max_value=5000),
)
def test_valve_off_never_in_quiet_hours_or_on_holidays(
    policy: ValvePolicy, now: datetime, since_before: int, below: int
) -> None:
    since = now - timedelta(minutes=since_before)
    state = ValveState(below_cutoff_since=since)
    balance = policy.cutoff - Money.of_fen(below)
    result = decide_valve_off(balance, mode=BillingMode.SYSTEM, state=state, policy=policy, now=now)
    if result.decision is not None:
        assert not held_by_calendar(policy, now)
        assert since + policy.grace <= now
    else:
        assert result.hold in {
            ValveHold.GRACE_PERIOD,
            ValveHold.QUIET_HOURS,
            ValveHold.HOLIDAY,
            ValveHold.QUIET_WEEKDAY,
        }
        retry_at = result.retry_at
        assert retry_at is not None
        assert retry_at >= now
        assert not held_by_calendar(policy, retry_at)
        # The earliest such time: a second before it the close was not yet allowed.
        earliest = max(now, since + policy.grace)
        if retry_at > earliest:
            assert held_by_calendar(policy, retry_at - timedelta(seconds=1))
        # Coming back at retry_at, the valve is closed.
        again = decide_valve_off(
            balance, mode=BillingMode.SYSTEM, state=state, policy=policy, now=retry_at
        )
        assert again.decision is not None


# ---------------------------------------------------------------------------
# Valve on
# ---------------------------------------------------------------------------

CLOSED_BY_US = ValveState(ValvePosition.CLOSED, ClosedBy.US, CROSSED)


class TestValveOn:
    now = local(2025, 3, 3, 23)  # in quiet hours: reopening is never held by them

    def test_reopens_at_the_threshold(self) -> None:
        result = decide_valve_on(m("10"), state=CLOSED_BY_US, policy=VALVE, now=self.now)
        assert result.decision is not None
        assert result.decision.reason == (
            "balance 10.00 yuan at or above reopen threshold 10.00; valve was closed by us"
        )
        assert result.state == ValveState(ValvePosition.OPEN_PENDING, ClosedBy.US, None)

    def test_not_below_the_threshold(self) -> None:
        result = decide_valve_on(m("9.99"), state=CLOSED_BY_US, policy=VALVE, now=self.now)
        assert result.decision is None
        assert result.hold is ValveHold.BELOW_REOPEN
        assert result.state.below_cutoff_since is None  # above the cut-off again

    @pytest.mark.parametrize("closed_by", [ClosedBy.METER, ClosedBy.UNKNOWN])
    def test_not_a_valve_someone_else_closed(self, closed_by: ClosedBy) -> None:
        state = ValveState(ValvePosition.CLOSED, closed_by)
        result = decide_valve_on(m("100"), state=state, policy=VALVE, now=self.now)
        assert result.decision is None
        assert result.hold is ValveHold.NOT_CLOSED_BY_US

    @pytest.mark.parametrize(
        ("state", "hold"),
        [
            (ValveState(), ValveHold.NOT_CLOSED),
            (ValveState(ValvePosition.CLOSE_PENDING, ClosedBy.US), ValveHold.COMMAND_IN_FLIGHT),
            (ValveState(ValvePosition.OPEN_PENDING, ClosedBy.US), ValveHold.COMMAND_IN_FLIGHT),
        ],
    )
    def test_nothing_to_reopen(self, state: ValveState, hold: ValveHold) -> None:
        result = decide_valve_on(m("100"), state=state, policy=VALVE, now=self.now)
        assert result.decision is None
        assert result.hold is hold

    def test_closed_valve_must_say_why(self) -> None:
        with pytest.raises(DecisionError):
            ValveState(ValvePosition.CLOSED)


# ---------------------------------------------------------------------------
# Tariff push
# ---------------------------------------------------------------------------

V1 = TariffChange(local(2025, 1, 1), "v2025")
HEATING = TariffChange(local(2025, 11, 15), "heating season")
V2 = TariffChange(local(2026, 1, 1), "v2026")
CHANGES = [HEATING, V1, V2]  # any order


class TestTariffPush:
    def test_newest_change_in_force(self) -> None:
        due = tariff_change_due(CHANGES, None, local(2025, 6, 1))
        assert due == V1
        assert tariff_change_due(CHANGES, V1.at, local(2025, 6, 1)) is None

    def test_season_start_becomes_due_at_its_instant(self) -> None:
        assert tariff_change_due(CHANGES, V1.at, local(2025, 11, 14, 23, 59)) is None
        assert tariff_change_due(CHANGES, V1.at, local(2025, 11, 15)) == HEATING

    def test_missed_changes_collapse_to_the_newest(self) -> None:
        assert tariff_change_due(CHANGES, None, local(2026, 2, 1)) == V2

    def test_future_change_only_within_lead(self) -> None:
        now = local(2025, 12, 30)
        assert tariff_change_due(CHANGES, HEATING.at, now) is None
        assert tariff_change_due(CHANGES, HEATING.at, now, lead=timedelta(days=1)) is None
        assert tariff_change_due(CHANGES, HEATING.at, now, lead=timedelta(days=2)) == V2

    def test_a_newer_confirmation_or_queued_push_is_enough(self) -> None:
        now = local(2025, 11, 20)
        assert tariff_change_due(CHANGES, V2.at, now) is None  # pushed early before
        assert tariff_change_due(CHANGES, V1.at, now, queued_at=HEATING.at) is None

    def test_changes_at_one_instant_are_one_push(self) -> None:
        season = TariffChange(V2.at, "winter prices")
        due = tariff_change_due([*CHANGES, season], HEATING.at, local(2026, 1, 2))
        assert due == TariffChange(V2.at, "v2026 + winter prices")

    def test_per_meter(self) -> None:
        now = local(2025, 12, 31, 12)
        due = tariff_pushes_due(
            CHANGES,
            {"m1": None, "m2": HEATING.at, "m3": V1.at, "m4": V2.at},
            now,
            lead=timedelta(days=1),
            queued={"m3": V2.at},
        )
        assert [(d.meter, d.change.label, d.early) for d in due] == [
            ("m1", "v2026", True),
            ("m2", "v2026", True),
        ]
        assert due[0].reason == (
            "v2026 effective 2025-12-31T16:00:00+00:00 ahead of time within lead; meter has none"
        )
        without_lead = tariff_pushes_due(CHANGES, {"m1": None, "m2": HEATING.at}, now)
        assert [(d.meter, d.change, d.early) for d in without_lead] == [("m1", HEATING, False)]

    def test_change_instants_must_be_aware(self) -> None:
        with pytest.raises(DecisionError):
            TariffChange(datetime(2025, 1, 1), "naive")
        with pytest.raises(DecisionError):
            tariff_change_due(CHANGES, None, local(2025, 6, 1), lead=timedelta(hours=-1))
