"""What a command's ending does (service.commands.results and its endings), on a fake unit
of work: a top-up applied, refused or of unknown outcome; the read that settles it; an
opening and its baseline; a plain command failing until a person must look.

The database's side (locks, the report arriving before the ctrl_id) is in
tests/integration/test_outbox.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gasbill.adapters.platform.codec import Codec
from gasbill.domain.commands import (
    CtrlState,
    CtrlType,
    GetChargeState,
    LadderPrice,
    OpenAccount,
    SetValveOff,
)
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Money, Price, Volume
from gasbill.domain.outbox import CommandStatus
from gasbill.service import ledger
from gasbill.service.commands.followups import send_again
from gasbill.service.commands.queue import CommandPolicy, queue_command, queue_top_up
from gasbill.service.commands.reports import ReportItem, poll_silent, receive_report
from gasbill.service.commands.results import apply_state, apply_stored_reports
from gasbill.service.ports import PlatformRetryable
from tests.fakes import (
    FakeAccount,
    FakeBinding,
    FakeCommand,
    FakeCommandReport,
    FakeMeter,
    FakePrepayState,
    FakeStore,
    FakeUnitOfWork,
)

AT = datetime(2025, 3, 1, 8, tzinfo=UTC)
LATER = AT + timedelta(hours=2)
CODEC = Codec(ZoneInfo("Asia/Shanghai"))
POLICY = CommandPolicy(max_attempts=3)
PREPAID, CREDIT = AccountCode.prepaid("7"), AccountCode.meter_credit("7")
CHARGE_OK, CHARGE_REFUSED = 0xAA, 0xBB
OPENING = OpenAccount.of(
    Money(Decimal("30.00")),
    Money(Decimal("30.00")),
    LadderPrice(
        tuple(Price(Decimal(p)) for p in ("3.00", "3.60", "4.50", "4.50", "4.50")),
        tuple(Volume(Decimal(v)) for v in ("300", "500", "99999", "99999")),
        date(2025, 1, 1),
        12,
    ),
)


@pytest.fixture
def store() -> FakeStore:
    return world_store()


def world_store() -> FakeStore:
    store = FakeStore(
        accounts={7: FakeAccount(7, billing_mode="meter")},
        meters={3: FakeMeter(3)},
        bindings=[FakeBinding(7, 3, AT - timedelta(days=30))],
    )
    store.ledger.set_overdraft_allowance(PREPAID, 0)
    ledger.record_payment(
        FakeUnitOfWork(store),
        account_id=7,
        amount_fen=10_000,
        channel="counter",
        idempotency_key="p1",
        actor="clerk1",
        at=AT,
    )
    return store


def sent_top_up(store: FakeStore, fen: int = 4_000) -> int:
    """A top-up queued (its hold taken) and sent as the meter's first remote top-up."""
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        command = queue_top_up(uow, account, fen, key="t1", actor="clerk1", now=AT, policy=POLICY)
        command.status, command.ctrl_id, command.sent_at = CommandStatus.SENT, 901, AT
        command.charge_times, command.total_fen, command.attempts = 1, fen, 1
        uow.commands.save(command)
        uow.commit()
    assert command.id is not None
    return command.id


def end(store: FakeStore, command_id: int, state: CtrlState, reply: object = None, **kw) -> None:
    uow = FakeUnitOfWork(store)
    with uow:
        command = uow.commands.get(command_id)
        assert command is not None
        apply_state(uow, CODEC, command, state, reply, "", policy=POLICY, now=LATER, **kw)
        uow.commit()


def command(store: FakeStore, command_id: int) -> FakeCommand:
    return store.commands[command_id]


def balances(store: FakeStore) -> tuple[int, int, int]:
    """(prepaid available, held from prepaid for the meter, meter credit posted)."""
    prepaid, credit = store.ledger.balance(PREPAID), store.ledger.balance(CREDIT)
    return prepaid.available, -prepaid.pending, credit.posted


# -- a top-up ---------------------------------------------------------------------------


def test_a_top_up_the_meter_applied_posts_its_hold_and_confirms_the_meters_counters(store):
    top_up = sent_top_up(store)
    assert balances(store)[:2] == (6_000, 4_000)

    end(store, top_up, CtrlState.SUCCESS, {"success": CHARGE_OK, "remain": "40.00"})

    assert (command(store, top_up).status, command(store, top_up).outcome) == ("done", "applied")
    assert balances(store) == (6_000, 0, 4_000)
    prepay = store.prepay[3]
    assert (prepay.confirmed_times, prepay.confirmed_total_fen, prepay.blocked_by) == (
        1,
        4_000,
        None,
    )
    assert store.exceptions == []


def test_a_top_up_the_meter_refused_voids_its_hold_and_opens_an_exception(store):
    top_up = sent_top_up(store)

    end(store, top_up, CtrlState.SUCCESS, {"success": CHARGE_REFUSED, "reason": 2})

    assert (command(store, top_up).status, command(store, top_up).outcome) == (
        "refused",
        "not_applied",
    )
    assert balances(store) == (10_000, 0, 0)  # the money is back in prepaid
    assert [e.kind for e in store.exceptions] == ["top_up_refused"]
    assert store.prepay[3].confirmed_times == 0


def test_a_top_up_ending_without_proof_blocks_the_meter_and_queues_the_read_that_settles_it(
    store,
):
    top_up = sent_top_up(store)

    end(store, top_up, CtrlState.TIMED_OUT)

    assert command(store, top_up).status == "unknown"
    assert balances(store)[1] == 4_000  # still held: neither posted nor voided
    assert store.prepay[3].blocked_by == top_up
    (read,) = [c for c in store.commands.values() if c.ctrl_type == CtrlType.GET_CHARGE_STATE]
    assert (read.settles_id, read.status, read.meter_id) == (top_up, "queued", 3)


def counters(times: int, total: str, card_times: int = 0, card_total: str = "0") -> dict:
    return {
        "card_charge_times": card_times,
        "card_charge_value": "0",
        "card_total_value": card_total,
        "remote_charge_times": times,
        "remote_charge_value": total,
        "remote_total_value": total,
    }


def unknown_then_read(store: FakeStore) -> tuple[int, int]:
    top_up = sent_top_up(store)
    end(store, top_up, CtrlState.TIMED_OUT)
    read = max(store.commands)
    command(store, read).status = CommandStatus.SENT
    return top_up, read


def test_the_meters_counter_moved_by_the_amount_settles_the_unknown_top_up_as_applied(store):
    top_up, read = unknown_then_read(store)

    end(store, read, CtrlState.SUCCESS, counters(1, "40.00"))

    assert (command(store, top_up).status, command(store, top_up).outcome) == (
        "settled",
        "applied",
    )
    assert balances(store) == (6_000, 0, 4_000)
    prepay = store.prepay[3]
    assert (prepay.confirmed_times, prepay.confirmed_total_fen, prepay.blocked_by) == (
        1,
        4_000,
        None,
    )


def test_the_meters_counter_unmoved_settles_it_as_not_applied_and_gives_the_money_back(store):
    top_up, read = unknown_then_read(store)

    end(store, read, CtrlState.SUCCESS, counters(0, "0"))

    assert command(store, top_up).outcome == "not_applied"
    assert balances(store) == (10_000, 0, 0)
    assert store.prepay[3].blocked_by is None
    assert [e.kind for e in store.exceptions] == ["top_up_not_applied"]


def test_counters_that_fit_neither_leave_the_meter_blocked_for_a_person(store):
    top_up, read = unknown_then_read(store)

    end(store, read, CtrlState.SUCCESS, counters(2, "90.00"))

    assert (command(store, top_up).status, command(store, top_up).outcome) == (
        "attention",
        "counter_mismatch",
    )
    assert balances(store)[1] == 4_000  # still held
    assert store.prepay[3].blocked_by == top_up  # no top-up goes until it is reconciled
    assert [e.kind for e in store.exceptions] == ["counter_mismatch"]


def test_an_ended_command_ignores_a_repeated_or_late_report(store):
    top_up = sent_top_up(store)
    end(store, top_up, CtrlState.SUCCESS, {"success": CHARGE_OK})
    before = (balances(store), command(store, top_up).outcome)

    end(store, top_up, CtrlState.SUCCESS, {"success": CHARGE_OK})  # the same report again
    end(store, top_up, CtrlState.FAILED)  # a late, contradicting one

    assert (balances(store), command(store, top_up).outcome) == before
    assert store.prepay[3].confirmed_times == 1


def test_a_non_final_state_only_moves_forward(store):
    top_up = sent_top_up(store)
    end(store, top_up, CtrlState.ACKNOWLEDGED)
    end(store, top_up, CtrlState.SENT)  # an older report, late

    assert command(store, top_up).platform_state == CtrlState.ACKNOWLEDGED
    assert command(store, top_up).status == "sent"


def test_a_report_that_came_before_the_ctrl_id_applies_once_the_ctrl_id_is_known(store):
    top_up = sent_top_up(store)
    store.command_reports.append(
        FakeCommandReport(
            id=1,
            company_no="1001",
            ctrl_id=901,
            ctrl_state=int(CtrlState.SUCCESS),
            payload='{"return_data": {"success": 170}}',
            received_at=AT,
        )
    )
    uow = FakeUnitOfWork(store)
    with uow:
        found = uow.commands.get(top_up)
        assert found is not None
        apply_stored_reports(uow, CODEC, found, policy=POLICY, now=LATER)
        uow.commit()

    assert command(store, top_up).outcome == "applied"
    assert store.command_reports[0].matched_at == LATER


# -- an opening and its baseline ----------------------------------------------------------


def sent_opening(store: FakeStore) -> int:
    uow = FakeUnitOfWork(store)
    with uow:
        opening = queue_command(
            uow,
            OPENING,
            meter=store.meters[3],
            now=AT,
            policy=POLICY,
            account_id=7,
        )
        opening.status, opening.ctrl_id = CommandStatus.SENT, 902
        uow.commands.save(opening)
        uow.commit()
    assert opening.id is not None
    return opening.id


def test_an_opening_applied_blocks_the_meter_until_the_baseline_read_is_in(store):
    opening = sent_opening(store)

    end(store, opening, CtrlState.SUCCESS, {"success": 0})

    assert command(store, opening).outcome == "applied"
    prepay = store.prepay[3]
    assert prepay.ladder == OPENING.ladder  # the meter holds the ladder the opening carried
    baseline = command(store, max(store.commands))
    assert (baseline.ctrl_type, baseline.settles_id) == (CtrlType.GET_CHARGE_STATE, None)
    assert prepay.blocked_by == baseline.id

    baseline.status = CommandStatus.SENT
    end(store, baseline.id, CtrlState.SUCCESS, counters(4, "120.00", card_times=2))

    prepay = store.prepay[3]
    assert (prepay.confirmed_times, prepay.confirmed_total_fen) == (4, 12_000)
    assert (prepay.card_times, prepay.blocked_by, prepay.baseline_at) == (2, None, LATER)


def test_a_card_top_up_seen_by_a_later_read_opens_an_exception(store):
    store.prepay[3] = FakePrepayState(3, card_times=1, card_total_fen=0)
    uow = FakeUnitOfWork(store)
    with uow:
        read = queue_command(
            uow,
            GetChargeState(),
            meter=store.meters[3],
            now=AT,
            policy=POLICY,
        )
        read.status = CommandStatus.SENT
        uow.commit()
    assert read.id is not None

    end(store, read.id, CtrlState.SUCCESS, counters(0, "0", card_times=2, card_total="50.00"))

    assert [e.kind for e in store.exceptions] == ["card_top_up"]
    assert store.prepay[3].card_times == 2


# -- any other command ----------------------------------------------------------------------


def queued_valve_close(store: FakeStore) -> int:
    uow = FakeUnitOfWork(store)
    with uow:
        close = queue_command(
            uow,
            SetValveOff(),
            meter=store.meters[3],
            now=AT,
            policy=POLICY,
            account_id=7,
        )
        close.status, close.ctrl_id, close.attempts = CommandStatus.SENT, 903, 1
        uow.commit()
    assert close.id is not None
    return close.id


def test_a_failed_command_goes_out_again_as_a_new_one_after_a_back_off(store):
    close = queued_valve_close(store)
    define_no = command(store, close).define_no

    end(store, close, CtrlState.FAILED)

    again = command(store, close)
    assert (again.status, again.ctrl_id, again.platform_state) == ("queued", None, None)
    assert again.define_no != define_no  # the ended record keeps the old one on the platform
    assert again.next_attempt_at > LATER
    assert "state 4" in again.last_error


def test_a_command_failing_its_last_attempt_goes_to_a_person(store):
    close = queued_valve_close(store)
    command(store, close).attempts = POLICY.max_attempts

    end(store, close, CtrlState.FAILED)

    assert command(store, close).status == "attention"
    assert [e.kind for e in store.exceptions] == ["command_attention"]


def test_send_again_keeps_nothing_if_the_unit_of_work_does_not_commit(store):
    close = queued_valve_close(store)
    uow = FakeUnitOfWork(store)
    with uow:
        found = uow.commands.get(close)
        assert found is not None
        send_again(uow, found, "why", POLICY, LATER)
    assert command(store, close).status == "sent"


# -- reports pushed to us, records we poll ---------------------------------------------------


def report(ctrl_id: int, state: CtrlState, comm_no: str = "12345678901", **returned):
    raw = {"ctrl_id": ctrl_id, "ctrl_state": int(state), "return_data": returned}
    return ReportItem(ctrl_id, comm_no, state, returned, "", raw)


def test_a_pushed_report_ends_its_command():
    top_up = sent_top_up(store := world_store())
    message = receive_report(
        FakeUnitOfWork(store),
        CODEC,
        "1001",
        report(901, CtrlState.SUCCESS, success=CHARGE_OK),
        policy=POLICY,
        now=LATER,
    )
    assert message == ""
    assert command(store, top_up).outcome == "applied"


def test_a_report_for_an_unknown_ctrl_id_is_kept_until_its_command_is_known():
    store = world_store()
    message = receive_report(
        FakeUnitOfWork(store), CODEC, "1001", report(555, CtrlState.SUCCESS), policy=POLICY, now=AT
    )
    assert message == "kept until the command is known"
    (kept,) = store.command_reports
    assert (kept.ctrl_id, kept.ctrl_state, kept.matched_at) == (555, 3, None)


def test_a_report_naming_another_meter_changes_nothing():
    top_up = sent_top_up(store := world_store())
    message = receive_report(
        FakeUnitOfWork(store),
        CODEC,
        "1001",
        report(901, CtrlState.SUCCESS, comm_no="99999999999", success=CHARGE_OK),
        policy=POLICY,
        now=LATER,
    )
    assert "belongs to meter 12345678901" in message
    assert command(store, top_up).status == "sent"


@dataclass
class Polled:
    ctrl_state: int
    return_data: object = None
    ctrl_feedback_msg: str | None = ""

    @property
    def state(self) -> CtrlState | None:
        return CtrlState(self.ctrl_state)


class Platform:
    """The platform port as poll_silent uses it: a record per ctrl_id, or an error."""

    def __init__(self, records: dict[int, Polled | None], failing: bool = False) -> None:
        self.records, self.failing, self.asked = records, failing, []

    def get_model(self, ctrl_id: int) -> Polled | None:
        self.asked.append(ctrl_id)
        if self.failing:
            raise PlatformRetryable("timed out")
        return self.records.get(ctrl_id)


def poll(store: FakeStore, platform: Platform, now: datetime) -> int:
    return poll_silent(
        lambda: FakeUnitOfWork(store),
        platform,
        CODEC,
        policy=POLICY,
        now=now,
    )


def test_a_command_silent_for_too_long_is_asked_after_and_its_record_applied():
    top_up = sent_top_up(store := world_store())
    platform = Platform({901: Polled(3, {"success": CHARGE_OK})})

    assert poll(store, platform, AT + POLICY.poll_after / 2) == 0  # not silent long enough
    assert poll(store, platform, AT + POLICY.poll_after * 2) == 1

    assert platform.asked == [901]
    assert command(store, top_up).outcome == "applied"


def test_a_still_waiting_command_is_asked_after_again_only_an_interval_later():
    top_up = sent_top_up(store := world_store())
    platform = Platform({901: Polled(1)})
    first = AT + POLICY.poll_after * 2

    poll(store, platform, first)
    assert command(store, top_up).sent_at == first  # heard of it now
    assert poll(store, platform, first + POLICY.poll_after / 2) == 0
    assert platform.asked == [901]


def test_a_platform_error_while_polling_leaves_the_command_for_the_next_round():
    top_up = sent_top_up(store := world_store())
    platform = Platform({}, failing=True)

    assert poll(store, platform, AT + POLICY.poll_after * 2) == 0
    assert command(store, top_up).status == "sent"


def test_a_ctrl_id_the_platform_no_longer_knows_is_noted():
    top_up = sent_top_up(store := world_store())
    poll(store, Platform({}), AT + POLICY.poll_after * 2)
    assert command(store, top_up).last_error == "the platform no longer knows this ctrl_id"
