"""The service's ports for the command outbox and the vendor's platform: the outbox's
records and repository (on the unit of work as `uow.commands`), the platform port that
takes domain commands (the platform adapter writes the vendor's wire text), the reading of
the meters' replies, and the errors the platform port raises. Re-exported by
`service.ports`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gasbill.domain.commands import Command as Intent
from gasbill.domain.commands import CommandResult, CtrlState, LadderPrice


class CommandRecord(Protocol):
    """One command to one meter in the outbox (DESIGN §8), changed in place as it goes:
    queued, sent, ended. `intent` is the domain command it carries (None for a top-up until
    it is dispatched: its count and total come from the meter's confirmed counters then);
    `return_data` is what the meter answered, as the platform gave it."""

    id: int | None
    define_no: str
    company_no: str
    meter_id: int
    meter_comm_no: str
    account_id: int | None
    ctrl_type: str
    intent: Intent | None
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
    intent: Intent | None  # None for a top-up until dispatched
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
    ladder: LadderPrice | None
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

    def add_many(self, news: Sequence[NewCommand]) -> list[int]:
        """Queue several in one go (a campaign's page); their ids, in order."""

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

    def lock_if_free(self, command_id: int) -> CommandRecord | None:
        """The command, locked, unless another transaction holds it: then None (it is on
        its way), never waited for."""

    def waiting_unsent(self, meter_id: int, ctrl_type: str) -> CommandRecord | None:
        """The meter's oldest queued command of this type not handed over yet, locked
        (None if another transaction holds it)."""

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


class PlatformCommandRecord(PlatformCommandState, Protocol):
    """A command as the platform holds it (looked up by our define_no, or by its id)."""

    @property
    def ctrl_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class OutgoingCommand:
    """A claimed command to hand to the platform: the platform adapter writes its wire
    form (`ctrl_type`, `ctrl_data`, the times in the platform's zone)."""

    command_id: int  # ours, sent as `upper_ctrl_id`
    define_no: str  # ours, sent as `ctrl_define_no`: a lost reply is found again by it
    meter_comm_no: str
    intent: Intent
    at: datetime
    timeout_at: datetime


class AddReply(Protocol):
    """The platform's answer for one command of a batch, checked against what was asked:
    `matched` False when the reply has no item for it or names another device (then the
    command is looked up by its define_no before it is sent again)."""

    @property
    def matched(self) -> bool: ...

    @property
    def exists(self) -> bool:
        """The platform holds the command (it has a ctrl_id)."""

    @property
    def ctrl_id(self) -> int | None: ...

    @property
    def message(self) -> str: ...


class CommandPlatform(Protocol):
    """The vendor's remote-control API as the outbox uses it, in domain commands."""

    def add_commands(self, commands: Sequence[OutgoingCommand]) -> Sequence[AddReply]:
        """Hand these over in one batch; the replies in the same order."""

    def find_by_define_no(self, ctrl_define_no: str) -> Sequence[PlatformCommandRecord]: ...

    def get_model(self, ctrl_id: int) -> PlatformCommandRecord | None: ...

    def cancel(self, ctrl_id: int) -> int: ...

    def retry(self, ctrl_id: int) -> int: ...


class CommandCodec(Protocol):
    """How the platform adapter reads the meters' replies (`return_data`)."""

    def decode_result(self, ctrl_type: str | None, return_data: object) -> CommandResult:
        """What the meter answered, or `Unreadable` with the reason: never a guessed
        success."""
