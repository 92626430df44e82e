"""The dispatcher: claim due commands, send them in AddMulti batches, never twice.

1. Commands handed over earlier whose reply was lost (`sending`, no
   ctrl_id) are first looked up by `ctrl_define_no`; found, they are
   recorded as sent, not sent again.
2. Due commands are claimed meter by meter (an advisory lock per meter on
   PostgreSQL, so that any number of dispatchers share the queue, then the
   meter's open commands under a row lock), obeying the
   rules of `domain.outbox.dispatchable`; a top-up gets its `charge_times`
   and `total_value` from the meter's confirmed counters at this moment.
3. They are sent outside any transaction; the replies are recorded in a new
   one. A transport failure leaves them `sending` for step 1 next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from gasbill.crashpoints import crash_point
from gasbill.domain.commands import CtrlType, RemoteCharge
from gasbill.domain.money import Money
from gasbill.domain.outbox import CommandStatus, Waiting, dispatchable
from gasbill.service.commands.followups import retry_later
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.commands.results import apply_record, apply_stored_reports
from gasbill.service.dispatch_ports import ClaimedPrepay, DispatchUnitOfWork, OpenCommand
from gasbill.service.platform_health import describe_error, error_kind
from gasbill.service.ports import (
    CommandCodec,
    CommandPlatform,
    CommandRecord,
    OutgoingCommand,
    PlatformError,
    PlatformRefused,
)

log = logging.getLogger("gasbill.dispatch")

# AddMulti batches' worth of meters claimed per run: each claim reads the queue's head and
# the stale sends once (their index still holds an entry per command moved on since the
# last vacuum, ~45 ms a claim at 50,000 commands), so a claim serves 20 batches, not 4
CLAIMED_BATCHES = 20


@dataclass(slots=True)
class DispatchOutcome:
    found_again: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def dispatch(
    uow_factory: Callable[[], DispatchUnitOfWork],
    platform: CommandPlatform,
    codec: CommandCodec,
    *,
    policy: CommandPolicy,
    now: datetime,
) -> DispatchOutcome:
    outcome = DispatchOutcome()
    with uow_factory() as uow:  # most runs find nothing: one read, no claims, no commits
        if not uow.commands.anything_to_send(now, now - policy.lookup_after):
            return outcome
    recover_lost_adds(uow_factory, platform, codec, policy=policy, now=now, outcome=outcome)
    claimed = claim(uow_factory(), policy=policy, now=now)
    outcome.claimed = len(claimed)
    if claimed:
        crash_point("dispatch.after_claim")
    for start in range(0, len(claimed), policy.batch_size):
        batch = claimed[start : start + policy.batch_size]
        send(uow_factory(), platform, codec, batch, policy=policy, now=now, outcome=outcome)
    return outcome


def recover_lost_adds(
    uow_factory: Callable[[], DispatchUnitOfWork],
    platform: CommandPlatform,
    codec: CommandCodec,
    *,
    policy: CommandPolicy,
    now: datetime,
    outcome: DispatchOutcome,
) -> None:
    with uow_factory() as uow:  # claimed: another worker looks up others meanwhile
        stale = uow.commands.claim_stale(
            CommandStatus.SENDING, now - policy.lookup_after, policy.batch_size, now
        )
        uow.commit()
    for command in stale:
        try:
            records = platform.find_by_define_no(command.define_no)
        except PlatformError as exc:
            outcome.errors.append(f"lookup of {command.define_no}: {exc}")
            continue
        uow = uow_factory()
        with uow:
            store = uow.commands
            current = store.get(command.id or 0, lock=True)
            if current is None or current.status != CommandStatus.SENDING:
                continue
            if records:
                record = max(records, key=lambda r: r.ctrl_id)  # the latest add of it
                current.ctrl_id, current.status = record.ctrl_id, CommandStatus.SENT
                current.sent_at = current.sent_at or now
                store.save(current)
                apply_record(uow, codec, current, record, policy=policy, now=now)
                outcome.found_again += 1
            else:
                # the platform never got it: send it again, later
                retry_later(
                    uow, current, "the platform has no record of it", policy=policy, now=now
                )
            uow.commit()


def claim(
    uow: DispatchUnitOfWork, *, policy: CommandPolicy, now: datetime
) -> list[OutgoingCommand]:
    """Mark the commands that may go now as `sending`, and build what to send.

    The claimed meters' open commands and prepay states are read (and locked)
    in one query each, as plain rows; the top-ups chosen are read whole in one
    more, their counters filled in and saved in one flush, the rest marked
    sending in one statement: a batch costs a few round trips, not a few per
    meter.
    """
    to_send: list[OutgoingCommand | None] = []
    with uow:
        store = uow.commands
        # each meter claimed: any number of dispatchers share the queue, one per meter
        meters = store.claim_due_meters(now, policy.batch_size * CLAIMED_BATCHES)
        open_commands = store.open_of_meters(meters)
        states = store.prepay_states(meters)
        top_ups: dict[int, tuple[int, ClaimedPrepay]] = {}  # id: (place in to_send, state)
        plain: list[int] = []  # the rest: marked sending in one statement
        for meter_id in meters:
            commands, state = open_commands[meter_id], states[meter_id]
            waiting = [
                Waiting(c.id or 0, CtrlType(c.ctrl_type), CommandStatus(c.status), c.created_at)
                for c in commands
                if c.status != CommandStatus.QUEUED or c.next_attempt_at <= now
            ]
            chosen = {w.id for w in dispatchable(waiting, blocked=state.blocked_by is not None)}
            for command in commands:
                if command.id not in chosen:
                    continue
                if command.ctrl_type != CtrlType.REMOTE_CHARGE:
                    plain.append(command.id or 0)
                    to_send.append(_outgoing(command, now))
                    continue
                top_ups[command.id or 0] = (len(to_send), state)
                to_send.append(None)  # its place, filled in below
        claimed: list[CommandRecord] = []  # top-ups: their counters filled in, saved whole
        whole = store.get_many(list(top_ups)) if top_ups else {}
        for command_id, (place, state) in top_ups.items():
            command = whole[command_id]
            _fill_top_up(command, state.confirmed_times, state.confirmed_total_fen)
            command.status = CommandStatus.SENDING
            command.claimed_at = now
            command.attempts += 1
            claimed.append(command)
            to_send[place] = _outgoing(command, now)
        store.mark_sending(plain, now)
        store.save_all(claimed)
        uow.commit()
    return [item for item in to_send if item is not None]


def _fill_top_up(command: CommandRecord, times: int, total_fen: int) -> None:
    assert command.amount_fen is not None
    command.charge_times = times + 1
    command.total_fen = total_fen + command.amount_fen
    command.intent = RemoteCharge(
        Money.of_fen(command.amount_fen), Money.of_fen(command.total_fen), command.charge_times
    )


def _outgoing(command: OpenCommand, now: datetime) -> OutgoingCommand:
    assert command.id is not None and command.intent is not None
    return OutgoingCommand(
        command_id=command.id,
        define_no=command.define_no,
        meter_comm_no=command.meter_comm_no,
        intent=command.intent,
        at=now,
        timeout_at=command.timeout_at,
    )


# why an item the platform's AddMulti reply left out is still `sending`
UNANSWERED = (
    "the platform's reply did not account for it; looked up on the platform before resending"
)


def send(
    uow: DispatchUnitOfWork,
    platform: CommandPlatform,
    codec: CommandCodec,
    batch: list[OutgoingCommand],
    *,
    policy: CommandPolicy,
    now: datetime,
    outcome: DispatchOutcome,
) -> None:
    try:
        replies = platform.add_commands(batch)
    except PlatformRefused as exc:
        _not_sent(uow, batch, exc, policy=policy, now=now)
        outcome.failed += len(batch)
        outcome.errors.append(str(exc))
        return
    except PlatformError as exc:
        # the reply was lost or never came: maybe added, maybe not; step 1 finds out
        _note(uow, batch, f"{describe_error(exc)}; looked up on the platform before resending")
        outcome.errors.append(f"AddMulti: {exc}")
        return
    crash_point("send.after_add")  # added on the platform, not yet recorded here
    with uow:
        store = uow.commands
        # those accepted and still sending marked sent in one statement (locked in id order),
        # with whether a report came first; only the commands that have one (or were not
        # accepted) read as objects
        answers = {item.command_id: reply for item, reply in zip(batch, replies, strict=False)}
        accepted = {
            command_id: reply.ctrl_id
            for command_id, reply in answers.items()
            if reply.exists and reply.ctrl_id is not None
        }
        reported = store.record_sent(accepted, now)
        outcome.sent += len(reported)
        for item in batch:
            if item.command_id in accepted:
                continue
            command = store.get(item.command_id, lock=True)
            if command is None or command.status != CommandStatus.SENDING:
                continue
            reply = answers.get(item.command_id)
            if reply is not None and reply.matched:
                retry_later(uow, command, f"refused: {reply.message}", policy=policy, now=now)
                outcome.failed += 1
            else:
                # the reply does not account for it: left `sending`, looked up by define_no
                # once the lookup interval has passed; the clerk sees why meanwhile
                command.last_error = UNANSWERED
                store.save(command)
        for command_id, waiting in reported.items():
            if waiting:
                command = store.get(command_id)
                assert command is not None
                apply_stored_reports(uow, codec, command, policy=policy, now=now)
        uow.commit()
    crash_point("send.after_commit")


def _not_sent(
    uow: DispatchUnitOfWork,
    batch: list[OutgoingCommand],
    exc: PlatformRefused,
    *,
    policy: CommandPolicy,
    now: datetime,
) -> None:
    """Back to the queue with the reason. A refused login is ours to fix, not the
    command's: it costs no attempt, so it never gives up on the commands."""
    login = error_kind(exc) == "login_refused"
    why = describe_error(exc)
    with uow:
        store = uow.commands
        for item in batch:
            command = store.get(item.command_id, lock=True)
            if command is None or command.status != CommandStatus.SENDING:
                continue
            if login:
                command.attempts = max(0, command.attempts - 1)
            retry_later(uow, command, why, policy=policy, now=now)
        uow.commit()


def _note(uow: DispatchUnitOfWork, batch: list[OutgoingCommand], why: str) -> None:
    """Say on each command why it is not sent yet (it stays `sending`)."""
    with uow:
        store = uow.commands
        for item in batch:
            command = store.get(item.command_id, lock=True)
            if command is not None and command.status == CommandStatus.SENDING:
                command.last_error = why[:1000]
                store.save(command)
        uow.commit()
