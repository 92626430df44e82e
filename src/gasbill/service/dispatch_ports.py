"""The dispatcher's ports: what claiming the queue and recording a batch's replies read and
write, beyond the outbox's repository (`ports.CommandRepository`).

`adapters/db` implements them (`CommandStore`); the unit of work carries them as
`uow.commands`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from gasbill.service.ports import (
    CommandRecord,
    CommandRepository,
    PrepayStateRecord,
    UnitOfWork,
)


class DispatchRepository(CommandRepository, Protocol):
    """The outbox's rows as the dispatcher claims and sends them, a batch at a time."""

    def anything_to_send(self, now: datetime, stale_before: datetime) -> bool:
        """Whether a dispatcher has work: a command that may go now, or one handed over
        before `stale_before` whose reply never came."""

    def claim_due_meters(self, now: datetime, limit: int) -> list[int]:
        """Up to `limit` meters with a command that may go now, oldest first, each claimed
        for this transaction: other dispatchers skip them."""

    def open_of_meters(self, meter_ids: Sequence[int]) -> Mapping[int, Sequence[CommandRecord]]:
        """Each meter's queued and in-flight commands, locked in (meter, id) order."""

    def prepay_states(self, meter_ids: Sequence[int]) -> Mapping[int, PrepayStateRecord]:
        """Each meter's confirmed prepay state, locked; created at zero on first use."""

    def mark_sending(self, command_ids: Sequence[int], now: datetime) -> None:
        """Claimed commands (locked) marked `sending` at `now`, one more attempt each."""

    def save_all(self, commands: Sequence[CommandRecord]) -> None:
        """Several commands saved together."""

    def lock_sending(self, command_ids: Sequence[int]) -> dict[int, str]:
        """These commands locked in id order: of those still `sending`, the company."""

    def record_sent(self, ctrl_ids: Mapping[int, int], now: datetime) -> None:
        """Commands (locked, `sending`) handed over: their platform ctrl_id, sent `now`."""

    def unmatched_of(self, keys: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
        """Of these (company, ctrl_id), those with a report kept and not yet applied."""


class DispatchUnitOfWork(UnitOfWork, Protocol):
    """A unit of work whose command repository carries the dispatcher's part too."""

    @property
    def commands(self) -> DispatchRepository: ...
