"""Billing's port: what billing a batch of accounts reads and writes, in batches.

`adapters/db` implements it (`BillingStore`, one query per kind of row for
the whole batch), `tests/fakes.py` in memory; the unit of work carries it as
`uow.billing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol

from gasbill.domain.meters import RegisterReading
from gasbill.service.ports import AccountRecord, BindingRecord, MeterRecord, UnitOfWork

# per meter (company_no, comm_no): its register readings, oldest first
Readings = dict[tuple[str, str], list[RegisterReading]]


class ChargeDayRecord(Protocol):
    """One account's local day in one cycle: what it has been charged, and rating's state
    after a reading that ended the day exactly (a checkpoint; the `state_*` are null
    otherwise)."""

    @property
    def account_id(self) -> int: ...
    @property
    def cycle_key(self) -> str: ...
    @property
    def day(self) -> date: ...
    @property
    def posted_fen(self) -> int: ...
    @property
    def state_at(self) -> datetime | None: ...
    @property
    def state_register(self) -> int | None: ...
    @property
    def state_cycle_start(self) -> datetime | None: ...
    @property
    def state_cycle_end(self) -> datetime | None: ...
    @property
    def state_version(self) -> int | None: ...
    @property
    def state_used(self) -> int | None: ...
    @property
    def state_cost(self) -> int | None: ...


Bindings = Mapping[int, Sequence[tuple[BindingRecord, MeterRecord]]]


class BillingRepository(Protocol):
    """Billing's reads and writes for a batch of accounts."""

    def accounts(
        self, account_ids: Sequence[int], *, lock: bool = False
    ) -> Sequence[AccountRecord]:
        """The accounts (by id); `lock`: for update, until the unit of work ends."""

    def bindings(self, account_ids: Sequence[int]) -> Bindings:
        """Per account, the meters it used with their bindings, first bound first."""

    def checkpoints(self, since: dict[int, datetime | None]) -> Mapping[int, ChargeDayRecord]:
        """Per account, the latest checkpoint strictly before its `since` (any, if None)."""

    def posted_days(self, after: dict[int, date | None]) -> dict[int, dict[tuple[str, date], int]]:
        """Per account, what each (cycle, day) after the given day has been charged."""

    def frozen_readings(
        self,
        meters: Iterable[tuple[str, str]],
        after: datetime,
        *,
        with_real_time: Iterable[tuple[str, str]] = (),
    ) -> Readings:
        """Frozen readings of the meters after `after`; real-time ones too for the meters in
        `with_real_time`."""

    def meter_openings(self, account_ids: Sequence[int]) -> dict[int, datetime | None]:
        """Accounts opened on their meter by `openaccount`: when it was confirmed (None: not
        yet). An account absent was opened without one and is billed from its binding."""

    def confirmations(self, account_ids: Sequence[int]) -> dict[int, dict[str, datetime]]:
        """Per account, each price change its meter confirmed (label), and when."""

    def save_days(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Insert or replace charge days (keyed by account, cycle and day)."""

    def note_billed(self, rows: Sequence[Mapping[str, object]]) -> None:
        """For accounts with a true-up mark, what billing rated (`account_id`, `first_day`,
        `last_at`, `since`, `changed`): the first day rated becomes the mark's
        `rebilled_from` where anything changed, if earlier (`BillingStore.note_billed`)."""


class BillingUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that carries billing's repository too."""

    @property
    def billing(self) -> BillingRepository: ...
