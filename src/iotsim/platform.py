"""The platform's command records (§4.1, §4.2) and their state machine.

A command waits (0) until its meter wakes; then it is sent (1), acknowledged
(2) and ends in success (3) with the meter's `return_data`, or fails (4 when
the meter answered no or a fault says so), cannot be sent (7), ends in
another error (99), or times out (6) when its `ctrl_timeout` passes first.
Cancel works only while waiting (→ 5); Retry sends a final command back to
0, extending a passed `ctrl_timeout` by the command's original span. Every
state change goes to `on_change` (the Report push, §4.2.12) and shows in
GetModel and GetList at once. `ctrl_data` is read at Add (and Update) into
the structure its ctrl_type takes (`iotsim.vendor`): a command the meter
could not read is refused there, with the field named.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from iotsim.faults import Faults
from iotsim.firmware import Nak
from iotsim.jsonwire import write_json
from iotsim.records import (
    IN_FLIGHT,
    NOT_FOUND,
    NOT_FOUND_DELETE,
    STEP,
    CommandIn,
    CtrlFilter,
    CtrlRecord,
    CtrlRefused,
    is_ctrl_id,
)
from iotsim.times import BadTime, read_time
from iotsim.vendor import (
    PROCESSOR_NAME,
    STATE_TEXTS,
    TARGET_DEVTYPE_METER,
    BadParam,
    CtrlState,
    Param,
    Reply,
    read_ctrl_data,
    write_return_data,
)

Execute = Callable[[str, Param, datetime], Reply | Nak]


class CtrlStore:
    def __init__(
        self,
        *,
        company_no: str,
        zone: ZoneInfo,
        has_meter: Callable[[str], bool],
        on_change: Callable[[CtrlRecord, datetime], None],
        clock: Callable[[], datetime],
        default_timeout: timedelta,
    ) -> None:
        self.company_no = company_no
        self.zone = zone
        self._has_meter = has_meter
        self._on_change = on_change
        self._clock = clock
        self._default_timeout = default_timeout
        self.records: dict[int, CtrlRecord] = {}
        self._pending: dict[int, CtrlRecord] = {}  # states 0, 1, 2
        self._next_id = 1

    # -- reading bodies ------------------------------------------------------------------
    def _time(self, text: str | None, name: str) -> datetime | None:
        if text is None or not text.strip():
            return None
        try:
            return read_time(text, self.zone)
        except BadTime as exc:
            raise CtrlRefused(422, f"{name}: {exc}") from None

    def _fields(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise CtrlRefused(400, "the command must be a JSON object")
        try:
            given = CommandIn.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CtrlRefused(422, f"{where}: {first['msg']}") from None
        if given.processor_name != PROCESSOR_NAME:
            raise CtrlRefused(422, f"processor_name: 不支持的处理程序 {given.processor_name!r}")
        if given.target_devtype != TARGET_DEVTYPE_METER or not self._has_meter(
            given.target_comm_no
        ):
            raise CtrlRefused(404, f"设备不存在: {given.target_comm_no!r} (no such meter)")
        ctrl_data = given.ctrl_data
        text = ctrl_data if isinstance(ctrl_data, str) else write_json(ctrl_data)
        try:
            param = read_ctrl_data(given.ctrl_type, ctrl_data, self.zone)
        except BadParam as exc:
            raise CtrlRefused(422, f"ctrl_data: {given.ctrl_type[:200]}: {exc}") from None
        ctrl_time = self._time(given.ctrl_time, "ctrl_time") or self._clock()
        timeout = self._time(given.ctrl_timeout, "ctrl_timeout")
        return {
            "processor_name": given.processor_name,
            "ctrl_define_no": given.ctrl_define_no or "",
            "target_comm_no": given.target_comm_no,
            "target_devtype": given.target_devtype,
            "ctrl_time": ctrl_time,
            "ctrl_timeout": timeout or ctrl_time + self._default_timeout,
            "ctrl_type": given.ctrl_type,
            "ctrl_data": text,
            "param": param,
            "upper_ctrl_id": given.upper_ctrl_id or 0,
            "sync_flag": given.sync_flag or 0,
            "sync_time": self._time(given.sync_time, "sync_time"),
            "sync_msg": given.sync_msg or "",
        }

    # -- the endpoints' operations ---------------------------------------------------------
    def add(self, body: Any) -> CtrlRecord:
        record = CtrlRecord(ctrl_id=self._next_id, company_no=self.company_no, **self._fields(body))
        self._next_id += 1
        self.records[record.ctrl_id] = record
        self._pending[record.ctrl_id] = record
        record.history.append((self._clock(), CtrlState.WAITING))
        return record

    def get(self, ctrl_id: Any) -> CtrlRecord:
        record = self.records.get(ctrl_id) if is_ctrl_id(ctrl_id) else None
        if record is None:
            raise CtrlRefused(404, NOT_FOUND)  # as the samples of §4.2.6, §4.2.7
        return record

    def update(self, body: Any) -> CtrlRecord:
        ctrl_id = body.get("ctrl_id") if isinstance(body, dict) else None
        record = self.get(ctrl_id)
        if record.ctrl_state is not CtrlState.WAITING:
            raise CtrlRefused(409, f"任务已发送，不能修改 (ctrl_id {ctrl_id} is not waiting)")
        for name, value in self._fields(body).items():
            setattr(record, name, value)  # ctrl_state and return_data stay the platform's
        return record

    def delete(self, ctrl_id: Any) -> CtrlRecord:
        record = self.records.get(ctrl_id) if is_ctrl_id(ctrl_id) else None
        if record is None:
            raise CtrlRefused(404, NOT_FOUND_DELETE)
        if record.ctrl_state in IN_FLIGHT:
            raise CtrlRefused(409, f"任务执行中，不能删除 (ctrl_id {ctrl_id} is in flight)")
        del self.records[record.ctrl_id]
        self._pending.pop(record.ctrl_id, None)
        return record

    def cancel(self, ctrl_id: Any) -> CtrlRecord:
        record = self.get(ctrl_id)
        if record.ctrl_state is not CtrlState.WAITING:
            raise CtrlRefused(409, f"任务已发送或已结束，不能取消 (ctrl_id {ctrl_id})")
        self.move(record, CtrlState.CANCELLED, self._clock(), feedback="任务被取消")
        return record

    def retry(self, ctrl_id: Any) -> CtrlRecord:
        record = self.get(ctrl_id)
        if not record.ctrl_state.is_final:
            raise CtrlRefused(409, f"任务未结束，不能重试 (ctrl_id {ctrl_id})")
        now = self._clock()
        if record.ctrl_timeout <= now:
            span = max(record.ctrl_timeout - record.ctrl_time, timedelta(hours=1))
            record.ctrl_timeout = now + span
        record.return_data = "{}"
        self._pending[record.ctrl_id] = record
        self.move(record, CtrlState.WAITING, now, feedback="")
        return record

    def find(self, body: Any) -> list[CtrlRecord]:
        if body is not None and not isinstance(body, dict):
            raise CtrlRefused(400, "the filter must be a JSON object")
        try:
            where = CtrlFilter.model_validate(body or {})
        except ValidationError as exc:
            raise CtrlRefused(422, str(exc.errors()[0]["msg"])) from None
        start = self._time(where.ctrl_time_from, "ctrl_time_from")
        end = self._time(where.ctrl_time_to, "ctrl_time_to")
        if end is not None and len((where.ctrl_time_to or "").strip()) == 10:
            end += timedelta(days=1) - timedelta(microseconds=1)  # a date alone: the whole day
        conditions = {
            "upper_ctrl_id": where.upper_ctrl_id or None,
            "processor_name": where.processor_name or None,
            "ctrl_define_no": where.ctrl_define_no or None,
            "target_comm_no": where.target_comm_no or None,
            "target_devtype": where.target_devtype or None,
            "ctrl_state": where.ctrl_state,
            "ctrl_type": where.ctrl_type or None,
        }
        wanted = {k: v for k, v in conditions.items() if v is not None}
        return [
            r
            for r in self.records.values()
            if all(getattr(r, k) == v for k, v in wanted.items())
            and (start is None or r.ctrl_time >= start)
            and (end is None or r.ctrl_time <= end)
        ]

    def detail(self, record: CtrlRecord) -> str:
        wire = record.wire(self.zone)
        lines = [
            f"事物流水号:{record.ctrl_id} ",
            f"处理程序标识:{record.processor_name} ",
            f"自定义命令编号:{record.ctrl_define_no} ",
            f"通信编号:{record.target_comm_no} ",
            f"设备类型:{'表计' if record.target_devtype == TARGET_DEVTYPE_METER else 'RTU'} ",
            f"任务类型:{record.ctrl_type} ",
            f"生成时间:{wire['ctrl_time'].replace('T', ' ')} ",
            f"超时时间:{wire['ctrl_timeout'].replace('T', ' ')} ",
            f"任务状态:{int(record.ctrl_state)} ({STATE_TEXTS[record.ctrl_state]}) ",
            f"反馈信息:{record.ctrl_feedback_msg} ",
            "任务数据:",
            f" {record.ctrl_data} ",
            "响应数据:",
            f" {record.return_data} ",
        ]
        return "</br>".join(lines) + "</br>"

    # -- the state machine -------------------------------------------------------------
    def move(
        self,
        record: CtrlRecord,
        state: CtrlState,
        at: datetime,
        *,
        feedback: str | None = None,
        return_data: str | None = None,
    ) -> None:
        record.ctrl_state = state
        if feedback is not None:
            record.ctrl_feedback_msg = feedback
        if return_data is not None:
            record.return_data = return_data
        if state.is_final:
            self._pending.pop(record.ctrl_id, None)
        record.history.append((at, state))
        self._on_change(record, at)

    def waiting_for(self, comm_no: str) -> list[CtrlRecord]:
        return sorted(
            (
                r
                for r in self._pending.values()
                if r.target_comm_no == comm_no and r.ctrl_state is CtrlState.WAITING
            ),
            key=lambda r: r.ctrl_id,
        )

    def expire(self, now: datetime) -> None:
        """Commands whose ctrl_timeout has come without an answer: timed out (6)."""
        due = sorted(
            (r for r in self._pending.values() if r.ctrl_timeout <= now),
            key=lambda r: (r.ctrl_timeout, r.ctrl_id),
        )
        for record in due:
            self.move(
                record, CtrlState.TIMED_OUT, record.ctrl_timeout, feedback="设备未在超时前应答"
            )

    def deliver(self, comm_no: str, at: datetime, execute: Execute, faults: Faults) -> None:
        """The meter woke at `at`: send it its waiting commands, in order."""
        for record in self.waiting_for(comm_no):
            if record.ctrl_timeout <= at:
                self.move(
                    record, CtrlState.TIMED_OUT, record.ctrl_timeout, feedback="设备未在超时前应答"
                )
                continue
            self._send(record, at, execute, faults.command_fate())
            at += 3 * STEP

    def _send(self, record: CtrlRecord, at: datetime, execute: Execute, fate: str | None) -> None:
        if fate == "cmd_send_failed":
            self.move(record, CtrlState.SEND_FAILED, at, feedback="发送数据失败")
            return
        self.move(record, CtrlState.SENT, at)
        if fate == "cmd_error":
            self.move(record, CtrlState.OTHER_ERROR, at + STEP, feedback="处理程序异常")
            return
        if fate == "cmd_no_answer":
            return  # stays sent until its timeout
        if fate == "cmd_failed":
            self.move(record, CtrlState.ACKNOWLEDGED, at + STEP)
            self.move(record, CtrlState.FAILED, at + 2 * STEP, feedback="设备执行失败")
            return
        result = execute(record.ctrl_type, record.param, at)
        record.applied += 1
        self.move(record, CtrlState.ACKNOWLEDGED, at + STEP)
        if fate == "applied_timeout":
            return  # applied, but the answer is lost: timed out at ctrl_timeout
        if isinstance(result, Nak):
            record.applied -= 1
            self.move(record, CtrlState.FAILED, at + 2 * STEP, feedback=result.reason)
            return
        return_data = write_return_data(result)
        self.move(record, CtrlState.SUCCESS, at + 2 * STEP, feedback="", return_data=return_data)
