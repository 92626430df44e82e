"""The valve state follows our valve commands (service.decisions.on_valve_command_ended),
on a fake unit of work: what each ending means for where the valve is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from gasbill.domain.commands import CtrlType
from gasbill.domain.outbox import CommandStatus
from gasbill.service.decisions import on_valve_command_ended
from tests.fakes import FakeBinding, FakeDecisionState, FakeStore, FakeUnitOfWork

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
GRACE_STARTED = datetime(2025, 2, 27, tzinfo=UTC)
CLOSE, OPEN = str(CtrlType.SET_VALVE_OFF), str(CtrlType.SET_VALVE_ON)


@dataclass
class Command:
    """The fields of a command row the valve follows."""

    id: int
    ctrl_type: str
    status: CommandStatus
    account_id: int | None = 7
    meter_id: int = 70
    actor: str = "decisions"


def ended(command: Command, state: FakeDecisionState | None = None) -> FakeDecisionState:
    store = FakeStore(bindings=[FakeBinding(account_id=7, meter_id=70, bound_at=GRACE_STARTED)])
    if state is not None:
        store.decision_states[state.account_id] = state
    uow = FakeUnitOfWork(store)
    with uow:
        on_valve_command_ended(uow, command, NOW)
        uow.commit()
    return store.decision_states[7]


def pending(command_id: int, position: str) -> FakeDecisionState:
    return FakeDecisionState(
        account_id=7,
        valve_position=position,
        valve_command_id=command_id,
        below_cutoff_since=GRACE_STARTED,
    )


def test_our_close_done_closes_the_valve_as_ours():
    state = ended(Command(5, CLOSE, CommandStatus.DONE), pending(5, "close_pending"))
    assert (state.valve_position, state.closed_by, state.valve_command_id) == (
        "closed",
        "closed_by_us",
        None,
    )
    assert state.valve_changed_at == NOW


def test_our_open_done_opens_it():
    state = ended(Command(6, OPEN, CommandStatus.DONE), pending(6, "open_pending"))
    assert (state.valve_position, state.closed_by) == ("open", None)


@pytest.mark.parametrize("status", [CommandStatus.REFUSED, CommandStatus.CANCELLED])
def test_our_close_that_failed_leaves_it_open_and_restarts_the_grace_period(status):
    state = ended(Command(5, CLOSE, status), pending(5, "close_pending"))
    assert (state.valve_position, state.closed_by, state.valve_command_id) == ("open", None, None)
    assert state.below_cutoff_since == NOW
    assert state.valve_reason == f"setvalveoff #5 ended {status}"


def test_our_open_refused_leaves_it_closed_and_a_cancelled_one_to_a_person():
    refused = FakeDecisionState(7, valve_position="open_pending", closed_by="closed_by_us")
    refused.valve_command_id = 6
    assert ended(Command(6, OPEN, CommandStatus.REFUSED), refused).closed_by == "closed_by_us"
    cancelled = FakeDecisionState(7, valve_position="open_pending", valve_command_id=6)
    state = ended(Command(6, OPEN, CommandStatus.CANCELLED), cancelled)
    assert (state.valve_position, state.closed_by) == ("closed", "unknown")


@pytest.mark.parametrize(
    "status", [CommandStatus.QUEUED, CommandStatus.SENT, CommandStatus.ATTENTION]
)
def test_a_command_still_on_its_way_or_waiting_for_a_person_changes_nothing(status):
    state = ended(Command(5, CLOSE, status), pending(5, "close_pending"))
    assert (state.valve_position, state.valve_command_id) == ("close_pending", 5)


def test_someone_elses_close_that_succeeded_closes_it_for_a_reason_we_do_not_know():
    state = ended(Command(9, CLOSE, CommandStatus.DONE, actor="clerk1"))
    assert (state.valve_position, state.closed_by) == ("closed", "unknown")
    assert state.valve_reason == "close #9 by clerk1"


def test_someone_elses_command_is_ignored_while_ours_is_pending_or_when_it_failed():
    state = ended(Command(9, CLOSE, CommandStatus.DONE), pending(5, "open_pending"))
    assert (state.valve_position, state.valve_command_id) == ("open_pending", 5)
    assert ended(Command(9, CLOSE, CommandStatus.REFUSED)).valve_position == "open"


def test_a_command_with_no_account_is_followed_through_its_meters_binding():
    state = ended(
        Command(5, CLOSE, CommandStatus.DONE, account_id=None), pending(5, "close_pending")
    )
    assert state.valve_position == "closed"


def test_an_unbound_meters_command_and_other_commands_leave_no_state():
    store = FakeStore()
    uow = FakeUnitOfWork(store)
    with uow:
        on_valve_command_ended(uow, Command(5, CLOSE, CommandStatus.DONE, account_id=None), NOW)
        on_valve_command_ended(
            uow, Command(6, str(CtrlType.REMOTE_CHARGE), CommandStatus.DONE), NOW
        )
        uow.commit()
    assert store.decision_states == {}
