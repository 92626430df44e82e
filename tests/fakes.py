"""In-memory adapters for the service's ports (gasbill.service.ports).

A `FakeUnitOfWork` keeps its repositories' data in a shared `FakeStore`;
what a unit of work changes is kept only if it commits (the store is copied
on entry and put back on commit), as the database would. `committed` says
whether it did. Unit tests in tests/unit run use cases on these, with no
database; tests/integration checks the SQL adapters keep the same promises.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Self

from gasbill.domain.commands import Command as Intent
from gasbill.domain.commands import CtrlState, CtrlType, LadderPrice
from gasbill.domain.ledger import (
    AccountCode,
    Balance,
    Ledger,
    LedgerReport,
    Transfer,
    TransferKind,
    TransferStatus,
)
from gasbill.domain.meters import RegisterReading
from gasbill.domain.money import Money, Price, Volume
from gasbill.domain.outbox import IN_FLIGHT, OPEN, CommandStatus
from gasbill.domain.tariff import VolumeBasis
from gasbill.service.campaign_ports import NewCampaign
from gasbill.service.ports import (
    AccountRecord,
    ApiTokenRecord,
    BindingRecord,
    CommandRecord,
    CommandReportRecord,
    DecisionStateRecord,
    ExceptionRecord,
    NewAccountRow,
    NewBinding,
    NewCommand,
    NewCommandReport,
    NewException,
    NewWarning,
    OutgoingCommand,
    PlatformError,
    PlatformRefused,
    PlatformRetryable,
    PrepayStateRecord,
    StaffUserRecord,
    WarningNotice,
)
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


@dataclass
class FakeWarning:
    id: int
    account_id: int
    level: str
    reason: str
    balance_fen: int
    balance_source: str
    days_left: str | None
    message: str
    at: datetime
    next_attempt_at: datetime | None
    attempts: int = 0
    delivered_at: datetime | None = None
    given_up_at: datetime | None = None
    last_error: str = ""


@dataclass
class FakeDecisionState:
    """Satisfies `DecisionStateRecord`: all armed, valve open, as a new row would be."""

    account_id: int
    low_fired_by: str | None = None
    below_zero_fired: bool = False
    valve_position: str = "open"
    closed_by: str | None = None
    below_cutoff_since: datetime | None = None
    valve_command_id: int | None = None
    valve_reason: str = ""
    valve_changed_at: datetime | None = None
    display_fen: int | None = None
    balance_fen: int | None = None
    balance_source: str = ""
    decided_at: datetime | None = None
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class _Dumps:
    """What `service.accounts.snapshot` reads of a record (as SQLModel rows have it)."""

    def model_dump(self, mode: str = "json") -> dict[str, object]:
        assert dataclasses.is_dataclass(self)
        return {
            k: v.isoformat() if isinstance(v, date | datetime) else v
            for k, v in dataclasses.asdict(self).items()
        }


@dataclass
class FakeBinding(_Dumps):
    account_id: int
    meter_id: int
    bound_at: datetime
    unbound_at: datetime | None = None
    opening_litres: int = 0
    final_litres: int | None = None
    reason: str = ""


@dataclass
class FakeCustomer(_Dumps):
    id: int
    name: str
    phone: str = ""
    address: str = ""


@dataclass
class FakeMeter:
    id: int
    company_no: str = "1001"
    comm_no: str = "12345678901"


@dataclass
class FakeCommand:
    """A command in the fake outbox: the fields of `CommandRecord`."""

    id: int | None
    define_no: str
    company_no: str
    meter_id: int
    meter_comm_no: str
    ctrl_type: str
    intent: Intent | None
    status: str
    next_attempt_at: datetime
    timeout_at: datetime
    created_at: datetime
    account_id: int | None = None
    hold_id: str | None = None
    amount_fen: int | None = None
    settles_id: int | None = None
    campaign_id: int | None = None
    reason: str = ""
    actor: str = ""
    platform_state: int | None = None
    ctrl_id: int | None = None
    charge_times: int | None = None
    total_fen: int | None = None
    outcome: str = ""
    return_data: str | None = None
    feedback: str = ""
    attempts: int = 0
    last_error: str = ""
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class FakePrepayState:
    meter_id: int
    confirmed_times: int = 0
    confirmed_total_fen: int = 0
    card_times: int | None = None
    card_total_fen: int | None = None
    baseline_at: datetime | None = None
    blocked_by: int | None = None
    ladder: LadderPrice | None = None
    ladder_confirmed_at: datetime | None = None
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FakeCommandReport:
    id: int | None
    company_no: str
    ctrl_id: int
    ctrl_state: int
    payload: str
    received_at: datetime
    meter_comm_no: str = ""
    matched_at: datetime | None = None


@dataclass
class FakeAccount(_Dumps):
    id: int
    number: str = "A1"
    customer_id: int = 1
    company_no: str = "1001"
    billing_mode: str = "system"
    tariff_id: str = "beijing-residential"
    persons: int = 1
    opened_on: date = date(2025, 1, 1)
    status: str = "active"
    warning_fen: int = 2000  # the account's own thresholds, as the table's defaults
    cutoff_fen: int = 0
    reopen_fen: int = 0


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    entity: str
    entity_id: object
    before: object
    after: object
    at: datetime | None


@dataclass
class FakeCampaign:
    id: int
    tariff_id: str
    label: str
    effective_at: datetime
    status: str = "enrolling"
    created_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class FakeCampaignMeter:
    """One meter of a campaign (the columns of `campaign_meter`); its comm_no is its meter's
    in `FakeStore.meters`."""

    campaign_id: int
    meter_id: int
    account_id: int
    status: str = "queued"  # queued | sent | confirmed | verified | failed
    last_error: str = ""
    setprice_id: int | None = None
    getprice_id: int | None = None
    command_status: str = ""
    confirmed_at: datetime | None = None
    verified_at: datetime | None = None
    created_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    updated_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class FakeStore:
    """What the fake database holds; `people` maps an account to (number, name, phone)."""

    warnings: dict[int, FakeWarning] = field(default_factory=dict)
    decision_states: dict[int, FakeDecisionState] = field(default_factory=dict)
    people: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    customers: dict[int, FakeCustomer] = field(default_factory=dict)
    bindings: list[FakeBinding] = field(default_factory=list)
    accounts: dict[int, FakeAccount] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    audit: list[AuditEntry] = field(default_factory=list)
    campaigns: list[FakeCampaign] = field(default_factory=list)
    campaign_meters: list[FakeCampaignMeter] = field(default_factory=list)
    # per campaign: (fen charged, fen refunded, accounts) of its true-ups
    true_ups: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    exceptions: list[FakeException] = field(default_factory=list)
    meters: dict[int, FakeMeter] = field(default_factory=dict)
    commands: dict[int, FakeCommand] = field(default_factory=dict)
    prepay: dict[int, FakePrepayState] = field(default_factory=dict)
    command_reports: list[FakeCommandReport] = field(default_factory=list)
    # billing's: the charge days by (account, cycle, day); each meter's register readings;
    # accounts opened by `openaccount` (when confirmed, None: not yet); price changes each
    # account's meter confirmed (label -> when)
    charge_days: dict[tuple[int, str, date], FakeChargeDay] = field(default_factory=dict)
    readings: dict[tuple[str, str], list[RegisterReading]] = field(default_factory=dict)
    meter_openings: dict[int, datetime | None] = field(default_factory=dict)
    confirmations: dict[int, dict[str, datetime]] = field(default_factory=dict)
    # the true-up's marks by account (the columns of `true_up_mark`) that billing keeps;
    # what it posted per (account, cycle, day) (the columns of `true_up_day`); the meters
    # with a frozen reading waiting in billing's inbox
    true_up_marks: dict[int, dict[str, Any]] = field(default_factory=dict)
    true_up_days: dict[tuple[int, str, date], dict[str, Any]] = field(default_factory=dict)
    inbox: set[tuple[str, str]] = field(default_factory=set)
    # campaigns whose enrolment, tariffs whose full-ladder enrolment, another worker holds
    enrolment_claims_held: set[int] = field(default_factory=set)
    full_ladder_claims_held: set[str] = field(default_factory=set)
    # meters another dispatcher has claimed (in its transaction): this one skips them
    dispatch_claims_held: set[int] = field(default_factory=set)
    # each meter's reported balances (remain_money), by (company_no, comm_no): (when, money)
    remains: dict[tuple[str, str], list[tuple[datetime, Money]]] = field(default_factory=dict)
    # staff: users and tokens by id, login attempts, the login limits by (scope, key)
    staff_users: dict[int, FakeStaffUser] = field(default_factory=dict)
    api_tokens: dict[int, FakeApiToken] = field(default_factory=dict)
    login_attempts: list[FakeLoginAttempt] = field(default_factory=list)
    login_limits: dict[tuple[str, str], FakeLoginLimit] = field(default_factory=dict)


@dataclass
class FakeChargeDay:
    """A charge day as billing writes it (the columns of `charge_day`)."""

    account_id: int
    cycle_key: str
    day: date
    posted_fen: int = 0
    litres: int = 0
    cost_micro: int = 0
    lines: str = "[]"
    state_at: datetime | None = None
    state_register: int | None = None
    state_cycle_start: datetime | None = None
    state_cycle_end: datetime | None = None
    state_version: int | None = None
    state_used: int | None = None
    state_cost: int | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class FakeTrueUpMark:
    """A true-up mark as read back (the columns of `true_up_mark`)."""

    account_id: int
    start_at: datetime
    basis: str
    cycle_key: str
    day: date
    state_at: datetime
    state_register: int
    state_cycle_start: datetime
    state_cycle_end: datetime
    state_version: int
    state_used: int
    state_cost: int
    billed_through: datetime | None = None
    rebilled_from: date | None = None
    updated_at: datetime | None = None


@dataclass
class FakeException(_Dumps):
    id: int
    kind: str
    company_no: str
    meter_comm_no: str
    reading_at: datetime | None
    detail: str
    created_at: datetime
    account_id: int | None = None
    status: str = "open"
    resolution: str = ""
    resolved_by: str | None = None
    resolved_at: datetime | None = None


class FakeAccounts:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def get(self, account_id: int, *, lock: bool = False) -> FakeAccount | None:
        return self.store.accounts.get(account_id)

    def customer(self, customer_id: int) -> FakeCustomer | None:
        return self.store.customers.get(customer_id)

    def add_customer(self, *, name: str, phone: str = "", address: str = "") -> FakeCustomer:
        customer_id = max(self.store.customers, default=0) + 1
        customer = FakeCustomer(customer_id, name, phone, address)
        self.store.customers[customer_id] = customer
        return customer

    def add(self, new: NewAccountRow) -> FakeAccount:
        account_id = max(self.store.accounts, default=0) + 1
        account = FakeAccount(account_id, **dataclasses.asdict(new))
        self.store.accounts[account_id] = account
        return account

    def meter(self, company_no: str, comm_no: str) -> FakeMeter | None:
        found = (
            m
            for m in self.store.meters.values()
            if (m.company_no, m.comm_no) == (company_no, comm_no)
        )
        return next(found, None)

    def add_meter(self, company_no: str, comm_no: str) -> FakeMeter:
        meter_id = max(self.store.meters, default=0) + 1
        meter = FakeMeter(meter_id, company_no, comm_no)
        self.store.meters[meter_id] = meter
        return meter

    def add_binding(self, new: NewBinding) -> FakeBinding:
        binding = FakeBinding(**dataclasses.asdict(new))
        self.store.bindings.append(binding)
        return binding

    def by_number(self, number: str) -> FakeAccount | None:
        return next((a for a in self.store.accounts.values() if a.number == number), None)

    def account_of_meter(self, comm_no: str) -> FakeAccount | None:
        """The account the meter is bound to now, else the last one it was bound to."""
        meters = {m.id for m in self.store.meters.values() if m.comm_no == comm_no}
        bindings = [b for b in self.store.bindings if b.meter_id in meters]
        if not bindings:
            return None
        now = max(bindings, key=lambda b: (b.unbound_at is None, b.bound_at))
        return self.store.accounts.get(now.account_id)

    def active_ids(self, *, after: int = 0, limit: int | None = None) -> list[int]:
        ids = sorted(
            i for i, a in self.store.accounts.items() if a.status == "active" and i > after
        )
        return ids if limit is None else ids[:limit]

    def binding_of_meter(self, meter_id: int) -> FakeBinding | None:
        active = (b for b in self.store.bindings if b.meter_id == meter_id and b.unbound_at is None)
        return next(active, None)

    def active_binding(self, account_id: int) -> FakeBinding | None:
        active = (
            b for b in self.store.bindings if b.account_id == account_id and b.unbound_at is None
        )
        return next(active, None)

    def meter_by_id(self, meter_id: int) -> FakeMeter | None:
        return self.store.meters.get(meter_id)

    def save(self, record: AccountRecord | BindingRecord) -> None:
        if isinstance(record, FakeAccount):
            self.store.accounts[record.id] = record
        else:
            assert isinstance(record, FakeBinding) and record in self.store.bindings

    def readings_while_bound(
        self, account_id: int, *, frozen_only: bool, offset: int, limit: int
    ) -> list[object]:
        raise NotImplementedError("readings are the database's (tests/integration)")

    def latest_remain_thousandths(self, company_no: str, comm_no: str) -> int | None:
        """The meter's latest reported remain_money (`FakeStore.remains`), in thousandths of
        a yuan as the reading stores it; None if it never reported one."""
        reported = self.store.remains.get((company_no, comm_no), [])
        if not reported:
            return None
        _, money = max(reported, key=lambda r: r[0])
        return int(money.value.scaleb(3))

    def latest_frozen_litres(
        self,
        company_no: str,
        comm_no: str,
        *,
        since: datetime,
        until: datetime,
        basis: VolumeBasis,
    ) -> int | None:
        """The register on `basis` of the meter's latest frozen reading (`FakeStore.readings`,
        real-time ones left out) in (since, until] that has it."""
        found = [
            (r.at, register)
            for r in self.store.readings.get((company_no, comm_no), [])
            if not r.real_time
            and since < r.at <= until
            and (register := r.std if basis is VolumeBasis.STD_SUM else r.work) is not None
        ]
        return max(found)[1] if found else None


class FakeCommands:
    """The outbox port in memory: commands by id, prepay states by meter, early reports."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def add(self, new: NewCommand) -> FakeCommand:
        command_id = max(self.store.commands, default=0) + 1
        command = FakeCommand(id=command_id, **_fields(new))
        self.store.commands[command_id] = command
        return command

    def get(self, command_id: int, *, lock: bool = False) -> FakeCommand | None:
        return self.store.commands.get(command_id)

    def add_many(self, news: Sequence[NewCommand]) -> list[int]:
        return [self.add(new).id or 0 for new in news]

    def by_ctrl_id(self, company_no: str, ctrl_id: int, *, lock: bool = True) -> FakeCommand | None:
        found = (
            c
            for c in self.store.commands.values()
            if c.company_no == company_no and c.ctrl_id == ctrl_id
        )
        return next(found, None)

    def open_of_meter(self, meter_id: int) -> list[FakeCommand]:
        found = [c for c in self.store.commands.values() if c.meter_id == meter_id]
        return sorted((c for c in found if c.status in OPEN), key=lambda c: c.id or 0)

    def lock_if_free(self, command_id: int) -> FakeCommand | None:
        return self.store.commands.get(command_id)  # one transaction at a time here

    def waiting_unsent(self, meter_id: int, ctrl_type: str) -> FakeCommand | None:
        found = (
            c
            for c in sorted(self.store.commands.values(), key=lambda c: c.id or 0)
            if c.meter_id == meter_id
            and c.ctrl_type == ctrl_type
            and c.status == CommandStatus.QUEUED
            and c.ctrl_id is None
        )
        return next(found, None)

    def account_of_ctrl_id(self, company_no: str, ctrl_id: int) -> int | None:
        found = self.by_ctrl_id(company_no, ctrl_id)
        return found.account_id if found is not None else None

    def claim_stale(
        self, status: str, before: datetime, limit: int, now: datetime
    ) -> list[FakeCommand]:
        sending = status == "sending"
        stale = [
            c
            for c in self.store.commands.values()
            if c.status == status
            and (stamp := c.claimed_at if sending else c.sent_at) is not None
            and stamp < before
        ]
        stale.sort(key=lambda c: (c.claimed_at if sending else c.sent_at) or now)
        for c in stale[:limit]:
            if sending:
                c.claimed_at = now
            else:
                c.sent_at = now
        return stale[:limit]

    def by_hold(self, hold_id: str) -> FakeCommand | None:
        return next((c for c in self.store.commands.values() if c.hold_id == hold_id), None)

    def save(self, command: CommandRecord) -> None:
        assert isinstance(command, FakeCommand) and command.id is not None
        self.store.commands[command.id] = command

    def of_account(self, account_id: int, limit: int = 50) -> list[FakeCommand]:
        mine = [c for c in self.store.commands.values() if c.account_id == account_id]
        return sorted(mine, key=lambda c: c.id or 0, reverse=True)[:limit]

    def prepay_state(self, meter_id: int) -> FakePrepayState:
        return self.store.prepay.setdefault(meter_id, FakePrepayState(meter_id))

    def save_prepay(self, prepay: PrepayStateRecord) -> None:
        assert isinstance(prepay, FakePrepayState)
        self.store.prepay[prepay.meter_id] = prepay

    def unmatched_reports(self, company_no: str, ctrl_id: int) -> list[FakeCommandReport]:
        return [
            r
            for r in self.store.command_reports
            if r.company_no == company_no and r.ctrl_id == ctrl_id and r.matched_at is None
        ]

    def add_report(self, report: NewCommandReport) -> None:
        fields = {name: getattr(report, name) for name in NewCommandReport.__dataclass_fields__}
        self.store.command_reports.append(
            FakeCommandReport(id=len(self.store.command_reports) + 1, **fields)
        )

    def save_report(self, report: CommandReportRecord) -> None:
        assert isinstance(report, FakeCommandReport)

    # -- the dispatcher's part (`dispatch_ports.DispatchRepository`) ---------------------
    def _may_go(self, command: FakeCommand) -> bool:
        """What the SQL's `_may_go` filter says of a queued command: no prepay command, or
        none of its meter's prepay commands in flight and the meter not blocked (unless it
        is the charge-state read that unblocks it)."""
        ctrl_type = CtrlType(command.ctrl_type)
        if not ctrl_type.is_prepay:
            return True
        flying = any(
            c.meter_id == command.meter_id
            and c.status in IN_FLIGHT
            and CtrlType(c.ctrl_type).is_prepay
            for c in self.store.commands.values()
        )
        if flying:
            return False
        state = self.store.prepay.get(command.meter_id)
        blocked = state is not None and state.blocked_by is not None
        return ctrl_type is CtrlType.GET_CHARGE_STATE or not blocked

    def _due(self, now: datetime) -> list[FakeCommand]:
        return [
            c
            for c in self.store.commands.values()
            if c.status == CommandStatus.QUEUED and c.next_attempt_at <= now and self._may_go(c)
        ]

    def anything_to_send(self, now: datetime, stale_before: datetime) -> bool:
        stale = any(
            c.status == CommandStatus.SENDING
            and c.claimed_at is not None
            and c.claimed_at < stale_before
            for c in self.store.commands.values()
        )
        return stale or bool(self._due(now))

    def claim_due_meters(self, now: datetime, limit: int) -> list[int]:
        """Meters with a due command that may go, by their oldest such command, skipping
        those another dispatcher holds. (The SQL walks only the queue's first few rows per
        meter wanted, so a meter behind a long queue is claimed a run later: not modelled.)"""
        first: dict[int, datetime] = {}
        for c in self._due(now):
            if c.meter_id not in self.store.dispatch_claims_held:
                first[c.meter_id] = min(first.get(c.meter_id, c.next_attempt_at), c.next_attempt_at)
        return sorted(first, key=lambda m: (first[m], m))[:limit]

    def open_of_meters(self, meter_ids: Sequence[int]) -> dict[int, list[FakeCommand]]:
        return {m: self.open_of_meter(m) for m in meter_ids}

    def get_many(self, command_ids: Sequence[int]) -> dict[int, FakeCommand]:
        return {i: self.store.commands[i] for i in command_ids if i in self.store.commands}

    def prepay_states(self, meter_ids: Sequence[int]) -> dict[int, FakePrepayState]:
        return {m: self.prepay_state(m) for m in meter_ids}

    def mark_sending(self, command_ids: Sequence[int], now: datetime) -> None:
        for command_id in command_ids:
            command = self.store.commands[command_id]
            command.status, command.claimed_at = CommandStatus.SENDING, now
            command.attempts += 1

    def save_all(self, commands: Sequence[CommandRecord]) -> None:
        for command in commands:
            self.save(command)

    def record_sent(self, ctrl_ids: Mapping[int, int], now: datetime) -> dict[int, bool]:
        marked = {}
        for command_id in sorted(ctrl_ids):
            command = self.store.commands.get(command_id)
            if command is None or command.status != CommandStatus.SENDING:
                continue
            command.ctrl_id, command.status = ctrl_ids[command_id], CommandStatus.SENT
            command.sent_at = now
            marked[command_id] = any(
                r.matched_at is None
                and (r.company_no, r.ctrl_id) == (command.company_no, command.ctrl_id)
                for r in self.store.command_reports
            )
        return marked


def _fields(new: NewCommand) -> dict[str, object]:
    return {name: getattr(new, name) for name in NewCommand.__dataclass_fields__}


class FakeLedger:
    """The ledger port over the domain's in-memory ledger (its rules, its balances)."""

    def __init__(self, store: FakeStore) -> None:
        self.memory = store.ledger

    def ensure_account(
        self, code: AccountCode, *, account_id: int | None = None, allowance: int | None = None
    ) -> AccountCode:
        """The in-memory ledger opens accounts on first use; only an allowance is kept."""
        if allowance is not None:
            self.memory.set_overdraft_allowance(code, allowance)
        return code

    def transfer(self, transfer_id: str) -> Transfer | None:
        return self.memory.transfer(transfer_id)

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None:
        return self.memory.transfer_by_key(idempotency_key)

    def lock(self, codes: Iterable[AccountCode]) -> dict[AccountCode, Balance]:
        return {code: self.memory.balance(code) for code in codes}

    def balance(self, account: AccountCode) -> Balance:
        return self.memory.balance(account)

    def record(self, transfer: Transfer, *, enforce_limits: bool = True) -> Transfer:
        return self.memory.apply(transfer, enforce_limits=enforce_limits)

    def record_many(
        self, transfers: Iterable[Transfer], *, enforce_limits: bool = False
    ) -> list[Transfer]:
        return [self.memory.apply(t, enforce_limits=enforce_limits) for t in transfers]

    def net_posted(self, payer: AccountCode, payee: AccountCode, kind: TransferKind) -> int:
        total = 0
        for t in self.memory.transfers:
            if t.kind is kind and t.status is TransferStatus.POSTED:
                if (t.debit_account, t.credit_account) == (payer, payee):
                    total += t.amount
                elif (t.debit_account, t.credit_account) == (payee, payer):
                    total -= t.amount
        return total

    def balances_of(self, account_id: int) -> dict[AccountCode, Balance]:
        mine = str(account_id)
        return {c: b for c, b in self.memory.balances().items() if c.account_id == mine}

    def transfers_of(self, account_id: int, offset: int = 0, limit: int = 100) -> list[Transfer]:
        mine = str(account_id)
        touching = [
            t
            for t in reversed(self.memory.transfers)
            if mine in (t.debit_account.account_id, t.credit_account.account_id)
        ]
        return touching[offset : offset + limit]

    def verify(self) -> LedgerReport:
        self.memory.verify()  # raises if a balance disagrees with the transfers
        balances = self.memory.balances().values()
        return LedgerReport(
            transfers=len(self.memory.transfers),
            accounts=len(balances),
            posted_total=sum(b.posted for b in balances),
            pending_total=sum(b.pending for b in balances),
        )


class FakeCampaigns:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    # -- campaigns -----------------------------------------------------------------------
    def claim_enrolment(self, campaign_id: int) -> bool:
        return campaign_id not in self.store.enrolment_claims_held

    def claim_full_ladder(self, tariff_id: str) -> bool:
        return tariff_id not in self.store.full_ladder_claims_held

    def get(self, campaign_id: int) -> FakeCampaign | None:
        return next((c for c in self.store.campaigns if c.id == campaign_id), None)

    def by_label(self, tariff_id: str, label: str) -> FakeCampaign | None:
        found = (c for c in self.store.campaigns if (c.tariff_id, c.label) == (tariff_id, label))
        return next(found, None)

    def newest(self, tariff_id: str) -> FakeCampaign | None:
        found = [c for c in self.store.campaigns if c.tariff_id == tariff_id]
        return max(found, key=lambda c: c.effective_at, default=None)

    def add(self, new: NewCampaign) -> FakeCampaign:
        if self.by_label(new.tariff_id, new.label) is not None:
            raise ValueError(f"campaign ({new.tariff_id}, {new.label}) exists: unique key")
        campaign_id = max((c.id for c in self.store.campaigns), default=0) + 1
        campaign = FakeCampaign(
            campaign_id,
            new.tariff_id,
            new.label,
            new.effective_at,
            status=new.status,
            created_at=new.created_at,
        )
        self.store.campaigns.append(campaign)
        return campaign

    def save(self, row: object) -> None:
        """Rows are changed in place: one saved must be one this unit of work read."""
        rows = [*self.store.campaigns, *self.store.campaign_meters]
        assert any(r is row for r in rows)

    def save_all(self, rows: Sequence[object]) -> None:
        for row in rows:
            self.save(row)

    def all(self, *, status: str | None = None) -> list[FakeCampaign]:
        found = [c for c in self.store.campaigns if status is None or c.status == status]
        return sorted(found, key=lambda c: (c.effective_at, c.id))

    # -- meter-mode accounts (enrolment, full ladders) -------------------------------------
    def meter_tariffs(self) -> dict[str, date]:
        found: dict[str, date] = {}
        for a in self.store.accounts.values():
            if (a.billing_mode, a.status) == ("meter", "active"):
                found[a.tariff_id] = min(found.get(a.tariff_id, a.opened_on), a.opened_on)
        return found

    def meter_accounts(
        self, tariff_id: str, after_id: int, limit: int
    ) -> list[tuple[FakeAccount, FakeMeter]]:
        found = []
        for account_id, account in sorted(self.store.accounts.items()):
            binding = FakeAccounts(self.store).active_binding(account_id)
            if (
                account_id > after_id
                and binding is not None
                and (account.tariff_id, account.billing_mode, account.status)
                == (tariff_id, "meter", "active")
            ):
                found.append((account, self.store.meters[binding.meter_id]))
        return found[:limit]

    # -- campaign meters -----------------------------------------------------------------
    def enrolled(self, campaign_id: int, meter_ids: Sequence[int]) -> set[int]:
        return {
            m.meter_id
            for m in self.store.campaign_meters
            if m.campaign_id == campaign_id and m.meter_id in meter_ids
        }

    def add_meters(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            assert not self.enrolled(row["campaign_id"], [row["meter_id"]]), "primary key"
            self.store.campaign_meters.append(FakeCampaignMeter(**row))

    def pushes(self, account_ids: Sequence[int]) -> dict[int, list[tuple[str, str, datetime]]]:
        found: dict[int, list[tuple[str, str, datetime]]] = defaultdict(list)
        for m in self.store.campaign_meters:
            campaign, account = self.get(m.campaign_id), self.store.accounts[m.account_id]
            command = self.store.commands.get(m.setprice_id or 0)
            same_tariff = campaign is not None and campaign.tariff_id == account.tariff_id
            if m.account_id in account_ids and campaign and command and same_tariff:
                found[account.id].append((campaign.label, command.status, command.finished_at))
        return found

    def needing_work(
        self, limit: int, *, after: tuple[int, int] | None = None
    ) -> list[FakeCampaignMeter]:
        """Unverified rows whose current command's status is not the one last seen, after
        `after` (campaign, meter)."""
        found = []
        for m in sorted(self.store.campaign_meters, key=lambda m: (m.campaign_id, m.meter_id)):
            if after is not None and (m.campaign_id, m.meter_id) <= after:
                continue
            command = self.store.commands.get(m.getprice_id or m.setprice_id or 0)
            if m.status != "verified" and command and command.status != m.command_status:
                found.append(m)
        return found[:limit]

    def commands(self, ids: Sequence[int]) -> dict[int, FakeCommand]:
        return {i: self.store.commands[i] for i in ids if i in self.store.commands}

    def counts(self, campaign_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = defaultdict(dict)
        for m in self.store.campaign_meters:
            if campaign_ids is None or m.campaign_id in campaign_ids:
                by_state = out[m.campaign_id]
                by_state[m.status] = by_state.get(m.status, 0) + 1
        return out

    def failures(self, campaign_id: int, limit: int) -> list[tuple[FakeCampaignMeter, str]]:
        failed = sorted(
            (
                m
                for m in self.store.campaign_meters
                if m.campaign_id == campaign_id and m.status == "failed"
            ),
            key=lambda m: m.meter_id,
        )
        return [(m, self.store.meters[m.meter_id].comm_no) for m in failed[:limit]]

    def true_up_totals(
        self, campaign_ids: Sequence[int] | None = None
    ) -> dict[int, tuple[int, int, int]]:
        return {
            i: t
            for i, t in self.store.true_ups.items()
            if campaign_ids is None or i in campaign_ids
        }


class FakeAudit:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

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
    ) -> AuditEntry:
        entry = AuditEntry(actor, action, entity, entity_id, before, after, at)
        self.store.audit.append(entry)
        return entry


class FakeExceptions:
    """The exception log; like the table, one per (kind, company, meter, reading time)."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def find(
        self,
        *,
        status: str | None = None,
        account_id: int | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[FakeException]:
        found = [
            e
            for e in sorted(self.store.exceptions, key=lambda e: e.id)
            if (status is None or e.status == status)
            and (account_id is None or e.account_id == account_id)
        ]
        return found[offset : offset + limit]

    def get(self, exception_id: int, *, lock: bool = False) -> FakeException | None:
        return next((e for e in self.store.exceptions if e.id == exception_id), None)

    def _key(self, e: NewException | FakeException) -> tuple[object, ...]:
        return (e.kind, e.company_no, e.meter_comm_no, e.reading_at)

    def add(self, exception: NewException) -> None:
        if any(self._key(e) == self._key(exception) for e in self.store.exceptions):
            raise ValueError(f"taken: {self._key(exception)}")  # the unique key
        self.store.exceptions.append(
            FakeException(
                id=len(self.store.exceptions) + 1,
                kind=exception.kind,
                company_no=exception.company_no,
                meter_comm_no=exception.meter_comm_no,
                reading_at=exception.reading_at,
                detail=exception.detail[:1000],
                created_at=exception.at,
                account_id=exception.account_id,
            )
        )

    def add_once(self, exceptions: Sequence[NewException]) -> None:
        for e in exceptions:
            if all(self._key(e) != self._key(kept) for kept in self.store.exceptions):
                self.add(e)

    def open_for_meter(self, kind: str, company_no: str, comm_no: str) -> FakeException | None:
        found = (
            e
            for e in self.store.exceptions
            if (e.kind, e.status, e.company_no, e.meter_comm_no)
            == (kind, "open", company_no, comm_no)
        )
        return next(found, None)

    def save(self, record: ExceptionRecord) -> None:
        assert isinstance(record, FakeException)  # changed in place: nothing more to do


class FakeWarnings:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def add(self, warning: NewWarning) -> None:
        new_id = max(self.store.warnings, default=0) + 1
        self.store.warnings[new_id] = FakeWarning(
            id=new_id,
            account_id=warning.account_id,
            level=warning.level,
            reason=warning.reason,
            balance_fen=warning.balance_fen,
            balance_source=warning.balance_source,
            days_left=warning.days_left,
            message=warning.message[:500],
            at=warning.at,
            next_attempt_at=warning.at,
        )

    def claim_due(self, *, now: datetime, batch: int, lease_until: datetime) -> list[WarningNotice]:
        due = sorted(
            (
                w
                for w in self.store.warnings.values()
                if w.delivered_at is None and w.next_attempt_at is not None
                if w.next_attempt_at <= now
            ),
            key=lambda w: (w.next_attempt_at, w.id),
        )[:batch]
        notices = []
        for w in due:
            w.attempts += 1
            w.next_attempt_at = lease_until
            number, name, phone = self.store.people.get(w.account_id, ("", "", ""))
            notices.append(
                WarningNotice(
                    id=w.id,
                    account_id=w.account_id,
                    account_number=number,
                    customer_name=name,
                    customer_phone=phone,
                    level=w.level,
                    reason=w.reason,
                    balance_fen=w.balance_fen,
                    balance_source=w.balance_source,
                    days_left=w.days_left,
                    message=w.message,
                    at=w.at,
                    attempt=w.attempts,
                )
            )
        return notices

    def stamp_delivered(self, warning_id: int, *, at: datetime) -> bool:
        w = self.store.warnings[warning_id]
        if w.delivered_at is not None:
            return False
        w.delivered_at, w.next_attempt_at, w.given_up_at = at, None, None
        return True

    def stamp_failed(
        self, warning_id: int, *, attempt: int, error: str, at: datetime, retry_at: datetime | None
    ) -> bool:
        w = self.store.warnings[warning_id]
        if w.delivered_at is not None or w.attempts != attempt:
            return False
        w.last_error, w.next_attempt_at = error[:1000], retry_at
        if retry_at is None:
            w.given_up_at = at
        return True


@dataclass
class FakeDecisionFacts:
    """What the decisions read of one account (`DecisionFacts`), from the fake store."""

    account: FakeAccount
    row: FakeDecisionState
    meter: FakeMeter | None
    balances: dict[AccountCode, Balance]
    remain: tuple[Money, datetime] | None
    daily: list[Volume]
    price: Price


class FakeDecisionStates:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def locked(self, account_id: int) -> FakeDecisionState:
        return self.store.decision_states.setdefault(account_id, FakeDecisionState(account_id))

    def facts(
        self, account_ids: Sequence[int], *, window_days: int
    ) -> dict[int, FakeDecisionFacts]:
        found = {}
        for i in sorted(set(account_ids)):
            account = self.store.accounts.get(i)
            if account is None or account.status != "active":
                continue
            binding = FakeAccounts(self.store).active_binding(i)
            meter = self.store.meters.get(binding.meter_id) if binding is not None else None
            remain = None
            if meter is not None and binding is not None and account.billing_mode == "meter":
                remain = self.latest_remain(meter.company_no, meter.comm_no, since=binding.bound_at)
            daily, price = self.recent_use(i, window_days=window_days)
            balances = FakeLedger(self.store).balances_of(i)
            found[i] = FakeDecisionFacts(
                account, self.locked(i), meter, balances, remain, daily, price
            )
        return found

    def recent_use(self, account_id: int, *, window_days: int) -> tuple[list[Volume], Price]:
        days = [d for d in self.store.charge_days.values() if d.account_id == account_id]
        litres: dict[date, int] = defaultdict(int)
        for d in days:
            litres[d.day] += d.litres
        daily = [Volume.of_litres(litres[day]) for day in sorted(litres)[-window_days:]]
        charged = [d for d in days if d.lines != "[]"]
        if not charged:
            return daily, Price(0)
        last = max(charged, key=lambda d: (d.day, d.cycle_key))
        top = max(json.loads(last.lines), key=lambda line: (int(line[1]), int(line[2])))
        return daily, Price.of_milli(int(top[2]))

    def latest_remain(
        self, company_no: str, comm_no: str, *, since: datetime
    ) -> tuple[Money, datetime] | None:
        reported = [
            (at, money)
            for at, money in self.store.remains.get((company_no, comm_no), [])
            if at >= since
        ]
        if not reported:
            return None
        at, money = max(reported, key=lambda r: r[0])
        return money, at

    def save(self, state: DecisionStateRecord) -> None:
        assert isinstance(state, FakeDecisionState)
        self.store.decision_states[state.account_id] = replace(state)


class FakeBilling:
    """Billing's repository over the store, as `BillingStore` answers over the tables."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def accounts(self, account_ids: Sequence[int], *, lock: bool = False) -> list[FakeAccount]:
        return [self.store.accounts[i] for i in sorted(account_ids) if i in self.store.accounts]

    def bindings(
        self, account_ids: Sequence[int]
    ) -> dict[int, list[tuple[FakeBinding, FakeMeter]]]:
        found: dict[int, list[tuple[FakeBinding, FakeMeter]]] = defaultdict(list)
        for b in sorted(self.store.bindings, key=lambda b: (b.account_id, b.bound_at)):
            if b.account_id in account_ids:
                found[b.account_id].append((b, self.store.meters[b.meter_id]))
        return found

    def checkpoints(self, since: dict[int, datetime | None]) -> dict[int, FakeChargeDay]:
        found: dict[int, FakeChargeDay] = {}
        for account_id, before in since.items():
            candidates = [
                d
                for d in self.store.charge_days.values()
                if d.account_id == account_id
                and d.state_at is not None
                and (before is None or d.state_at < before)
            ]
            if candidates:
                found[account_id] = max(candidates, key=lambda d: d.state_at or EPOCH)
        return found

    def posted_days(self, after: dict[int, date | None]) -> dict[int, dict[tuple[str, date], int]]:
        found: dict[int, dict[tuple[str, date], int]] = defaultdict(dict)
        for d in self.store.charge_days.values():
            if d.account_id in after:
                limit = after[d.account_id]
                if limit is None or d.day > limit:
                    found[d.account_id][(d.cycle_key, d.day)] = d.posted_fen
        return found

    def frozen_readings(
        self,
        meters: Iterable[tuple[str, str]],
        after: datetime,
        *,
        with_real_time: Iterable[tuple[str, str]] = (),
    ) -> dict[tuple[str, str], list[RegisterReading]]:
        real_time = set(with_real_time)
        found: dict[tuple[str, str], list[RegisterReading]] = defaultdict(list)
        for key in sorted(set(meters)):
            kept = [
                r
                for r in self.store.readings.get(key, [])
                if r.at > after and (not r.real_time or key in real_time)
            ]
            if kept:
                found[key] = sorted(kept, key=lambda r: (r.at, not r.real_time))
        return found

    def meter_openings(self, account_ids: Sequence[int]) -> dict[int, datetime | None]:
        return {
            i: self.store.meter_openings[i] for i in account_ids if i in self.store.meter_openings
        }

    def confirmations(self, account_ids: Sequence[int]) -> dict[int, dict[str, datetime]]:
        return {
            i: dict(self.store.confirmations[i])
            for i in account_ids
            if i in self.store.confirmations
        }

    def save_days(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            day = FakeChargeDay(**row)
            self.store.charge_days[(day.account_id, day.cycle_key, day.day)] = day

    def note_billed(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            mark = self.store.true_up_marks.get(row["account_id"])
            if mark is None:
                continue
            through = mark["billed_through"]
            since = row["since"]
            if (
                row["changed"]
                or through is None
                or through != row["last_at"]
                or (since is not None and through >= since)
            ):
                if mark["rebilled_from"] is None or mark["rebilled_from"] > row["first_day"]:
                    mark["rebilled_from"] = row["first_day"]
                mark["billed_through"] = row["last_at"]

    def unbilled_meters(self, meters: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        return set(meters) & self.store.inbox

    def latest_readings(
        self, meters: Iterable[tuple[str, str]], until: datetime
    ) -> dict[tuple[str, str], datetime]:
        found: dict[tuple[str, str], datetime] = {}
        for key in set(meters):
            times = [r.at for r in self.store.readings.get(key, []) if r.at <= until]
            if times:
                found[key] = max(times)
        return found


class FakeTrueUps:
    """The true-up's repository over the store, as `TrueUpStore` answers over the tables."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def meter_account_ids(self, after_id: int, limit: int) -> list[int]:
        ids = sorted(
            i
            for i, a in self.store.accounts.items()
            if (a.billing_mode, a.status) == ("meter", "active") and i > after_id
        )
        return ids[:limit]

    def of_tariff(self, tariff_id: str) -> list[FakeCampaign]:
        found = [c for c in self.store.campaigns if c.tariff_id == tariff_id]
        return sorted(found, key=lambda c: c.effective_at)

    def true_up_marks(self, account_ids: Sequence[int]) -> dict[int, FakeTrueUpMark]:
        marks = self.store.true_up_marks
        return {i: FakeTrueUpMark(**marks[i]) for i in account_ids if i in marks}

    def true_up_days(
        self, from_days: Mapping[int, date]
    ) -> dict[int, dict[tuple[str, date], tuple[int, int]]]:
        found: dict[int, dict[tuple[str, date], tuple[int, int]]] = defaultdict(dict)
        for (account_id, cycle_key, day), row in self.store.true_up_days.items():
            if account_id in from_days and day >= from_days[account_id]:
                found[account_id][(cycle_key, day)] = (row["posted_fen"], row["revision"])
        return found

    def save_true_up_marks(self, rows: list[dict[str, Any]], *, drop: Sequence[int]) -> None:
        for account_id in drop:
            self.store.true_up_marks.pop(account_id, None)
        for row in rows:
            self.store.true_up_marks[row["account_id"]] = dict(row)

    def save_true_up_days(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.store.true_up_days[(row["account_id"], row["cycle_key"], row["day"])] = dict(row)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class FakeStaffUser:
    """A staff user (the columns of `staff_user`)."""

    id: int | None
    username: str
    password_hash: str
    role: str
    active: bool = True
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FakeApiToken:
    """A bearer token's digest (the columns of `api_token`)."""

    id: int | None
    token_hash: str
    user_id: int
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class FakeLoginAttempt:
    username: str
    client: str
    at: datetime
    success: bool


@dataclass
class FakeLoginLimit:
    """Failed logins in the current window for one (scope, key) (a `login_limit` row)."""

    failures: int
    window_start: datetime


class FakeStaff:
    """The staff port over the store, as `StaffRepository` answers over the tables."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    # users
    def save(self, row: StaffUserRecord | ApiTokenRecord) -> None:
        """A row read in an earlier unit of work is written back by its id."""
        assert row.id is not None
        if isinstance(row, FakeStaffUser):
            assert row.id in self.store.staff_users
            self.store.staff_users[row.id] = row
        else:
            assert isinstance(row, FakeApiToken) and row.id in self.store.api_tokens
            self.store.api_tokens[row.id] = row

    def add_user(self, *, username: str, password_hash: str, role: str) -> FakeStaffUser:
        if self.by_username(username) is not None:
            raise ValueError(f"username {username!r} taken: unique key")
        assert role in ("clerk", "auditor", "admin"), "the role check constraint"
        user_id = max(self.store.staff_users, default=0) + 1
        user = FakeStaffUser(user_id, username, password_hash, role)
        self.store.staff_users[user_id] = user
        return user

    def user(self, user_id: int, *, lock: bool = False) -> FakeStaffUser | None:
        return self.store.staff_users.get(user_id)

    def by_username(self, username: str) -> FakeStaffUser | None:
        found = (u for u in self.store.staff_users.values() if u.username == username)
        return next(found, None)

    def users(self) -> list[FakeStaffUser]:
        return [self.store.staff_users[i] for i in sorted(self.store.staff_users)]

    def lock_active_admins(self) -> list[int]:
        return sorted(
            i for i, u in self.store.staff_users.items() if u.role == "admin" and u.active
        )

    # tokens
    def add_token(
        self, *, token_hash: str, user_id: int, issued_at: datetime, expires_at: datetime
    ) -> FakeApiToken:
        if any(t.token_hash == token_hash for t in self.store.api_tokens.values()):
            raise ValueError("token_hash taken: unique key")
        assert user_id in self.store.staff_users, "the foreign key"
        token_id = max(self.store.api_tokens, default=0) + 1
        token = FakeApiToken(token_id, token_hash, user_id, issued_at, expires_at)
        self.store.api_tokens[token_id] = token
        return token

    def token(self, token_hash: str) -> tuple[FakeApiToken, FakeStaffUser] | None:
        found = (t for t in self.store.api_tokens.values() if t.token_hash == token_hash)
        token = next(found, None)
        return None if token is None else (token, self.store.staff_users[token.user_id])

    def revoke_tokens(self, user_id: int, at: datetime, *, keep: str = "") -> None:
        for t in self.store.api_tokens.values():
            if t.user_id == user_id and t.revoked_at is None and t.token_hash != keep:
                t.revoked_at = at

    # login attempts
    def add_attempt(self, *, username: str, client: str, at: datetime, success: bool) -> None:
        self.store.login_attempts.append(FakeLoginAttempt(username, client, at, success))

    def count_failure(
        self, scope: str, key: str, *, now: datetime, since: datetime
    ) -> tuple[int, datetime]:
        limit = self.store.login_limits.get((scope, key))
        if limit is None or limit.window_start <= since:  # none yet, or its window is over
            limit = FakeLoginLimit(1, now)
            self.store.login_limits[(scope, key)] = limit
        else:
            limit.failures += 1
        return limit.failures, limit.window_start

    def forgive_failure(self, scope: str, key: str) -> None:
        limit = self.store.login_limits.get((scope, key))
        if limit is not None and limit.failures > 0:
            limit.failures -= 1

    def clear_failures(self, scope: str, key: str) -> int:
        limit = self.store.login_limits.pop((scope, key), None)
        return 0 if limit is None else limit.failures


class FakePasswords:
    """The edge's slow hash (`service.staff.Passwords`): 'h1:' + the password is a current
    hash, 'h0:' + it one to bring up to date."""

    def hash(self, password: str) -> str:
        return f"h1:{password}"

    def verify(self, password_hash: str | None, password: str) -> bool:
        return password_hash in (f"h1:{password}", f"h0:{password}")

    def needs_rehash(self, password_hash: str) -> bool:
        return password_hash.startswith("h0:")


class FakeTokens:
    """The token minter (`service.staff.Tokens`): tok-1, tok-2 ..., kept as sha:tok-1 ..."""

    def __init__(self) -> None:
        self.numbers = itertools.count(1)

    def new(self) -> tuple[str, str]:
        token = f"tok-{next(self.numbers)}"
        return token, self.digest(token)

    def digest(self, token: str) -> str:
        return f"sha:{token}"


class FakeUnitOfWork:
    """A unit of work over a `FakeStore`: changes are kept only on `commit()`."""

    def __init__(self, store: FakeStore | None = None) -> None:
        self.store = store if store is not None else FakeStore()
        self._work: FakeStore | None = None
        self.committed = False
        self.commits = 0

    def __enter__(self) -> Self:
        if self._work is not None:
            raise RuntimeError("a unit of work is not re-entrant")
        self._work = copy.deepcopy(self.store)
        self.committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._work = None

    @property
    def work(self) -> FakeStore:
        if self._work is None:
            raise RuntimeError("use the unit of work inside `with uow:`")
        return self._work

    def commit(self) -> None:
        # the committed data becomes the store; the block goes on from a fresh copy
        self.store.__dict__.update(copy.deepcopy(self.work).__dict__)
        self.committed = True
        self.commits += 1

    def rollback(self) -> None:
        self._work = copy.deepcopy(self.store)

    def flush(self) -> None:
        """Nothing is pending in memory: what a repository wrote is in the work already."""

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[object]:
        """What the block wrote is undone if it raises."""
        kept = copy.deepcopy(self.work)
        try:
            yield self
        except BaseException:
            self.work.__dict__.update(kept.__dict__)
            raise

    @property
    def commands(self) -> FakeCommands:
        return FakeCommands(self.work)

    @property
    def accounts(self) -> FakeAccounts:
        return FakeAccounts(self.work)

    @property
    def ledger(self) -> FakeLedger:
        return FakeLedger(self.work)

    @property
    def billing(self) -> FakeBilling:
        return FakeBilling(self.work)

    @property
    def campaigns(self) -> FakeCampaigns:
        return FakeCampaigns(self.work)

    @property
    def true_ups(self) -> FakeTrueUps:
        return FakeTrueUps(self.work)

    @property
    def audit(self) -> FakeAudit:
        return FakeAudit(self.work)

    @property
    def exceptions(self) -> FakeExceptions:
        return FakeExceptions(self.work)

    @property
    def warnings(self) -> FakeWarnings:
        return FakeWarnings(self.work)

    @property
    def decision_states(self) -> FakeDecisionStates:
        return FakeDecisionStates(self.work)

    @property
    def staff(self) -> FakeStaff:
        return FakeStaff(self.work)


# -- the vendor's platform --------------------------------------------------------------


@dataclass
class FakePlatformRecord:
    """A command as the fake platform holds it (`PlatformCommandRecord`): what it was handed,
    and how far the meter got with it (`ctrl_state`, its reply)."""

    ctrl_id: int
    ctrl_define_no: str
    target_comm_no: str
    intent: Intent
    upper_ctrl_id: int
    ctrl_state: int = CtrlState.WAITING
    return_data: object = None
    ctrl_feedback_msg: str | None = ""

    @property
    def state(self) -> CtrlState | None:
        try:
            return CtrlState(self.ctrl_state)
        except ValueError:  # a state the document does not name
            return None


@dataclass(frozen=True)
class FakeAddReply:
    """One item of an AddMulti reply, checked against what was asked (`AddReply`)."""

    matched: bool
    exists: bool
    ctrl_id: int | None
    message: str = ""


class FakePlatform:
    """The platform port (`CommandPlatform`) in memory, with the faults the outbox must
    survive on request. Each AddMulti is kept in `batches`; each command added becomes a
    record (ctrl_ids from `first_ctrl_id` on, in the order handed over).

    - `fail_next`: errors raised by the next calls to `add_commands`, one each, before
      anything is added (a `PlatformRefused`: the platform said no; a
      `PlatformRetryable`: it was never reached);
    - `lose_next_reply`: the next batch is added, then its reply lost (`PlatformRetryable`);
    - `refuse_items`: meter comm_no -> message: that item answered false, nothing added;
    - `garble_items`: meters whose item the reply leaves out (added, reply unmatched);
    - `lookups_fail`: `find_by_define_no` raises `PlatformRetryable`.
    """

    def __init__(self, first_ctrl_id: int = 901) -> None:
        self.records: dict[int, FakePlatformRecord] = {}
        self.batches: list[list[OutgoingCommand]] = []
        self.lookups: list[str] = []
        self.fail_next: list[PlatformError] = []
        self.lose_next_reply = False
        self.refuse_items: dict[str, str] = {}
        self.garble_items: set[str] = set()
        self.lookups_fail = False
        self._next_ctrl_id = first_ctrl_id

    def add_commands(self, commands: Sequence[OutgoingCommand]) -> list[FakeAddReply]:
        self.batches.append(list(commands))
        if self.fail_next:
            raise self.fail_next.pop(0)
        replies = [self._add(command) for command in commands]
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise PlatformRetryable("connection reset: the reply was lost", path="AddMulti")
        return replies

    def _add(self, command: OutgoingCommand) -> FakeAddReply:
        refused = self.refuse_items.get(command.meter_comm_no)
        if refused is not None:
            return FakeAddReply(matched=True, exists=False, ctrl_id=None, message=refused)
        ctrl_id, self._next_ctrl_id = self._next_ctrl_id, self._next_ctrl_id + 1
        self.records[ctrl_id] = FakePlatformRecord(
            ctrl_id=ctrl_id,
            ctrl_define_no=command.define_no,
            target_comm_no=command.meter_comm_no,
            intent=command.intent,
            upper_ctrl_id=command.command_id,
        )
        if command.meter_comm_no in self.garble_items:
            return FakeAddReply(matched=False, exists=False, ctrl_id=None, message="no item")
        return FakeAddReply(matched=True, exists=True, ctrl_id=ctrl_id)

    def find_by_define_no(self, ctrl_define_no: str) -> list[FakePlatformRecord]:
        self.lookups.append(ctrl_define_no)
        if self.lookups_fail:
            raise PlatformRetryable("timed out", path="GetList")
        return [r for r in self.records.values() if r.ctrl_define_no == ctrl_define_no]

    def get_model(self, ctrl_id: int) -> FakePlatformRecord | None:
        return self.records.get(ctrl_id)

    def cancel(self, ctrl_id: int) -> int:
        record = self.records[ctrl_id]
        if record.ctrl_state != CtrlState.WAITING:
            raise PlatformRefused("only a waiting command can be cancelled")
        record.ctrl_state = CtrlState.CANCELLED
        return ctrl_id

    def retry(self, ctrl_id: int) -> int:
        self.records[ctrl_id].ctrl_state = CtrlState.WAITING
        return ctrl_id

    def finish(self, ctrl_id: int, state: CtrlState, return_data: object = None) -> None:
        """The meter ran it: the record ends in `state` with this reply."""
        record = self.records[ctrl_id]
        record.ctrl_state, record.return_data = state, return_data

    def handed_over(self) -> list[list[int]]:
        """Our command ids, batch by batch, as they were handed over."""
        return [[c.command_id for c in batch] for batch in self.batches]


# -- reconciliation's reads (service.reconciliation_ports) ------------------------------------


@dataclass
class FakeReconciliationBooks:
    """What reconciliation's reads find, as the rows the database adapter hands back.

    `accounts`: each account with its active meter (`AccountRow`). `readings`: frozen
    readings with a balance of the meter bound then, `in_flight_fen` the holds in flight
    at each. `replies`: the answered (done) commands of a type of each account's active
    meter, with the ledger's columns filled as the `ledger` read has them (the plain read
    leaves them 0 but a charge state's posted top-ups). `holds`: meter_credit's holds,
    `end` when resolved (None: never). `unbilled`: frozen readings waiting in billing's
    inbox. `sums` and `valves` are as of the report's instant (the commands created by
    then, in id order, as the database orders them); `replacements` by their removal.
    `verdicts` and `members` are the database's first pass (members by `MeterGroup.key`).
    `asked` records each read as (name, scope or ids).
    """

    accounts: list[AccountRow] = field(default_factory=list)
    readings: list[ReadingRow] = field(default_factory=list)
    replies: dict[CtrlType, list[ReplyRow]] = field(default_factory=dict)
    confirmations: dict[int, dict[str, datetime]] = field(default_factory=dict)
    holds: list[HoldRow] = field(default_factory=list)
    unbilled: dict[int, list[datetime]] = field(default_factory=dict)
    sums: dict[int, LedgerSums] = field(default_factory=dict)
    valves: list[ValveRow] = field(default_factory=list)
    replacements: list[ReplacementRow] = field(default_factory=list)
    verdicts: Verdicts | None = None
    members: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)
    asked: list[tuple[str, object]] = field(default_factory=list)


def _in_scope(scope: Scope, account: AccountRow) -> bool:
    i = account.account_id
    if scope.lo is not None and scope.hi is not None and not scope.lo <= i <= scope.hi:
        return False
    if scope.company_no is not None and account.company_no != scope.company_no:
        return False
    return scope.account_ids is None or i in scope.account_ids


class FakeReconciliation:
    """`ReconciliationRepository` over `FakeReconciliationBooks`."""

    def __init__(self, books: FakeReconciliationBooks) -> None:
        self.books = books

    def _of(self, scope: Scope, mode: str | None = None) -> dict[int, AccountRow]:
        return {
            a.account_id: a
            for a in self.books.accounts
            if _in_scope(scope, a) and (mode is None or a.mode == mode)
        }

    def prepare(self) -> None:
        self.books.asked.append(("prepare", None))

    def id_range(self, scope: Scope) -> tuple[int, int] | None:
        ids = list(self._of(scope))
        return (min(ids), max(ids)) if ids else None

    def accounts(self, scope: Scope) -> list[AccountRow]:
        self.books.asked.append(("accounts", scope))
        return sorted(self._of(scope).values(), key=lambda a: a.account_id)

    def latest_readings(
        self, scope: Scope, as_of: datetime, *, comparable: bool = False
    ) -> dict[int, ReadingRow]:
        meter = self._of(scope, "meter")
        found: dict[int, ReadingRow] = {}
        for r in self.books.readings:
            if r.account_id not in meter or r.at > as_of or (comparable and r.in_flight_fen):
                continue
            if r.account_id not in found or r.at > found[r.account_id].at:
                found[r.account_id] = r
        return found

    def replies(
        self, scope: Scope, ctrl_type: CtrlType, as_of: datetime, *, ledger: bool = False
    ) -> dict[int, ReplyRow]:
        meter = self._of(scope, "meter")
        found: dict[int, ReplyRow] = {}
        for r in self.books.replies.get(ctrl_type, []):
            if r.account_id not in meter or r.at > as_of:
                continue
            if r.account_id not in found or r.at >= found[r.account_id].at:
                found[r.account_id] = r
        # the columns the database's query has for the type (and `ledger`)
        if ctrl_type is CtrlType.REMOTE_CHARGE and ledger:
            return {i: ReplyRow(*r[:6]) for i, r in found.items()}
        if ctrl_type is CtrlType.GET_CHARGE_STATE:
            return {
                i: r._replace(
                    credit_fen=0,
                    in_flight_fen=r.in_flight_fen if ledger else 0,
                    in_flight_times=r.in_flight_times if ledger else 0,
                )
                for i, r in found.items()
            }
        return {i: ReplyRow(*r[:4]) for i, r in found.items()}

    def confirmations(self, scope: Scope) -> dict[int, dict[str, datetime]]:
        self.books.asked.append(("confirmations", scope))
        ids = self._of(scope)
        return {i: dict(c) for i, c in self.books.confirmations.items() if i in ids}

    def holds(self, account_ids: Sequence[int], as_of: datetime) -> list[HoldRow]:
        self.books.asked.append(("holds", list(account_ids)))
        found = []
        for h in self.books.holds:
            if h.account_id not in account_ids or h.start > as_of:
                continue
            if h.end is not None and h.end > as_of:  # resolved after: in flight then
                h = h._replace(end=None, posted=False)
            found.append(h)
        return sorted(found, key=lambda h: h.start)

    def coverage(
        self, account_ids: Sequence[int], as_of: datetime
    ) -> dict[int, tuple[int, datetime, datetime, int]]:
        found = {}
        for a in self.books.accounts:
            i = a.account_id
            if i not in account_ids:
                continue
            times = [
                r.at
                for r in self.books.readings
                if r.account_id == i and r.comm_no == a.comm_no and r.at <= as_of
            ]
            if times:
                waiting = [t for t in self.books.unbilled.get(i, []) if t <= as_of]
                found[i] = (len(times), min(times), max(times), len(waiting))
        return found

    def verdicts(self, scope: Scope, as_of: datetime, balance_milli: int) -> Verdicts:
        self.books.asked.append(("verdicts", scope))
        if self.books.verdicts is None:
            raise AssertionError("no first pass given")
        return self.books.verdicts

    def members(
        self, scope: Scope, as_of: datetime, balance_milli: int, groups: Sequence[MeterGroup]
    ) -> list[int]:
        self.books.asked.append(("members", [g.first_id for g in groups]))
        return [i for g in groups for i in self.books.members.get(g.key(), [])]


class FakeSystemReads:
    """`SystemRepository` over `FakeReconciliationBooks`."""

    def __init__(self, books: FakeReconciliationBooks) -> None:
        self.books = books

    def _ids(self, scope: Scope, mode: str | None = None) -> set[int]:
        return {
            a.account_id
            for a in self.books.accounts
            if _in_scope(scope, a) and (mode is None or a.mode == mode)
        }

    def ledger_sums(self, scope: Scope, as_of: datetime) -> dict[int, LedgerSums]:
        ids = self._ids(scope, "system")
        return {i: s for i, s in self.books.sums.items() if i in ids}

    def valve_commands(self, scope: Scope, as_of: datetime) -> list[ValveRow]:
        ids = self._ids(scope, "system")
        return [v for v in self.books.valves if v.account_id in ids]

    def replacements(self, scope: Scope, as_of: datetime) -> list[ReplacementRow]:
        ids = self._ids(scope)
        found = [r for r in self.books.replacements if r.account_id in ids]
        found = [r for r in found if r.removed_at <= as_of]
        return sorted(found, key=lambda r: (r.account_id, r.removed_at))


class FakeReconciliationUnitOfWork(FakeUnitOfWork):
    """A `FakeUnitOfWork` that carries reconciliation's reads (read-only: not copied)."""

    def __init__(self, books: FakeReconciliationBooks, store: FakeStore | None = None) -> None:
        super().__init__(store)
        self.books = books
        self.readers_opened = 0

    @property
    def reconciliation(self) -> FakeReconciliation:
        self.work  # noqa: B018  (inside `with uow:` only, as the others)
        return FakeReconciliation(self.books)

    @property
    def reconciliation_system(self) -> FakeSystemReads:
        self.work  # noqa: B018
        return FakeSystemReads(self.books)

    @contextlib.contextmanager
    def snapshot_readers(self, count: int) -> Iterator[list[FakeReconciliationReader]]:
        """`count` more readers of the same books (they never change during a report),
        counted in `readers_opened`."""
        self.work  # noqa: B018
        self.readers_opened += count
        yield [FakeReconciliationReader(self.books) for _ in range(count)]


@dataclass
class FakeReconciliationReader:
    """One of `FakeReconciliationUnitOfWork.snapshot_readers`: reconciliation's two reads."""

    books: FakeReconciliationBooks

    @property
    def reconciliation(self) -> FakeReconciliation:
        return FakeReconciliation(self.books)

    @property
    def reconciliation_system(self) -> FakeSystemReads:
        return FakeSystemReads(self.books)


# -- pushed readings, alarms and events (service.store_ports.ReadingRepository) ------------


@dataclass
class FakeReadingBook:
    """What the reading tables hold: readings by their key (company, meter, data type,
    acquisition time), billing's inbox (the keys queued), the differing re-pushes kept
    once per record and value (`conflicts`: (kind, company, key, second) -> [first, times
    seen]), and alarms and events by their key."""

    readings: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    inbox: list[tuple[Any, ...]] = field(default_factory=list)
    conflicts: dict[tuple[str, str, str, str], list[Any]] = field(default_factory=dict)
    records: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)


_READING_KEY = ("company_no", "meter_comm_no", "data_type", "acquisition_time")


class FakeReadings:
    """`ReadingRepository` over a `FakeReadingBook`."""

    def __init__(self, book: FakeReadingBook) -> None:
        self.book = book

    def store_new(
        self, rows: Sequence[Mapping[str, Any]], billed_type: int
    ) -> set[tuple[Any, ...]]:
        new = set()
        for row in rows:
            key = tuple(row[name] for name in _READING_KEY)
            if key in self.book.readings:
                continue
            self.book.readings[key] = dict(row)
            new.add(key)
            if row["data_type"] == billed_type:
                self.book.inbox.append(key)
        return new

    def readings(self, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        wanted = [tuple(k[name] for name in _READING_KEY) for k in keys]
        return [
            dict(self.book.readings[k]) for k in dict.fromkeys(wanted) if k in self.book.readings
        ]

    def add_conflict(
        self, *, kind: str, company_no: str, key: str, first: str, second: str, at: datetime
    ) -> None:
        found = self.book.conflicts.setdefault((kind, company_no, key, second), [first, 0])
        found[1] += 1

    def _record_key(self, kind: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
        names = ("company_no", "device_comm_no", f"{kind}_time", f"{kind}_code")
        return tuple(row[name] for name in names)

    def insert_device_record(self, kind: str, row: Mapping[str, Any]) -> int | None:
        stored = self.book.records.setdefault(kind, {})
        key = self._record_key(kind, row)
        if key in stored:
            return None
        new_id = len(stored) + 1
        stored[key] = {**row, f"{kind}_id": new_id}
        return new_id

    def device_record(self, kind: str, row: Mapping[str, Any]) -> dict[str, Any] | None:
        found = self.book.records.get(kind, {}).get(self._record_key(kind, row))
        return None if found is None else dict(found)


class FakeReadingsUnitOfWork(FakeUnitOfWork):
    """A `FakeUnitOfWork` that carries the reading store (`uow.readings`, kept on commit as
    the rest) and the importer's `reading_transaction`: each its own transaction, one at a
    time, committed when the block ends without error."""

    def __init__(self, book: FakeReadingBook | None = None, store: FakeStore | None = None) -> None:
        super().__init__(store)
        self.book = book if book is not None else FakeReadingBook()
        self._book_work: FakeReadingBook | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        super().__enter__()
        self._book_work = copy.deepcopy(self.book)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, traceback)
        self._book_work = None

    def commit(self) -> None:
        super().commit()
        assert self._book_work is not None
        self.book.__dict__.update(copy.deepcopy(self._book_work).__dict__)

    def rollback(self) -> None:
        super().rollback()
        self._book_work = copy.deepcopy(self.book)

    @property
    def readings(self) -> FakeReadings:
        if self._book_work is None:
            raise RuntimeError("use the unit of work inside `with uow:`")
        return FakeReadings(self._book_work)

    @contextlib.contextmanager
    def reading_transaction(self) -> Iterator[FakeReadings]:
        with self._lock:
            work = copy.deepcopy(self.book)
            yield FakeReadings(work)
            self.book.__dict__.update(work.__dict__)
