"""The dispatcher's ports: what claiming the queue and recording a batch's replies read and
write, beyond the outbox's repository (`ports.CommandRepository`).

`adapters/db` implements them (`CommandStore`); the unit of work carries them as
`uow.commands`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from gasbill.domain.commands import Command as Intent
from gasbill.service.ports import (
    CommandRecord,
    CommandRepository,
    UnitOfWork,
)


class OpenCommand(Protocol):
    """What a claim reads of a meter's queued or in-flight command (plain rows: a claim
    reads a thousand; a top-up it sends is read whole, `get_many`)."""

    @property
    def id(self) -> int | None: ...
    @property
    def define_no(self) -> str: ...
    @property
    def meter_comm_no(self) -> str: ...
    @property
    def ctrl_type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def intent(self) -> Intent | None: ...
    @property
    def next_attempt_at(self) -> datetime: ...
    @property
    def timeout_at(self) -> datetime: ...
    @property
    def created_at(self) -> datetime: ...


class ClaimedPrepay(Protocol):
    """What a claim reads of a meter's confirmed prepay state."""

    @property
    def confirmed_times(self) -> int: ...
    @property
    def confirmed_total_fen(self) -> int: ...
    @property
    def blocked_by(self) -> int | None: ...


class DispatchRepository(CommandRepository, Protocol):
    """The outbox's rows as the dispatcher claims and sends them, a batch at a time."""

    def anything_to_send(self, now: datetime, stale_before: datetime) -> bool:
        """Whether a dispatcher has work: a command that may go now, or one handed over
        before `stale_before` whose reply never came."""

    def claim_due_meters(self, now: datetime, limit: int) -> list[int]:
        """Up to `limit` meters with a command that may go now, oldest first, each claimed
        for this transaction: other dispatchers skip them."""

    def open_of_meters(self, meter_ids: Sequence[int]) -> Mapping[int, Sequence[OpenCommand]]:
        """Each meter's queued and in-flight commands, locked in (meter, id) order."""

    def get_many(self, command_ids: Sequence[int]) -> Mapping[int, CommandRecord]:
        """These commands whole, by id (claimed ones: already locked)."""

    def prepay_states(self, meter_ids: Sequence[int]) -> Mapping[int, ClaimedPrepay]:
        """Each meter's confirmed prepay state, locked; created at zero on first use."""

    def mark_sending(self, command_ids: Sequence[int], now: datetime) -> None:
        """Claimed commands (locked) marked `sending` at `now`, one more attempt each."""

    def save_all(self, commands: Sequence[CommandRecord]) -> None:
        """Several commands saved together."""

    def record_sent(self, ctrl_ids: Mapping[int, int], now: datetime) -> Mapping[int, bool]:
        """Of these commands, those still `sending` locked in id order and marked handed over:
        their platform ctrl_id, sent `now`; for each, whether a report for it came first
        (kept, not yet applied)."""


class DispatchUnitOfWork(UnitOfWork, Protocol):
    """A unit of work whose command repository carries the dispatcher's part too."""

    @property
    def commands(self) -> DispatchRepository: ...
