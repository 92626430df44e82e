"""The ports the service layer owns: its unit of work, repositories and records.

Use cases are written against these Protocols; `adapters/db` implements
them over SQLModel (`adapters.db.uow.UnitOfWork`), and `tests/fakes.py` in
memory, so a use case's logic is tested without a database. A use case that
still takes the concrete unit of work (and reaches into its session) is not
yet behind its ports: the import-linter ratchet in `.importlinter` lists it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

from gasbill.domain.audit import AuditRecord
from gasbill.domain.ledger import AccountCode, Balance, LedgerReport, Transfer, TransferKind
from gasbill.domain.money import Money, Price, Volume
from gasbill.domain.rating import Rater
from gasbill.domain.tariff import Tariff

# the outbox's and the platform's ports, kept in their own module and named here too
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


class CustomerRecord(Protocol):
    """A customer, who holds accounts."""

    id: int | None
    name: str
    phone: str
    address: str


@dataclass(frozen=True, slots=True)
class NewAccountRow:
    """An account to add, as it is stored (its meter and ledger accounts come separately)."""

    number: str
    customer_id: int
    company_no: str
    billing_mode: str  # meter | system
    tariff_id: str
    persons: int
    opened_on: date
    warning_fen: int
    cutoff_fen: int
    reopen_fen: int


@dataclass(frozen=True, slots=True)
class NewBinding:
    """An account starting to use a meter, at `bound_at` with the register `opening_litres`."""

    account_id: int
    meter_id: int
    bound_at: datetime
    opening_litres: int
    reason: str


class BindingRecord(Protocol):
    """An account's use of a meter (from `bound_at` until `unbound_at`)."""

    account_id: int
    meter_id: int
    bound_at: datetime
    unbound_at: datetime | None
    opening_litres: int  # the register when it was bound
    final_litres: int | None  # and when it was unbound
    reason: str  # why it was bound (an opening, a replacement)


class AccountRecord(Protocol):
    """A customer's gas account."""

    id: int | None
    number: str
    customer_id: int
    company_no: str
    billing_mode: str  # meter | system
    tariff_id: str
    persons: int
    opened_on: date
    status: str  # active | closed


class MeterRecord(Protocol):
    """A meter, known by the platform as (company_no, comm_no)."""

    id: int | None
    company_no: str
    comm_no: str


class DecidedAccount(AccountRecord, Protocol):
    """An account with its own thresholds, as the decisions read it."""

    warning_fen: int
    cutoff_fen: int
    reopen_fen: int


class DecisionFacts(Protocol):
    """One active account as its decision sees it, loaded and locked for the caller's
    transaction (`DecisionStateRepository.facts`)."""

    @property
    def account(self) -> DecidedAccount: ...
    @property
    def row(self) -> DecisionStateRecord: ...
    @property
    def meter(self) -> MeterRecord | None: ...
    @property
    def balances(self) -> Mapping[AccountCode, Balance]: ...
    @property
    def remain(self) -> tuple[Money, datetime] | None:
        """The meter's latest reported balance since it was bound to the account, and when."""

    @property
    def daily(self) -> list[Volume]:
        """Litres per frozen day, the last `window_days` billed, oldest first."""

    @property
    def price(self) -> Price:
        """The highest tier's price on the last day charged."""


class ReadingRecord(Protocol):
    """A reading as the platform pushed it; decimals kept as thousandths (decimal(18,3))."""

    meter_comm_no: str
    acquisition_time: datetime
    data_type: int  # 1: the daily frozen reading
    std_sum: int | None
    work_sum: int | None
    remain_money: int | None
    curr_price: int | None
    meter_state: int | None


class AccountRepository(Protocol):
    """Customers, accounts, meters and their bindings (the part use cases behind ports use)."""

    def get(self, account_id: int, *, lock: bool = False) -> DecidedAccount | None:
        """The account; `lock`: for update, until the unit of work ends."""

    def active_ids(self, *, after: int = 0, limit: int | None = None) -> list[int]:
        """The active accounts' ids in order; those above `after`, at most `limit` (a page)."""

    def by_number(self, number: str) -> AccountRecord | None: ...

    def add(self, new: NewAccountRow) -> DecidedAccount:
        """Add the account; its id is known on return."""

    def customer(self, customer_id: int) -> CustomerRecord | None: ...

    def add_customer(self, *, name: str, phone: str = "", address: str = "") -> CustomerRecord:
        """Add the customer; its id is known on return."""

    def meter(self, company_no: str, comm_no: str) -> MeterRecord | None: ...

    def add_meter(self, company_no: str, comm_no: str) -> MeterRecord:
        """Add the meter; its id is known on return."""

    def add_binding(self, new: NewBinding) -> BindingRecord: ...

    def account_of_meter(self, comm_no: str) -> AccountRecord | None:
        """The account the meter is bound to now, else the last one it was bound to."""

    def binding_of_meter(self, meter_id: int) -> BindingRecord | None:
        """The meter's active binding, if it is bound."""

    def active_binding(self, account_id: int) -> BindingRecord | None:
        """The account's active binding, if it has a meter."""

    def meter_by_id(self, meter_id: int) -> MeterRecord | None: ...

    def save(self, record: AccountRecord | BindingRecord) -> None:
        """Keep an account's or a binding's changes in this unit of work."""

    def readings_while_bound(
        self, account_id: int, *, frozen_only: bool, offset: int, limit: int
    ) -> Sequence[ReadingRecord]:
        """The account's readings, newest first: each meter's while it was bound to it."""

    def latest_remain_thousandths(self, company_no: str, comm_no: str) -> int | None:
        """The balance the meter last reported (remain_money, thousandths of a yuan)."""

    def latest_frozen_litres(self, company_no: str, comm_no: str) -> int | None:
        """The meter's register at its latest frozen (daily) reading, if it has one."""


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
