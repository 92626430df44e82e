"""Reconciliation's ports: the reads a report makes, set-based, for a range of accounts.

`adapters/db` implements them (`ReconciliationStore`, `SystemStore`: one
query per kind of fact for the whole range); the unit of work carries them
as `uow.reconciliation` and `uow.reconciliation_system`, and hands out more
readers of the same instant on connections of their own (`snapshot_readers`).
Every read is as of an instant and writes nothing; the records are the plain
tuples of `reconciliation_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from gasbill.domain.commands import CtrlType
from gasbill.service.ports import UnitOfWork
from gasbill.service.reconciliation_rows import (
    AccountRow,
    HoldRow,
    LedgerSums,
    MeterGroup,
    ReadingRow,
    ReplacementRow,
    ReplyRow,
    Scope,
    ValveRow,
    Verdicts,
)


class ReconciliationRepository(Protocol):
    """Accounts and their meter-mode facts; the first pass, compared in the database."""

    def prepare(self) -> None:
        """Set the transaction up for a report's reads (once, before the first)."""

    def id_range(self, scope: Scope) -> tuple[int, int] | None:
        """The smallest and largest account id in scope with an active meter."""

    def accounts(self, scope: Scope) -> list[AccountRow]:
        """Accounts with their active meter, ledger accounts and recorded cut-off, by id."""

    def latest_readings(
        self, scope: Scope, as_of: datetime, *, comparable: bool = False
    ) -> dict[int, ReadingRow]:
        """Each meter-mode account's latest frozen reading with a balance (by `as_of`); with
        `comparable`, the latest with no hold in flight."""

    def replies(
        self, scope: Scope, ctrl_type: CtrlType, as_of: datetime, *, ledger: bool = False
    ) -> dict[int, ReplyRow]:
        """Each meter-mode account's latest answer of a type (`ledger`: with the ledger's
        holds and meter_credit then, asked only for the accounts that differ)."""

    def confirmations(self, scope: Scope) -> dict[int, dict[str, datetime]]:
        """Per account, each price change its meter confirmed, and when."""

    def holds(self, account_ids: Sequence[int], as_of: datetime) -> list[HoldRow]:
        """Holds into meter_credit up to `as_of`, with when each was resolved."""

    def coverage(
        self, account_ids: Sequence[int], as_of: datetime
    ) -> dict[int, tuple[int, datetime, datetime, int]]:
        """Per account's active meter: frozen readings by `as_of` (count, first, last) since
        it was bound, and those stored but not yet billed."""

    def verdicts(self, scope: Scope, as_of: datetime, balance_milli: int) -> Verdicts:
        """The range's first pass: what the database shows to agree, groups to finish."""

    def members(
        self, scope: Scope, as_of: datetime, balance_milli: int, groups: Sequence[MeterGroup]
    ) -> list[int]:
        """The ids of these groups' accounts."""


class SystemRepository(Protocol):
    """System-mode accounts' ledger and valves, and replaced meters."""

    def ledger_sums(self, scope: Scope, as_of: datetime) -> dict[int, LedgerSums]:
        """Per system-mode account, its prepaid account's posted transfers summed."""

    def valve_commands(self, scope: Scope, as_of: datetime) -> list[ValveRow]:
        """Valve commands to the system-mode accounts' active meters created by `as_of`."""

    def replacements(self, scope: Scope, as_of: datetime) -> list[ReplacementRow]:
        """Meters removed from the range's accounts by `as_of`, with the readings around."""


class ReconciliationReads(Protocol):
    """Reconciliation's two repositories on one connection."""

    @property
    def reconciliation(self) -> ReconciliationRepository: ...

    @property
    def reconciliation_system(self) -> SystemRepository: ...


class ReconciliationUnitOfWork(UnitOfWork, ReconciliationReads, Protocol):
    """A unit of work that carries reconciliation's repositories too."""

    def snapshot_readers(self, count: int) -> AbstractContextManager[Sequence[ReconciliationReads]]:
        """Up to `count` more readers for the block, each on a connection of its own that
        sees exactly what this unit of work sees (the same instant of the database), so
        that ranges of accounts can be read at once; none where the database cannot share
        its view (SQLite). After `reconciliation.prepare()`."""
