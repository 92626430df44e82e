"""The service's ports for the command outbox and the vendor's platform: the outbox's
records and repository (on the unit of work as `uow.commands`), the codec of the vendor's
wire text, and the errors the platform port raises. Re-exported by `service.ports`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gasbill.domain.commands import Command as Intent
from gasbill.domain.commands import CommandResult, CtrlState


class CommandRecord(Protocol):
    """One command to one meter in the outbox (DESIGN §8), changed in place as it goes:
    queued, sent, ended. `ctrl_type`/`ctrl_data` are the platform's names for what it
    carries; `return_data` is what the meter answered, as the platform gave it."""

    id: int | None
    define_no: str
    company_no: str
    meter_id: int
    meter_comm_no: str
    account_id: int | None
    ctrl_type: str
    ctrl_data: str
    status: str
    platform_state: int | None
    ctrl_id: int | None
    hold_id: str | None
    amount_fen: int | None
    charge_times: int | None
    total_fen: int | None
    settles_id: int | None
    campaign_id: int | None
    outcome: str
    return_data: str | None
    feedback: str
    reason: str
    actor: str
    attempts: int
    last_error: str
    next_attempt_at: datetime
    timeout_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewCommand:
    """A command to put in the outbox, queued (due at `next_attempt_at`)."""

    define_no: str
    company_no: str
    meter_id: int
    meter_comm_no: str
    ctrl_type: str
    ctrl_data: str
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


class PrepayStateRecord(Protocol):
    """What a meter has confirmed: remote top-ups (count, total), its card counters and its
    ladder; `blocked_by` the command whose outcome (or baseline read) holds prepay back."""

    meter_id: int
    confirmed_times: int
    confirmed_total_fen: int
    card_times: int | None
    card_total_fen: int | None
    baseline_at: datetime | None
    blocked_by: int | None
    ladder: str | None
    ladder_confirmed_at: datetime | None
    updated_at: datetime


class CommandReportRecord(Protocol):
    """A command report as the platform sent it, kept until its command is known."""

    id: int | None
    company_no: str
    ctrl_id: int
    meter_comm_no: str
    ctrl_state: int
    payload: str
    received_at: datetime
    matched_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewCommandReport:
    """A report for a ctrl_id we do not know yet (its Add reply not in): kept to apply later."""

    company_no: str
    ctrl_id: int
    meter_comm_no: str
    ctrl_state: int
    payload: str  # the report as the platform sent it (exact JSON)
    received_at: datetime


class CommandRepository(Protocol):
    """The outbox's rows: commands, each meter's confirmed prepay state, early reports."""

    def add(self, new: NewCommand) -> CommandRecord:
        """Queue it; the record has its id."""

    def get(self, command_id: int, *, lock: bool = False) -> CommandRecord | None: ...

    def by_ctrl_id(
        self, company_no: str, ctrl_id: int, *, lock: bool = True
    ) -> CommandRecord | None: ...

    def account_of_ctrl_id(self, company_no: str, ctrl_id: int) -> int | None:
        """The account of the command the platform knows by this ctrl_id (not locked)."""

    def claim_stale(
        self, status: str, before: datetime, limit: int, now: datetime
    ) -> Sequence[CommandRecord]:
        """Commands in `status` not heard of since `before`, stamped `now` so that no other
        worker asks after them until another interval has passed."""

    def by_hold(self, hold_id: str) -> CommandRecord | None:
        """The command carrying this ledger hold (a top-up's, an opening's)."""

    def save(self, command: CommandRecord) -> None: ...

    def open_of_meter(self, meter_id: int) -> Sequence[CommandRecord]:
        """The meter's queued and in-flight commands, locked."""

    def of_account(self, account_id: int, limit: int = 50) -> Sequence[CommandRecord]:
        """The account's commands, newest first."""

    def prepay_state(self, meter_id: int) -> PrepayStateRecord:
        """The meter's confirmed prepay state, locked; created at zero on first use."""

    def save_prepay(self, prepay: PrepayStateRecord) -> None: ...

    def unmatched_reports(self, company_no: str, ctrl_id: int) -> Sequence[CommandReportRecord]:
        """Reports for this ctrl_id not yet applied, in the order they came."""

    def add_report(self, report: NewCommandReport) -> None: ...

    def save_report(self, report: CommandReportRecord) -> None: ...


# -- the vendor's platform ----------------------------------------------------------


class PlatformError(Exception):
    """A call to the vendor's platform that did not succeed (the platform port raises it,
    whatever the transport's own error was)."""

    def __init__(
        self, message: str, *, status: int | None = None, data: object = None, path: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.data = data
        self.path = path

    def __str__(self) -> str:
        where = [part for part in (self.path, self.status and f"HTTP {self.status}") if part]
        return f"{self.message} ({', '.join(where)})" if where else self.message


class PlatformRetryable(PlatformError):
    """Transport error, timeout, 5xx or an unreadable reply: the outcome is unknown."""


class PlatformRefused(PlatformError):
    """The platform said no: a `failed` envelope or a 4xx. `login`: it refused our login
    (our credentials); `token_refused`: it refused the session token we sent."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        data: object = None,
        path: str = "",
        token_refused: bool = False,
        login: bool = False,
    ) -> None:
        super().__init__(message, status=status, data=data, path=path)
        self.token_refused = token_refused
        self.login = login


class PlatformCommandState(Protocol):
    """What the platform says of a command (a report, a polled record): its `ctrl_state`
    (`state` when it is one the document names), the meter's reply and feedback."""

    @property
    def state(self) -> CtrlState | None: ...

    @property
    def ctrl_state(self) -> int: ...

    @property
    def return_data(self) -> object: ...

    @property
    def ctrl_feedback_msg(self) -> str | None: ...


class CommandCodec(Protocol):
    """The vendor's wire text of commands and replies (`ctrl_type`, `ctrl_data`,
    `return_data`): the platform adapter's codec implements it."""

    def encode(self, command: Intent) -> tuple[str, str]:
        """(ctrl_type, ctrl_data) for this command."""

    def decode_command(self, ctrl_type: str | None, ctrl_data: object) -> Intent: ...

    def decode_result(self, ctrl_type: str | None, return_data: object) -> CommandResult:
        """What the meter answered, or `Unreadable` with the reason: never a guessed
        success."""
