"""A clerk's cancel and retry of a command (service.commands.actions) on fakes, without a
database: what may be cancelled or retried in which state, the hold voided on a cancel,
a refused top-up queued again once from the money its void put back, and the reasons a
refusal gives. The platform is a stub that records what it was asked.

The same over the database and a scripted platform: tests/integration/test_outbox.py and
test_top_up_again.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountCode, HoldAction, TransferStatus
from gasbill.domain.outbox import CommandStatus
from gasbill.service import ledger
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.commands.actions import cancel_command, retry_command
from gasbill.service.commands.followups import resolve_hold_of
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from gasbill.service.ports import PlatformError
from tests.fakes import FakeAccount, FakeBinding, FakeMeter, FakeStore, FakeUnitOfWork

AT = datetime(2025, 4, 1, 10, tzinfo=UTC)
NOW = AT + timedelta(hours=2)
POLICY = CommandPolicy()
PREPAID, CREDIT = AccountCode.prepaid("7"), AccountCode.meter_credit("7")


class StubPlatform:
    """The platform's cancel and retry: answers, or refuses with `refusal`."""

    def __init__(self, refusal: PlatformError | None = None) -> None:
        self.refusal = refusal
        self.calls: list[tuple[str, int]] = []

    def _call(self, what: str, ctrl_id: int) -> int:
        self.calls.append((what, ctrl_id))
        if self.refusal is not None:
            raise self.refusal
        return ctrl_id

    def cancel(self, ctrl_id: int) -> int:
        return self._call("cancel", ctrl_id)

    def retry(self, ctrl_id: int) -> int:
        return self._call("retry", ctrl_id)

    def add_commands(self, commands):  # pragma: no cover - not the actions' business
        raise AssertionError("the actions never send")

    def find_by_define_no(self, ctrl_define_no):  # pragma: no cover
        raise AssertionError("the actions never look a command up")

    def get_model(self, ctrl_id):  # pragma: no cover
        raise AssertionError("the actions never look a command up")


def world(paid: int = 5_000, top_up: int = 1_200) -> FakeStore:
    """Account 7 (meter mode) paid `paid` fen, `top_up` of it queued for meter 3: command 1."""
    store = FakeStore(
        accounts={7: FakeAccount(7, billing_mode="meter")},
        meters={3: FakeMeter(3)},
        bindings=[FakeBinding(7, 3, AT - timedelta(days=60))],
    )
    store.ledger.set_overdraft_allowance(PREPAID, 0)
    ledger.record_payment(
        FakeUnitOfWork(store),
        account_id=7,
        amount_fen=paid,
        channel="counter",
        idempotency_key="p1",
        actor="clerk1",
        at=AT,
    )
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        queue_top_up(uow, account, top_up, key="t1", actor="clerk1", now=AT, policy=POLICY)
        uow.commit()
    return store


def set_command(store: FakeStore, command_id: int = 1, **fields: object) -> None:
    for name, value in fields.items():
        setattr(store.commands[command_id], name, value)


def refused(store: FakeStore, command_id: int = 1) -> None:
    """The meter refused the top-up (0xbb): its hold voided, the command ended refused."""
    uow = FakeUnitOfWork(store)
    with uow:
        command = uow.commands.get(command_id)
        assert command is not None
        resolve_hold_of(uow, command, HoldAction.VOID, AT)
        command.status, command.ctrl_id, command.finished_at = CommandStatus.REFUSED, 501, AT
        uow.commands.save(command)
        uow.commit()


def cancel(store: FakeStore, platform: StubPlatform | None = None, command_id: int = 1):
    uow = FakeUnitOfWork(store)
    return cancel_command(uow, platform or StubPlatform(), command_id, actor="clerk2", now=NOW)


def retry(store: FakeStore, platform: StubPlatform | None = None, command_id: int = 1):
    uow = FakeUnitOfWork(store)
    return retry_command(
        uow, platform or StubPlatform(), command_id, actor="clerk2", now=NOW, policy=POLICY
    )


def hold_status(store: FakeStore, command_id: int = 1) -> TransferStatus:
    """The hold's resolution (void_pending, post_pending), or pending while it has none."""
    hold_id = store.commands[command_id].hold_id
    assert hold_id is not None and store.ledger.transfer(hold_id) is not None
    ends = [t.status for t in store.ledger.transfers if t.pending_id == hold_id]
    assert len(ends) <= 1
    return ends[0] if ends else TransferStatus.PENDING


# -- cancel -------------------------------------------------------------------------------


def test_a_queued_top_up_is_cancelled_here_its_hold_voided_and_the_money_back_in_prepaid():
    store = world()
    assert store.ledger.balance(PREPAID).available == 3_800  # 5,000 paid, 1,200 held
    platform = StubPlatform()

    command = cancel(store, platform)

    assert platform.calls == []  # never sent: nothing to ask the platform
    kept = store.commands[1]
    assert (kept.status, kept.outcome, kept.finished_at) == ("cancelled", "cancelled", NOW)
    assert command.status == CommandStatus.CANCELLED
    assert hold_status(store) == TransferStatus.VOID_PENDING
    assert store.ledger.balance(PREPAID).available == 5_000
    assert store.ledger.balance(CREDIT).pending == 0
    (entry,) = [e for e in store.audit if e.action == "command.cancel"]
    assert (entry.actor, entry.entity, entry.entity_id) == ("clerk2", "command", 1)
    assert (entry.before, entry.after) == ({"status": "queued"}, {"status": "cancelled"})


def test_a_command_needing_attention_never_sent_is_cancelled_here_too():
    store = world()
    set_command(store, status=CommandStatus.ATTENTION, attempts=5)

    cancel(store)

    assert store.commands[1].status == "cancelled"
    assert hold_status(store) == TransferStatus.VOID_PENDING
    assert store.ledger.balance(PREPAID).available == 5_000


def test_a_sent_command_is_cancelled_on_the_platform_and_its_hold_voided():
    store = world()
    set_command(store, status=CommandStatus.SENT, ctrl_id=501, platform_state=0, sent_at=AT)
    platform = StubPlatform()

    cancel(store, platform)

    assert platform.calls == [("cancel", 501)]
    kept = store.commands[1]
    assert (kept.status, kept.outcome, kept.platform_state, kept.finished_at) == (
        "cancelled",
        "cancelled",
        5,  # the platform's CANCELLED
        NOW,
    )
    assert hold_status(store) == TransferStatus.VOID_PENDING
    assert store.ledger.balance(PREPAID).available == 5_000


def test_a_platform_that_will_not_cancel_leaves_the_command_and_its_hold_as_they_were():
    store = world()
    set_command(store, status=CommandStatus.SENT, ctrl_id=501, platform_state=1)
    refusal = PlatformError("already with the meter", status=409, path="/ctrl/cancel")

    with pytest.raises(Conflict) as raised:
        cancel(store, StubPlatform(refusal))

    assert str(raised.value) == (
        "the platform would not cancel it: already with the meter (/ctrl/cancel, HTTP 409)"
    )
    assert (store.commands[1].status, store.commands[1].platform_state) == ("sent", 1)
    assert hold_status(store) == TransferStatus.PENDING
    assert store.ledger.balance(PREPAID).available == 3_800
    assert [e for e in store.audit if e.action == "command.cancel"] == []


@pytest.mark.parametrize(
    ("status", "ctrl_id"),
    [
        (CommandStatus.SENDING, None),  # being handed over: its ctrl_id is not known yet
        (CommandStatus.SENT, None),
        (CommandStatus.ATTENTION, 501),  # on the platform and ended there
        (CommandStatus.DONE, 501),
        (CommandStatus.REFUSED, 501),
        (CommandStatus.UNKNOWN, 501),
        (CommandStatus.CANCELLED, None),
    ],
)
def test_what_cannot_be_cancelled_is_refused_by_its_status(status, ctrl_id):
    store = world()
    set_command(store, status=status, ctrl_id=ctrl_id)
    platform = StubPlatform()

    with pytest.raises(Conflict) as raised:
        cancel(store, platform)

    assert str(raised.value) == f"a command that is {status} cannot be cancelled"
    assert platform.calls == []
    assert store.commands[1].status == status
    assert hold_status(store) == TransferStatus.PENDING


def test_cancelling_an_unknown_command_is_not_found():
    with pytest.raises(NotFound, match=r"^no command 99$"):
        cancel(world(), command_id=99)


# -- retry --------------------------------------------------------------------------------


def test_a_command_needing_attention_on_the_platform_is_retried_there_and_sent_again():
    store = world()
    set_command(
        store,
        status=CommandStatus.ATTENTION,
        ctrl_id=501,
        platform_state=6,  # timed out
        attempts=4,
        sent_at=AT,
        finished_at=AT + timedelta(hours=1),
    )
    platform = StubPlatform()

    command = retry(store, platform)

    assert platform.calls == [("retry", 501)]
    kept = store.commands[1]
    assert (kept.status, kept.platform_state, kept.sent_at) == ("sent", 0, NOW)
    assert (kept.attempts, kept.finished_at) == (0, None)
    assert command.id == 1
    assert hold_status(store) == TransferStatus.PENDING  # the same top-up, still held
    (entry,) = [e for e in store.audit if e.action == "command.retry"]
    assert (entry.entity_id, entry.before, entry.after) == (
        1,
        {"status": "attention"},
        {"status": "sent"},
    )


def test_a_command_needing_attention_never_sent_is_queued_again_at_once():
    store = world()
    set_command(store, status=CommandStatus.ATTENTION, attempts=5, last_error="login refused")
    platform = StubPlatform()

    retry(store, platform)

    assert platform.calls == []
    kept = store.commands[1]
    assert (kept.status, kept.next_attempt_at, kept.attempts) == ("queued", NOW, 0)
    (entry,) = [e for e in store.audit if e.action == "command.retry"]
    assert entry.after == {"status": "queued"}


def test_a_platform_that_will_not_retry_leaves_the_command_needing_attention():
    store = world()
    set_command(store, status=CommandStatus.ATTENTION, ctrl_id=501, attempts=4)

    with pytest.raises(Conflict, match=r"^the platform would not retry it: gone$"):
        retry(store, StubPlatform(PlatformError("gone")))

    assert (store.commands[1].status, store.commands[1].attempts) == ("attention", 4)
    assert [e for e in store.audit if e.action == "command.retry"] == []


@pytest.mark.parametrize(
    "status",
    [
        CommandStatus.QUEUED,
        CommandStatus.SENT,
        CommandStatus.DONE,
        CommandStatus.UNKNOWN,
        CommandStatus.CANCELLED,
    ],
)
def test_only_a_command_needing_attention_is_retried(status):
    store = world()
    set_command(store, status=status, ctrl_id=501)
    platform = StubPlatform()

    with pytest.raises(Conflict) as raised:
        retry(store, platform)

    assert str(raised.value) == f"only a command needing attention is retried, not a {status} one"
    assert platform.calls == [] and store.commands[1].status == status


def test_a_refused_command_that_is_not_a_top_up_is_not_retried():
    store = world()
    set_command(store, status=CommandStatus.REFUSED, ctrl_type=CtrlType.SET_VALVE_OFF)

    with pytest.raises(Conflict, match=r"not a refused one$"):
        retry(store)


def test_a_refused_top_up_is_topped_up_again_as_a_new_command_from_the_money_back_in_prepaid():
    store = world()
    refused(store)
    assert store.ledger.balance(PREPAID).available == 5_000  # the refusal's void

    again = retry(store)

    assert again.id == 2
    new = store.commands[2]
    assert (new.ctrl_type, new.status, new.meter_id, new.account_id) == (
        CtrlType.REMOTE_CHARGE,
        "queued",
        3,
        7,
    )
    assert (new.amount_fen, new.actor) == (1_200, "clerk2")
    assert new.reason == "remote top-up, again after command 1 was refused"
    hold = store.ledger.transfer(new.hold_id or "")
    assert hold is not None
    assert (hold.status, hold.amount, hold.idempotency_key) == (
        TransferStatus.PENDING,
        1_200,
        "top-up-hold:retry-of-1",
    )
    assert store.ledger.balance(PREPAID).available == 3_800
    assert store.commands[1].status == "refused"  # the refused one stays as it ended
    (entry,) = [e for e in store.audit if e.action == "command.retry"]
    assert (entry.entity_id, entry.before, entry.after) == (
        1,
        {"status": "refused"},
        {"topped_up_again_as": 2, "amount_fen": 1_200},
    )


def test_a_refused_top_up_is_topped_up_again_once_a_second_retry_names_the_first():
    store = world()
    refused(store)
    retry(store)

    with pytest.raises(Conflict) as raised:
        retry(store)

    assert str(raised.value) == "command 1 was already topped up again as command 2"
    assert sorted(store.commands) == [1, 2]
    assert store.ledger.balance(PREPAID).available == 3_800


def test_a_refused_top_up_whose_money_was_used_since_is_not_topped_up_again():
    store = world(paid=1_500)
    refused(store)
    uow = FakeUnitOfWork(store)
    with uow:  # 1,000 of the 1,500 back in prepaid sent to the meter since
        account = uow.accounts.get(7)
        assert account is not None
        queue_top_up(uow, account, 1_000, key="t2", actor="clerk1", now=AT, policy=POLICY)
        uow.commit()

    with pytest.raises(Conflict) as raised:
        retry(store)

    assert str(raised.value) == (
        "only 500 fen of the 1200 are still in prepaid (refunded or used since): "
        "take a payment or top up less"
    )
    assert sorted(store.commands) == [1, 2]


def test_a_refused_top_up_of_a_closed_account_is_refunded_not_topped_up_again():
    store = world()
    refused(store)
    store.accounts[7].status = "closed"

    with pytest.raises(Conflict, match=r"^account 7 is not active: refund the money instead$"):
        retry(store)
    assert sorted(store.commands) == [1]


def test_a_refused_top_up_without_an_amount_has_nothing_to_top_up_again():
    store = world()
    refused(store)
    set_command(store, amount_fen=None)

    with pytest.raises(Conflict, match=r"^command 1 carries no account or amount to top up"):
        retry(store)


def test_retrying_an_unknown_command_is_not_found():
    with pytest.raises(NotFound, match=r"^no command 42$"):
        retry(world(), command_id=42)
