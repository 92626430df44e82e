"""A command record as the platform keeps it (§4.1), and what its endpoints take and answer.

The record's wire form (GetModel, GetList: every field of the §4.2.4
sample, in its order), its item of the Report push (§4.2.12), the Add and
Update bodies and the GetList filter as the samples show them, and the
items of a batch reply (§4.2.8–§4.2.10).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from iotsim.envelope import Refused
from iotsim.times import write_time
from iotsim.vendor import STATE_TEXTS, TARGET_DEVTYPE_METER, CtrlState, Param

IN_FLIGHT = (CtrlState.SENT, CtrlState.ACKNOWLEDGED)
STEP = timedelta(seconds=3)  # between the states of one command at a wake-up
NOT_FOUND = "找不到要修改的数据"  # the failure sample of Cancel and Retry (§4.2.6, §4.2.7)
NOT_FOUND_DELETE = "找不到要删除的数据"  # the failure sample of Delete (§4.2.3)

CtrlRefused = Refused  # a refusal of the command store: the same `failed` envelope


@dataclass
class CtrlRecord:
    ctrl_id: int
    company_no: str
    processor_name: str
    ctrl_define_no: str
    target_comm_no: str
    target_devtype: int
    ctrl_time: datetime
    ctrl_timeout: datetime
    ctrl_type: str
    ctrl_data: str
    param: Param  # ctrl_data as the meter reads it
    upper_ctrl_id: int = 0
    ctrl_state: CtrlState = CtrlState.WAITING
    ctrl_feedback_msg: str = ""
    return_data: str = "{}"
    sync_flag: int = 0
    sync_time: datetime | None = None
    sync_msg: str = ""
    applied: int = 0  # how many times the meter carried it out (whatever was reported)
    history: list[tuple[datetime, CtrlState]] = field(default_factory=list)

    def wire(self, zone: ZoneInfo) -> dict[str, Any]:
        return {
            "ctrl_id": self.ctrl_id,
            "upper_ctrl_id": self.upper_ctrl_id,
            "company_no": self.company_no,
            "processor_name": self.processor_name,
            "ctrl_define_no": self.ctrl_define_no,
            "target_comm_no": self.target_comm_no,
            "target_devtype": self.target_devtype,
            "ctrl_time": write_time(self.ctrl_time, zone),
            "ctrl_timeout": write_time(self.ctrl_timeout, zone),
            "ctrl_state": int(self.ctrl_state),
            "ctrl_state_msg": STATE_TEXTS[self.ctrl_state],
            "ctrl_feedback_msg": self.ctrl_feedback_msg,
            "ctrl_type": self.ctrl_type,
            "ctrl_data": self.ctrl_data,
            "return_data": self.return_data,
            "sync_flag": self.sync_flag,
            "sync_time": write_time(self.sync_time or self.ctrl_time, zone),
            "sync_msg": self.sync_msg,
        }

    def report(self, zone: ZoneInfo) -> dict[str, Any]:
        """An item of the Report push (§4.2.12), its times written as that sample writes them."""
        return {
            "ctrl_id": self.ctrl_id,
            "meter_comm_no": self.target_comm_no,
            "ctrl_time": write_time(self.ctrl_time, zone, sep=" "),
            "ctrl_timeout": write_time(self.ctrl_timeout, zone, sep=" "),
            "ctrl_type": self.ctrl_type,
            "ctrl_state": int(self.ctrl_state),
            "ctrl_state_msg": STATE_TEXTS[self.ctrl_state],
            "ctrl_feedback_msg": self.ctrl_feedback_msg,
            "return_data": self.return_data,
        }


class CommandIn(BaseModel):
    """An Add body or the caller's part of an Update body; unknown fields ignored."""

    model_config = ConfigDict(extra="ignore")

    processor_name: str = ""
    ctrl_define_no: str | None = ""
    target_comm_no: str
    target_devtype: int = TARGET_DEVTYPE_METER
    ctrl_time: str | None = None
    ctrl_timeout: str | None = None
    ctrl_type: str
    ctrl_data: Any = "{}"
    upper_ctrl_id: int | None = 0
    sync_flag: int | None = 0
    sync_time: str | None = None
    sync_msg: str | None = ""


class CtrlFilter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    upper_ctrl_id: int | None = None
    processor_name: str | None = None
    ctrl_define_no: str | None = None
    target_comm_no: str | None = None
    target_devtype: int | None = None
    ctrl_state: int | None = None
    ctrl_type: str | None = None
    ctrl_time_from: str | None = None
    ctrl_time_to: str | None = None


def is_ctrl_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def batch_item(record: CtrlRecord | None, ctrl_id: int, message: str) -> dict[str, Any]:
    return {
        "ctrl_id": ctrl_id,
        "target_comm_no": record.target_comm_no if record is not None else "",
        "result": not message,
        "message": message,
    }


def ids_of(body: Any) -> Iterable[Any]:
    if not isinstance(body, list):
        raise CtrlRefused(400, "the body must be a JSON array of ctrl_id, e.g. [8,9]")
    return body
