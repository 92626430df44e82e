"""The dispatcher (service.commands.dispatch) on fakes, no database: due commands claimed
oldest first and handed over in AddMulti batches, one prepay command in flight per meter,
a top-up's count and total from the meter's confirmed counters, honest status when the
platform refuses a batch, an item, our login, or cannot be reached, and a send whose
reply was lost found again by its define_no, never sent twice.

The expected times follow `domain.outbox.next_attempt`: base · 2^attempts (POLICY: base
5 minutes, so 10 minutes after a first attempt, 5 after a refused login, which costs
none). The database's side (claims shared by several dispatchers, row locks) is in
tests/integration/test_outbox.py and test_workers.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gasbill.adapters.platform.codec import Codec
from gasbill.domain.commands import CtrlState, GetChargeState, RemoteCharge, SetValveOff
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Money
from gasbill.domain.outbox import CommandStatus
from gasbill.service import ledger
from gasbill.service.commands.dispatch import DispatchOutcome, dispatch
from gasbill.service.commands.queue import CommandPolicy, queue_command, queue_top_up
from gasbill.service.commands.results import apply_state
from gasbill.service.dispatch_ports import DispatchUnitOfWork
from gasbill.service.ports import PlatformRefused, PlatformRetryable
from tests.fakes import (
    FakeAccount,
    FakeBinding,
    FakeCommand,
    FakeCommandReport,
    FakeMeter,
    FakePlatform,
    FakePrepayState,
    FakeStore,
    FakeUnitOfWork,
)

AT = datetime(2025, 3, 1, 8, tzinfo=UTC)
CODEC = Codec(ZoneInfo("Asia/Shanghai"))
POLICY = CommandPolicy(max_attempts=3, batch_size=2)
MINUTE = timedelta(minutes=1)
AFTER_FIRST = POLICY.backoff_base * 2  # the wait after a command's first attempt
LOOKUP = AT + POLICY.lookup_after + timedelta(seconds=1)  # a send without reply is stale
PREPAID, CREDIT = AccountCode.prepaid("7"), AccountCode.meter_credit("7")
CHARGE_OK = 0xAA
TOP_UP_METER = 3  # account 7's meter; 4 to 8 are other meters, valves only


def world() -> FakeStore:
    """Account 7 (meter-billed, 1,000.00 paid) on meter 3; meters 4 to 8 besides."""
    store = FakeStore(
        accounts={7: FakeAccount(7, billing_mode="meter")},
        meters={m: FakeMeter(m, comm_no=f"1234567890{m}") for m in range(3, 9)},
        bindings=[FakeBinding(7, TOP_UP_METER, AT - timedelta(days=30))],
    )
    store.ledger.set_overdraft_allowance(PREPAID, 0)
    ledger.record_payment(
        FakeUnitOfWork(store),
        account_id=7,
        amount_fen=100_000,
        channel="counter",
        idempotency_key="p1",
        actor="clerk1",
        at=AT - timedelta(days=1),
    )
    return store


def valve_off(store: FakeStore, meter_id: int, at: datetime = AT) -> int:
    """A valve command queued at `at` (due then): it goes whenever it is due."""
    uow = FakeUnitOfWork(store)
    with uow:
        command = queue_command(
            uow, SetValveOff(), meter=store.meters[meter_id], now=at, policy=POLICY
        )
        uow.commit()
    assert command.id is not None
    return command.id


def read_counters(store: FakeStore, at: datetime = AT) -> int:
    uow = FakeUnitOfWork(store)
    with uow:
        meter = store.meters[TOP_UP_METER]
        command = queue_command(uow, GetChargeState(), meter=meter, now=at, policy=POLICY)
        uow.commit()
    assert command.id is not None
    return command.id


def top_up(store: FakeStore, fen: int, key: str, at: datetime = AT) -> int:
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        command = queue_top_up(uow, account, fen, key=key, actor="clerk1", now=at, policy=POLICY)
        uow.commit()
    assert command.id is not None
    return command.id


def run(store: FakeStore, platform: FakePlatform, at: datetime = AT) -> DispatchOutcome:
    units: Callable[[], DispatchUnitOfWork] = lambda: FakeUnitOfWork(store)  # noqa: E731
    return dispatch(units, platform, CODEC, policy=POLICY, now=at)


def command(store: FakeStore, command_id: int) -> FakeCommand:
    return store.commands[command_id]


def charge_applied(store: FakeStore, command_id: int, at: datetime) -> None:
    """The meter reports the top-up applied (state 3, its success flag)."""
    uow = FakeUnitOfWork(store)
    with uow:
        found = uow.commands.get(command_id)
        assert found is not None
        reply = {"success": CHARGE_OK}
        apply_state(uow, CODEC, found, CtrlState.SUCCESS, reply, "", policy=POLICY, now=at)
        uow.commit()


# -- claimed and handed over ----------------------------------------------------------


def test_due_commands_are_claimed_oldest_first_and_handed_over_in_batches():
    store, platform = world(), FakePlatform()
    later = valve_off(store, 5, AT)
    oldest = valve_off(store, 6, AT - 30 * MINUTE)
    second = valve_off(store, 4, AT - 20 * MINUTE)
    third = valve_off(store, 8, AT - 10 * MINUTE)
    not_due = valve_off(store, 7, AT + MINUTE)

    outcome = run(store, platform)

    # 4 due, batch_size 2: [oldest, second], [third, later]; the one not due stays
    assert (outcome.claimed, outcome.sent, outcome.failed) == (4, 4, 0)
    assert platform.handed_over() == [[oldest, second], [third, later]]
    for ctrl_id, command_id in enumerate((oldest, second, third, later), start=901):
        sent = command(store, command_id)
        assert (sent.status, sent.ctrl_id, sent.sent_at) == (CommandStatus.SENT, ctrl_id, AT)
        assert (sent.claimed_at, sent.attempts) == (AT, 1)
    first = platform.batches[0][0]
    assert first.define_no == command(store, oldest).define_no
    assert (first.meter_comm_no, first.intent, first.at) == ("12345678906", SetValveOff(), AT)
    assert first.timeout_at == AT - 30 * MINUTE + POLICY.timeout
    waiting = command(store, not_due)
    assert (waiting.status, waiting.attempts, waiting.claimed_at) == (CommandStatus.QUEUED, 0, None)

    assert run(store, platform).claimed == 0  # nothing more is due
    assert run(store, platform, AT + MINUTE).sent == 1
    assert platform.handed_over()[2:] == [[not_due]]


def test_a_meter_another_dispatcher_holds_is_left_to_it():
    store, platform = world(), FakePlatform()
    held, free = valve_off(store, 4), valve_off(store, 5)
    store.dispatch_claims_held.add(4)

    run(store, platform)

    assert platform.handed_over() == [[free]]
    assert command(store, held).status == CommandStatus.QUEUED


def test_a_top_up_carries_the_next_count_and_total_of_the_meters_confirmed_top_ups():
    store, platform = world(), FakePlatform()
    store.prepay[TOP_UP_METER] = FakePrepayState(
        TOP_UP_METER, confirmed_times=2, confirmed_total_fen=7_000
    )
    first = top_up(store, 4_000, "t1")
    assert command(store, first).intent is None  # made only at dispatch

    run(store, platform)

    # the third remote top-up: 40.00 now, 70.00 + 40.00 in all
    expected = RemoteCharge(Money.of_fen(4_000), Money.of_fen(11_000), 3)
    assert platform.batches[0][0].intent == expected
    sent = command(store, first)
    assert (sent.charge_times, sent.total_fen, sent.intent) == (3, 11_000, expected)
    assert (sent.status, sent.attempts, sent.claimed_at) == (CommandStatus.SENT, 1, AT)


# -- one prepay command in flight per meter --------------------------------------------


def test_a_second_top_up_waits_until_the_first_has_ended_a_valve_does_not():
    store, platform = world(), FakePlatform()
    first = top_up(store, 4_000, "t1", AT)
    second = top_up(store, 2_500, "t2", AT + MINUTE)
    valve = valve_off(store, TOP_UP_METER, AT + 2 * MINUTE)

    outcome = run(store, platform, AT + 2 * MINUTE)

    assert (outcome.claimed, outcome.sent) == (2, 2)
    assert platform.handed_over() == [[first, valve]]
    waiting = command(store, second)
    assert (waiting.status, waiting.attempts, waiting.intent) == (CommandStatus.QUEUED, 0, None)
    with FakeUnitOfWork(store) as uow:  # a top-up in flight: nothing to send, not even a claim
        assert not uow.commands.anything_to_send(AT + 3 * MINUTE, AT)
    assert run(store, platform, AT + 3 * MINUTE).claimed == 0
    another_valve = valve_off(store, TOP_UP_METER, AT + 3 * MINUTE)  # the meter claimed again
    assert run(store, platform, AT + 3 * MINUTE).claimed == 1
    assert platform.handed_over()[1:] == [[another_valve]]  # and the top-up still waits

    charge_applied(store, first, AT + 4 * MINUTE)
    run(store, platform, AT + 5 * MINUTE)

    # the meter's second remote top-up: 25.00, 40.00 + 25.00 in all
    assert platform.handed_over()[2:] == [[second]]
    assert platform.batches[2][0].intent == RemoteCharge(
        Money.of_fen(2_500), Money.of_fen(6_500), 2
    )
    assert command(store, second).status == CommandStatus.SENT


def test_a_blocked_meter_gets_only_the_read_that_settles_it():
    store, platform = world(), FakePlatform()
    store.prepay[TOP_UP_METER] = FakePrepayState(TOP_UP_METER, blocked_by=99)
    waiting = top_up(store, 4_000, "t1", AT - MINUTE)  # older, and still not first
    read = read_counters(store)

    run(store, platform)

    assert platform.handed_over() == [[read]]
    assert command(store, waiting).status == CommandStatus.QUEUED


# -- honest status when the platform says no or cannot be reached ----------------------


def test_a_refused_batch_goes_back_to_the_queue_with_the_reason_and_the_next_attempt():
    store, platform = world(), FakePlatform()
    first, second = valve_off(store, 4), valve_off(store, 5)
    define_nos = [command(store, i).define_no for i in (first, second)]
    platform.fail_next = [PlatformRefused("platform busy, try later", status=200)]

    outcome = run(store, platform)

    assert (outcome.claimed, outcome.sent, outcome.failed) == (2, 0, 2)
    assert outcome.errors == ["platform busy, try later (HTTP 200)"]
    for command_id in (first, second):
        queued = command(store, command_id)
        assert (queued.status, queued.attempts, queued.ctrl_id) == (CommandStatus.QUEUED, 1, None)
        assert queued.last_error == "refused by the platform: platform busy, try later"
        assert queued.next_attempt_at == AT + AFTER_FIRST
    assert platform.records == {}

    assert run(store, platform, AT + AFTER_FIRST - MINUTE).claimed == 0  # not before
    assert run(store, platform, AT + AFTER_FIRST).sent == 2
    assert [c.define_no for c in platform.batches[1]] == define_nos  # the same, never added
    assert command(store, first).attempts == 2


def test_a_command_refused_at_every_attempt_goes_to_a_person():
    store, platform = world(), FakePlatform()
    valve = valve_off(store, 4)
    platform.fail_next = [PlatformRefused("platform busy") for _ in range(POLICY.max_attempts)]

    at = AT
    for attempt in range(1, POLICY.max_attempts):
        run(store, platform, at)
        assert command(store, valve).next_attempt_at == at + POLICY.backoff_base * 2**attempt
        at = command(store, valve).next_attempt_at
    run(store, platform, at)  # the third and last attempt

    given_up = command(store, valve)
    assert (given_up.status, given_up.attempts) == (CommandStatus.ATTENTION, 3)
    assert given_up.last_error == "refused by the platform: platform busy"
    assert [e.kind for e in store.exceptions] == ["command_attention"]
    assert "could not be sent after 3 attempts" in store.exceptions[0].detail
    assert run(store, platform, at + timedelta(days=1)).claimed == 0


def test_a_refused_login_is_the_reason_costs_no_attempt_and_never_gives_up():
    store, platform = world(), FakePlatform()
    first = top_up(store, 4_000, "t1")
    runs = POLICY.max_attempts + 2
    platform.fail_next = [
        PlatformRefused("用户名或密码错误", status=200, path="/login", login=True)
        for _ in range(runs)
    ]

    at = AT
    for _ in range(runs):
        outcome = run(store, platform, at)
        assert (outcome.sent, outcome.failed) == (0, 1)
        queued = command(store, first)
        assert (queued.status, queued.attempts) == (CommandStatus.QUEUED, 0)
        assert queued.next_attempt_at == at + POLICY.backoff_base  # 2^0: no attempt spent
        at = queued.next_attempt_at
    assert queued.last_error == (
        "the platform refused our login (用户名或密码错误); check [platform] login_name/password"
    )
    assert platform.handed_over() == [[first]] * runs
    assert store.exceptions == []
    assert run(store, platform, at).sent == 1  # let in again


def test_an_item_answered_false_is_queued_with_its_message_the_rest_sent():
    store, platform = world(), FakePlatform()
    accepted, refused = valve_off(store, 4), valve_off(store, 5)
    platform.refuse_items["12345678905"] = "device not registered"

    outcome = run(store, platform)

    assert (outcome.sent, outcome.failed) == (1, 1)
    assert (command(store, accepted).status, command(store, accepted).ctrl_id) == ("sent", 901)
    queued = command(store, refused)
    assert (queued.status, queued.attempts, queued.ctrl_id) == (CommandStatus.QUEUED, 1, None)
    assert queued.last_error == "refused: device not registered"
    assert queued.next_attempt_at == AT + AFTER_FIRST


def test_a_platform_out_of_reach_leaves_the_batch_sending_with_the_reason_then_asks():
    """Whether the platform got the batch is unknown: it is not queued again (it might be
    added twice) but looked up by define_no once a lookup interval has passed."""
    store, platform = world(), FakePlatform()
    first, second = valve_off(store, 4), valve_off(store, 5)
    platform.fail_next = [PlatformRetryable("timed out", path="AddMulti")]

    outcome = run(store, platform)

    assert (outcome.sent, outcome.failed) == (0, 0)
    assert outcome.errors == ["AddMulti: timed out (AddMulti)"]
    for command_id in (first, second):
        sending = command(store, command_id)
        assert (sending.status, sending.attempts, sending.claimed_at) == ("sending", 1, AT)
        assert sending.last_error == (
            "the platform could not be reached: timed out; looked up on the platform before "
            "resending"
        )
    assert run(store, platform, AT + POLICY.lookup_after).claimed == 0
    assert platform.lookups == []

    outcome = run(store, platform, LOOKUP)  # never added: queued again, same define_no

    assert platform.lookups == [command(store, i).define_no for i in (first, second)]
    for command_id in (first, second):
        queued = command(store, command_id)
        assert (queued.status, queued.attempts) == (CommandStatus.QUEUED, 1)
        assert queued.last_error == "the platform has no record of it"
        assert queued.next_attempt_at == LOOKUP + AFTER_FIRST
    assert (outcome.claimed, len(platform.batches)) == (0, 1)  # not due yet in this run
    assert run(store, platform, LOOKUP + AFTER_FIRST).sent == 2


# -- a send whose answer was lost: settled, not sent again -----------------------------


def test_a_top_up_whose_reply_was_lost_is_settled_from_the_platforms_record_not_resent():
    store, platform = world(), FakePlatform()
    first = top_up(store, 4_000, "t1")
    platform.lose_next_reply = True

    assert run(store, platform).sent == 0
    sending = command(store, first)
    assert (sending.status, sending.ctrl_id, sending.charge_times) == ("sending", None, 1)
    platform.finish(901, CtrlState.SUCCESS, {"success": CHARGE_OK})  # the meter applied it
    assert run(store, platform, AT + 5 * MINUTE).found_again == 0  # too soon to ask

    outcome = run(store, platform, LOOKUP)

    assert (outcome.found_again, outcome.claimed, len(platform.batches)) == (1, 0, 1)
    assert platform.lookups == [sending.define_no]
    done = command(store, first)
    assert (done.status, done.outcome, done.ctrl_id) == (CommandStatus.DONE, "applied", 901)
    assert done.sent_at == LOOKUP
    prepaid, credit = store.ledger.balance(PREPAID), store.ledger.balance(CREDIT)
    assert (prepaid.posted, prepaid.pending, credit.posted) == (96_000, 0, 4_000)
    counters = store.prepay[TOP_UP_METER]
    assert (counters.confirmed_times, counters.confirmed_total_fen) == (1, 4_000)


def test_an_item_missing_from_the_reply_is_left_sending_and_found_by_its_define_no():
    store, platform = world(), FakePlatform()
    answered, missing = valve_off(store, 4), valve_off(store, 5)
    platform.garble_items.add("12345678905")

    outcome = run(store, platform)

    assert (outcome.sent, outcome.failed) == (1, 0)
    assert command(store, answered).ctrl_id == 901
    assert (command(store, missing).status, command(store, missing).ctrl_id) == ("sending", None)
    assert command(store, missing).last_error == (
        "the platform's reply did not account for it; looked up on the platform before resending"
    )
    assert command(store, answered).last_error in (None, "")

    outcome = run(store, platform, LOOKUP)

    assert (outcome.found_again, len(platform.batches)) == (1, 1)
    found = command(store, missing)
    assert (found.status, found.ctrl_id, found.sent_at) == (CommandStatus.SENT, 902, LOOKUP)


def test_a_lookup_that_fails_is_asked_again_only_an_interval_later():
    store, platform = world(), FakePlatform()
    valve = valve_off(store, 4)
    platform.lose_next_reply, platform.lookups_fail = True, True
    run(store, platform)
    define_no = command(store, valve).define_no

    outcome = run(store, platform, LOOKUP)

    assert outcome.errors == [f"lookup of {define_no}: timed out (GetList)"]
    assert (command(store, valve).status, command(store, valve).claimed_at) == ("sending", LOOKUP)
    run(store, platform, LOOKUP + POLICY.lookup_after)  # not stale again yet
    assert platform.lookups == [define_no]
    platform.lookups_fail = False
    assert run(store, platform, LOOKUP + POLICY.lookup_after + MINUTE).found_again == 1
    assert len(platform.batches) == 1


def test_a_report_that_beat_the_add_reply_is_applied_once_the_ctrl_id_is_known():
    store, platform = world(), FakePlatform()
    first = top_up(store, 4_000, "t1")
    payload = {"return_data": {"success": CHARGE_OK}, "ctrl_feedback_msg": ""}
    store.command_reports.append(
        FakeCommandReport(1, "1001", 901, CtrlState.SUCCESS, json.dumps(payload), AT)
    )

    assert run(store, platform).sent == 1

    done = command(store, first)
    assert (done.status, done.outcome, done.ctrl_id) == (CommandStatus.DONE, "applied", 901)
    assert store.command_reports[0].matched_at == AT
    assert store.ledger.balance(CREDIT).posted == 4_000
