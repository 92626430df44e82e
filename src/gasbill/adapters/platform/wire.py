"""The remote-control API's messages as they travel (spec §2, §3.2, §5.1, §5.2).

JSON is read and written exactly: `loads_exact` reads numbers with a point
as `Decimal`, `dumps_exact` writes a `Decimal` as its own text and refuses a
float. Datetimes stay the platform's text here (`ctrl_time` etc.); read them
with `times.parse_platform_time` in the platform's zone, write them with
`times.format_platform_time`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from gasbill.adapters.platform.times import parse_platform_time
from gasbill.domain.commands import PROCESSOR_NAME, TARGET_DEVTYPE_METER, CtrlState

SUCCESS = "success"
FAILED = "failed"


# -- the envelope --------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Envelope(_Wire):
    """`{State, Message, Data}`, plus `Totalcount`, `Startrow`, `Rowcount` on lists."""

    State: str
    Message: str = ""
    Data: Any = None
    Totalcount: int | None = None
    Startrow: int | None = None
    Rowcount: int | None = None

    @property
    def ok(self) -> bool:
        return self.State.strip().lower() == SUCCESS


_ENVELOPE_KEYS = {name.lower(): name for name in Envelope.model_fields}


def parse_envelope(body: Any) -> Envelope | None:
    """The envelope in a parsed body (keys matched without case), or None."""
    if not isinstance(body, dict):
        return None
    fields = {_ENVELOPE_KEYS[k.lower()]: v for k, v in body.items() if k.lower() in _ENVELOPE_KEYS}
    if not isinstance(fields.get("State"), str):
        return None
    if fields.get("Message") is None:
        fields["Message"] = ""
    try:
        return Envelope.model_validate(fields)
    except ValueError:
        return None


# -- login (spec §3.2) ------------------------------------------------------------


class LoginReply(_Wire):
    token: str
    expiration: str | None = None
    admin_id: int | str | None = None
    company_no: str | None = None
    admin_name: str | None = None
    admin_remark: str | None = None
    admin_ext_data: Any = None

    def expires_at(self, zone: ZoneInfo) -> datetime | None:
        """The aware expiry, or None when it is missing or not a platform time."""
        if not self.expiration:
            return None
        try:
            return parse_platform_time(self.expiration, zone)
        except ValueError:
            return None


# -- command records (spec §5.1) ------------------------------------------------------


class NewCtrlData(_Wire):
    """The body of `Add` / an item of `AddMulti`: a command to create."""

    processor_name: str = PROCESSOR_NAME
    ctrl_define_no: str
    target_comm_no: str
    target_devtype: int = TARGET_DEVTYPE_METER
    ctrl_time: str
    ctrl_timeout: str
    ctrl_type: str
    ctrl_data: str = "{}"
    upper_ctrl_id: int | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class CtrlDataRecord(_Wire):
    """A whole command record, as `GetModel`/`GetList` return and `Update` takes."""

    ctrl_id: int = 0
    upper_ctrl_id: int | None = 0
    company_no: str | None = ""
    processor_name: str | None = ""
    ctrl_define_no: str | None = ""
    target_comm_no: str | None = ""
    target_devtype: int | None = TARGET_DEVTYPE_METER
    ctrl_time: str | None = None
    ctrl_timeout: str | None = None
    ctrl_state: int = 0
    ctrl_state_msg: str | None = ""
    ctrl_feedback_msg: str | None = ""
    ctrl_type: str | None = ""
    ctrl_data: Any = "{}"  # an object, or a string holding JSON
    return_data: Any = None  # likewise; numbers kept exact
    sync_flag: int | None = 0
    sync_time: str | None = None
    sync_msg: str | None = ""

    @property
    def state(self) -> CtrlState | None:
        """The state as we know it, None for a value the spec does not list."""
        try:
            return CtrlState(self.ctrl_state)
        except ValueError:
            return None

    def time_of(self, field: str, zone: ZoneInfo) -> datetime | None:
        """`ctrl_time`, `ctrl_timeout` or `sync_time` as an aware datetime."""
        if field not in ("ctrl_time", "ctrl_timeout", "sync_time"):
            raise ValueError(f"{field} is not a time field")
        text = getattr(self, field)
        return parse_platform_time(text, zone) if text else None

    def body(self) -> dict[str, Any]:
        return self.model_dump()


class CtrlDataFilter(_Wire):
    """The `GetList` query; only the conditions given are sent."""

    upper_ctrl_id: int | None = None
    processor_name: str | None = None
    ctrl_define_no: str | None = None
    target_comm_no: str | None = None
    target_devtype: int | None = None
    ctrl_state: int | None = None
    ctrl_type: str | None = None
    ctrl_time_from: str | None = None
    ctrl_time_to: str | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class BatchResultItem(_Wire):
    """An item of a batch reply: `ctrl_id > 0` means the command exists."""

    ctrl_id: int = 0
    target_comm_no: str | None = ""
    result: bool = False
    message: str | None = ""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The reply item at a request's position, checked against what was asked.

    `matched` is False when the reply has no item there or the item names
    another device or command: then look the command up by
    `ctrl_define_no` before sending it again.
    """

    position: int
    item: BatchResultItem | None
    matched: bool
    problem: str = ""

    @property
    def exists(self) -> bool:
        """The platform holds the command (`ctrl_id > 0`), whatever `result` says."""
        return self.matched and self.item is not None and self.item.ctrl_id > 0

    @property
    def ok(self) -> bool:
        """The operation succeeded: `result` true on a matched item."""
        return self.matched and self.item is not None and self.item.result

    @property
    def ctrl_id(self) -> int | None:
        return self.item.ctrl_id if self.exists and self.item is not None else None

    @property
    def message(self) -> str:
        return self.problem or (self.item.message or "" if self.item is not None else "")


@dataclass(frozen=True, slots=True)
class CtrlDataPage:
    items: list[CtrlDataRecord]
    totalcount: int
    startrow: int
    rowcount: int
