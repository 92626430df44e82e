"""The outbox's rules: one prepay command in flight per meter, and what each ending means."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gasbill.domain.commands import (
    CtrlState,
    CtrlType,
    OpenAccountReturn,
    RemoteChargeReturn,
    RemoteChargeState,
    Unreadable,
)
from gasbill.domain.money import Money
from gasbill.domain.outbox import (
    CommandStatus,
    Counters,
    Settlement,
    Verdict,
    Waiting,
    dispatchable,
    next_attempt,
    settle_top_up,
    verdict,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def cmd(i, ctrl_type, status=CommandStatus.QUEUED, minutes=0):
    return Waiting(i, ctrl_type, status, T0 + timedelta(minutes=minutes))


def test_the_tariff_goes_before_the_top_up_and_valves_go_freely():
    waiting = [
        cmd(1, CtrlType.REMOTE_CHARGE),
        cmd(2, CtrlType.SET_PRICE, minutes=5),
        cmd(3, CtrlType.SET_VALVE_ON),
    ]
    assert [c.id for c in dispatchable(waiting, blocked=False)] == [3, 2]


def test_nothing_prepay_goes_while_one_is_in_flight():
    waiting = [
        cmd(1, CtrlType.SET_PRICE, CommandStatus.SENT),
        cmd(2, CtrlType.REMOTE_CHARGE),
        cmd(3, CtrlType.SET_VALVE_OFF),
    ]
    assert [c.id for c in dispatchable(waiting, blocked=False)] == [3]


def test_a_blocked_meter_gets_only_the_settling_read():
    waiting = [cmd(1, CtrlType.REMOTE_CHARGE), cmd(2, CtrlType.GET_CHARGE_STATE, minutes=9)]
    assert [c.id for c in dispatchable(waiting, blocked=True)] == [2]
    assert dispatchable([cmd(1, CtrlType.REMOTE_CHARGE)], blocked=True) == []


@st.composite
def meters(draw):
    types = list(CtrlType)
    statuses = [CommandStatus.QUEUED, CommandStatus.SENDING, CommandStatus.SENT, CommandStatus.DONE]
    return [
        cmd(i, draw(st.sampled_from(types)), draw(st.sampled_from(statuses)), i)
        for i in range(draw(st.integers(0, 8)))
    ]


@given(meters(), st.booleans())
def test_at_most_one_prepay_command_is_ever_in_flight(commands, blocked):
    chosen = dispatchable(commands, blocked=blocked)
    in_flight = [
        c
        for c in commands
        if c.ctrl_type.is_prepay and c.status in (CommandStatus.SENDING, CommandStatus.SENT)
    ]
    assert len(in_flight) + sum(c.ctrl_type.is_prepay for c in chosen) <= max(1, len(in_flight))
    if blocked:
        assert all(
            c.ctrl_type is CtrlType.GET_CHARGE_STATE or not c.ctrl_type.is_prepay for c in chosen
        )


APPLIED = RemoteChargeReturn(0xAA, remain=Money("10"))
REFUSED = RemoteChargeReturn(0xBB, reason=1)


@pytest.mark.parametrize(
    ("ctrl_type", "state", "result", "expected"),
    [
        (CtrlType.REMOTE_CHARGE, CtrlState.SUCCESS, APPLIED, Verdict.APPLIED),
        (CtrlType.REMOTE_CHARGE, CtrlState.SUCCESS, REFUSED, Verdict.NOT_APPLIED),
        (CtrlType.REMOTE_CHARGE, CtrlState.SUCCESS, Unreadable("no json"), Verdict.UNKNOWN),
        (CtrlType.REMOTE_CHARGE, CtrlState.SUCCESS, RemoteChargeReturn(7), Verdict.UNKNOWN),
        (CtrlType.REMOTE_CHARGE, CtrlState.TIMED_OUT, None, Verdict.UNKNOWN),
        (CtrlType.REMOTE_CHARGE, CtrlState.FAILED, None, Verdict.UNKNOWN),
        (CtrlType.REMOTE_CHARGE, CtrlState.SEND_FAILED, None, Verdict.UNKNOWN),
        (CtrlType.REMOTE_CHARGE, CtrlState.OTHER_ERROR, None, Verdict.UNKNOWN),
        (CtrlType.REMOTE_CHARGE, CtrlState.ACKNOWLEDGED, None, Verdict.PENDING),
        (CtrlType.OPEN_ACCOUNT, CtrlState.SUCCESS, OpenAccountReturn(0), Verdict.APPLIED),
        (CtrlType.OPEN_ACCOUNT, CtrlState.SUCCESS, OpenAccountReturn(1), Verdict.NOT_APPLIED),
        (CtrlType.OPEN_ACCOUNT, CtrlState.SUCCESS, APPLIED, Verdict.UNKNOWN),
    ],
)
def test_verdicts(ctrl_type, state, result, expected):
    assert verdict(ctrl_type, state, result) == expected


def test_a_cancellation_voids_only_while_the_command_was_waiting():
    assert (
        verdict(CtrlType.REMOTE_CHARGE, CtrlState.CANCELLED, None, cancelled_while_waiting=True)
        == Verdict.NOT_APPLIED
    )
    assert verdict(CtrlType.REMOTE_CHARGE, CtrlState.CANCELLED, None) == Verdict.UNKNOWN


def counters(times, total):
    return RemoteChargeState(0, Money(0), Money(0), times, Money(0), Money(total))


def test_settling_by_the_meters_counters():
    confirmed = Counters(times=2, total_fen=15_000)
    assert settle_top_up(confirmed, 5_000, counters(3, "200")) is Settlement.APPLIED
    assert settle_top_up(confirmed, 5_000, counters(2, "150")) is Settlement.NOT_APPLIED
    assert settle_top_up(confirmed, 5_000, counters(4, "250")) is Settlement.MISMATCH
    assert settle_top_up(confirmed, 5_000, counters(3, "190")) is Settlement.MISMATCH


def test_back_off_doubles_up_to_a_cap():
    base, cap = timedelta(minutes=1), timedelta(hours=1)
    delays = [next_attempt(n, T0, base=base, cap=cap) - T0 for n in range(8)]
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert delays[-1] == cap
