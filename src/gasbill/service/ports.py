"""The ports the service layer owns: its unit of work, repositories and records.

Use cases are written against these Protocols; `adapters/db` implements
them over SQLModel (`adapters.db.uow.UnitOfWork`), and `tests/fakes.py` in
memory, so a use case's logic is tested without a database. A use case that
still takes the concrete unit of work (and reaches into its session) is not
yet behind its ports: the import-linter ratchet in `.importlinter` lists it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from gasbill.domain.audit import AuditRecord
from gasbill.domain.ledger import AccountCode, Balance, LedgerReport, Transfer, TransferKind
from gasbill.domain.rating import Rater
from gasbill.domain.tariff import Tariff

# the outbox's and the platform's ports, kept in their own module and named here too
from gasbill.service.account_ports import AccountRecord as AccountRecord
from gasbill.service.account_ports import AccountRepository as AccountRepository
from gasbill.service.account_ports import BindingRecord as BindingRecord
from gasbill.service.account_ports import CustomerRecord as CustomerRecord
from gasbill.service.account_ports import DecidedAccount as DecidedAccount
from gasbill.service.account_ports import DecisionFacts as DecisionFacts
from gasbill.service.account_ports import MeterRecord as MeterRecord
from gasbill.service.account_ports import NewAccountRow as NewAccountRow
from gasbill.service.account_ports import NewBinding as NewBinding
from gasbill.service.account_ports import ReadingRecord as ReadingRecord
from gasbill.service.decision_ports import DecisionStateRecord as DecisionStateRecord
from gasbill.service.decision_ports import DecisionStateRepository as DecisionStateRepository
from gasbill.service.decision_ports import NewWarning as NewWarning
from gasbill.service.decision_ports import WarningNotice as WarningNotice
from gasbill.service.decision_ports import WarningRepository as WarningRepository
from gasbill.service.outbox_ports import AddReply as AddReply
from gasbill.service.outbox_ports import CommandCodec as CommandCodec
from gasbill.service.outbox_ports import CommandPlatform as CommandPlatform
from gasbill.service.outbox_ports import CommandRecord as CommandRecord
from gasbill.service.outbox_ports import CommandReportRecord as CommandReportRecord
from gasbill.service.outbox_ports import CommandRepository as CommandRepository
from gasbill.service.outbox_ports import NewCommand as NewCommand
from gasbill.service.outbox_ports import NewCommandReport as NewCommandReport
from gasbill.service.outbox_ports import OutgoingCommand as OutgoingCommand
from gasbill.service.outbox_ports import PlatformCommandRecord as PlatformCommandRecord
from gasbill.service.outbox_ports import PlatformCommandState as PlatformCommandState
from gasbill.service.outbox_ports import PlatformError as PlatformError
from gasbill.service.outbox_ports import PlatformRefused as PlatformRefused
from gasbill.service.outbox_ports import PlatformRetryable as PlatformRetryable
from gasbill.service.outbox_ports import PrepayStateRecord as PrepayStateRecord
from gasbill.service.staff_ports import ApiTokenRecord as ApiTokenRecord
from gasbill.service.staff_ports import StaffRepository as StaffRepository
from gasbill.service.staff_ports import StaffUserRecord as StaffUserRecord
from gasbill.service.store_ports import BindingHistoryRecord as BindingHistoryRecord
from gasbill.service.store_ports import ConflictRepository as ConflictRepository
from gasbill.service.store_ports import InboxRepository as InboxRepository
from gasbill.service.store_ports import InboxRowRecord as InboxRowRecord
from gasbill.service.store_ports import PollMarkRepository as PollMarkRepository
from gasbill.service.store_ports import PushConflictRecord as PushConflictRecord
from gasbill.service.store_ports import ReadingRepository as ReadingRepository
from gasbill.service.store_ports import ReadingTransaction as ReadingTransaction


@dataclass(frozen=True, slots=True)
class NewException:
    """Something a clerk must look at, opened now: an anomalous reading, an unknown meter,
    a command that ended oddly. Kept once per (kind, company, meter, reading time)."""

    kind: str
    company_no: str
    meter_comm_no: str
    reading_at: datetime | None
    detail: str
    at: datetime
    account_id: int | None = None


class ExceptionRecord(Protocol):
    """A stored exception, changed in place (its detail, its resolution)."""

    id: int | None
    kind: str
    status: str  # open | resolved
    account_id: int | None
    company_no: str
    meter_comm_no: str
    reading_at: datetime | None
    detail: str
    resolution: str
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime


class ExceptionLog(Protocol):
    def get(self, exception_id: int, *, lock: bool = False) -> ExceptionRecord | None: ...

    def find(
        self,
        *,
        status: str | None = None,
        account_id: int | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Sequence[ExceptionRecord]:
        """Oldest first, so the queue is worked in the order things went wrong."""

    def add(self, exception: NewException) -> None:
        """Open it; one already open for the same reading is an error."""

    def add_once(self, exceptions: Sequence[NewException]) -> None:
        """Open each, unless the same one (kind, company, meter, reading time) exists."""

    def open_for_meter(self, kind: str, company_no: str, comm_no: str) -> ExceptionRecord | None:
        """The open exception of `kind` for a meter, locked; None if there is none."""

    def save(self, record: ExceptionRecord) -> None: ...


class LedgerRepository(Protocol):
    """The double-entry ledger: transfers recorded once per idempotency key, balances kept."""

    def ensure_account(
        self, code: AccountCode, *, account_id: int | None = None, allowance: int | None = None
    ) -> object:
        """The ledger account for `code`, opened on first use (`allowance`: its overdraft
        allowance in fen, None: the default)."""

    def transfer(self, transfer_id: str) -> Transfer | None: ...

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None: ...

    def lock(self, codes: Iterable[AccountCode]) -> dict[AccountCode, Balance]:
        """These ledger accounts' balances, locked until the unit of work ends."""

    def balance(self, account: AccountCode) -> Balance: ...

    def record(self, transfer: Transfer, *, enforce_limits: bool = True) -> Transfer:
        """Record it (the domain's rules checked); raises IdempotencyConflict for a key
        already used by another request, OverdraftRefused beyond a limit."""

    def record_many(
        self, transfers: Iterable[Transfer], *, enforce_limits: bool = False
    ) -> list[Transfer]:
        """Record a batch of independent transfers, each as `record` would (billing)."""

    def balances_of(self, account_id: int) -> dict[AccountCode, Balance]: ...

    def net_posted(self, payer: AccountCode, payee: AccountCode, kind: TransferKind) -> int:
        """Posted transfers of `kind` payer → payee, less those payee → payer, in fen."""

    def transfers_of(self, account_id: int, offset: int = 0, limit: int = 100) -> list[Transfer]:
        """The account's ledger lines, newest first."""

    def verify(self) -> LedgerReport: ...


class AuditTrail(Protocol):
    def record(
        self,
        *,
        actor: str,
        action: str,
        entity: str,
        entity_id: object = "",
        before: object = None,
        after: object = None,
        at: datetime | None = None,
    ) -> object:
        """Append one entry in the unit of work's transaction."""

    @property
    def key(self) -> bytes:
        """The key the chain's hashes and the anchors are sealed with."""

    def entries(self, *, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every entry in order, read in batches."""

    def head(self) -> tuple[int, str, int] | None:
        """The newest entry's seq and hash, and how many entries there are; None when empty."""


class TariffBook(Protocol):
    """The tariffs in force, by id (the tariff files' catalog implements it)."""

    default_zone: str

    def get(self, tariff_id: str) -> Tariff:
        """The tariff; raises TariffNotFound (a TariffError) if there is none."""

    def rater(self, tariff_id: str) -> Rater:
        """The tariff's rater, shared (it caches the tariff's timeline)."""

    def all(self) -> list[Tariff]: ...


class CampaignRecord(Protocol):
    """A tariff campaign: one price change pushed to every meter on the tariff."""

    id: int | None
    tariff_id: str
    label: str
    effective_at: datetime
    status: str


class CampaignMeterRecord(Protocol):
    account_id: int
    last_error: str


class CampaignRepository(Protocol):
    """Campaigns and their meters (the reports' part)."""

    def get(self, campaign_id: int) -> CampaignRecord | None: ...

    def all(self, *, status: str | None = None) -> Sequence[CampaignRecord]:
        """Oldest change first."""

    def counts(self, campaign_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
        """Per campaign: its meters counted by state."""

    def failures(self, campaign_id: int, limit: int) -> Sequence[tuple[CampaignMeterRecord, str]]:
        """The failed meters (with their comm_no), at most `limit`."""

    def true_up_totals(
        self, campaign_ids: Sequence[int] | None = None
    ) -> dict[int, tuple[int, int, int]]:
        """Per campaign: (fen charged, fen refunded, accounts), each account's days netted."""


class CommitConflict(Exception):
    """The commit was refused: a row another transaction committed meanwhile holds a unique
    key this one wrote (two nodes creating the same campaign, say). Nothing was kept."""


class UnitOfWork(Protocol):
    """One transaction: nothing is kept unless `commit()` is called inside the block.

    `commit()` raises `CommitConflict` when a unique key was taken meanwhile.
    """

    committed: bool

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def flush(self) -> None:
        """Write what is pending now (ids, constraints), still inside the transaction."""

    def savepoint(self) -> AbstractContextManager[object]:
        """A nested transaction: leaving it by an exception undoes only what it wrote."""

    @property
    def commands(self) -> CommandRepository: ...

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def campaigns(self) -> CampaignRepository: ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def warnings(self) -> WarningRepository: ...

    @property
    def decision_states(self) -> DecisionStateRepository: ...

    @property
    def exceptions(self) -> ExceptionLog: ...

    @property
    def readings(self) -> ReadingRepository: ...

    @property
    def conflicts(self) -> ConflictRepository: ...

    @property
    def inbox(self) -> InboxRepository: ...

    @property
    def poll_marks(self) -> PollMarkRepository: ...

    @property
    def staff(self) -> StaffRepository: ...
