"""The vendor's remote-control data, read from its document (§4.1, §4.3, §4.5.3) alone.

What a command record holds, the task states and their texts, the iotmeterv1
command types, and the C# classes that `ctrl_data` and `return_data` carry:
`ladder_price`, `remain_param`, `remote_charge_param`, `remote_charge_return`,
`remote_charge_state`, `open_account_param`, `open_account_return`,
`cumulant_param`. Each is read from `ctrl_data` (a JSON object, or a string
holding one, as the samples send `"ctrl_data":"{}"`) and written to
`return_data` as a C# serializer would: every field, in declared order,
`double` as a C# double, `DateTime` as `YYYY-MM-DDTHH:MM:SS`.

Where C# would quietly default a missing field to 0, the simulated platform
refuses the command (422): a field the application forgot must show.
Money and volume are held to 0.001 (the wire's decimal(18,3)); finer values
are refused. Unknown fields are ignored, as a C# deserializer ignores them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from iotsim.jsonwire import Double, NotJson, read_json, write_json
from iotsim.times import BadTime, read_day, write_day

PROCESSOR_NAME = "iotmeterv1"  # §4.3.1
TARGET_DEVTYPE_METER = 1
UINT32_MAX = 4_294_967_295
CHARGE_SUCCESS = 0xAA  # remote_charge_return.success: 0xaa 充值成功
CHARGE_FAILURE = 0xBB  # 0xbb 充值失败
OPEN_SUCCESS = 0  # open_account_return.success: 0 成功, 1 失败
OPEN_FAILURE = 1
LADDERS = 4  # ladder1..ladder4, price1..price5
MILLI = Decimal("0.001")


class CtrlState(enum.IntEnum):
    """任务状态 (§4.1)."""

    WAITING = 0
    SENT = 1
    ACKNOWLEDGED = 2
    SUCCESS = 3
    FAILED = 4
    CANCELLED = 5
    TIMED_OUT = 6
    SEND_FAILED = 7
    OTHER_ERROR = 99

    @property
    def is_final(self) -> bool:
        return self not in (CtrlState.WAITING, CtrlState.SENT, CtrlState.ACKNOWLEDGED)


STATE_TEXTS = {
    CtrlState.WAITING: "等待发送",
    CtrlState.SENT: "已经发送",
    CtrlState.ACKNOWLEDGED: "已经应答",
    CtrlState.SUCCESS: "任务成功",
    CtrlState.FAILED: "任务失败",
    CtrlState.CANCELLED: "任务被取消",
    CtrlState.TIMED_OUT: "任务超时",
    CtrlState.SEND_FAILED: "发送数据失败",
    CtrlState.OTHER_ERROR: "其他错误",
}

SET_PRICE = "iotmeterv1.prepay.setprice"
GET_PRICE = "iotmeterv1.prepay.getprice"
SET_REMAIN = "iotmeterv1.prepay.setremain"
REMOTE_CHARGE = "iotmeterv1.prepay.remotecharge"
GET_CHARGE_STATE = "iotmeterv1.prepay.getchargestate"
OPEN_ACCOUNT = "iotmeterv1.prepay.openaccount"
SET_VALVE_ON = "iotmeterv1.common.setvalveon"
SET_VALVE_OFF = "iotmeterv1.common.setvalveoff"
SET_CUMULANT = "iotmeterv1.common.setcumulant"
RELEASE_FORCE = "iotmeterv1.common.releaseforce"


class BadParam(ValueError):
    """`ctrl_data` that does not hold the structure its ctrl_type takes."""


# -- the structures -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Empty:
    """`"{}"`: the commands and replies that carry nothing."""

    def wire(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class LadderPrice:
    """ladder_price: price1..5 and ladder1..4 (decimal), cycle_start, cycle_month."""

    prices: tuple[Decimal, ...]  # yuan per m³
    ladders: tuple[Decimal, ...]  # m³, cumulative within the cycle
    cycle_start: date
    cycle_month: int

    def wire(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for k in range(1, LADDERS + 2):
            fields[f"price{k}"] = _decimal_out(self.prices[k - 1])
            if k <= LADDERS:
                fields[f"ladder{k}"] = _decimal_out(self.ladders[k - 1])
        fields["cycle_start"] = write_day(self.cycle_start)
        fields["cycle_month"] = self.cycle_month
        return fields


@dataclass(frozen=True, slots=True)
class RemainParam:
    """remain_param: remain_value (double)."""

    remain_value: Decimal

    def wire(self) -> dict[str, Any]:
        return {"remain_value": Double(self.remain_value)}


@dataclass(frozen=True, slots=True)
class RemoteChargeParam:
    """remote_charge_param: charge_value, total_value (double), charge_times (int)."""

    charge_value: Decimal
    total_value: Decimal
    charge_times: int


@dataclass(frozen=True, slots=True)
class RemoteChargeReturn:
    """remote_charge_return: success 0xaa/0xbb, reason, calc_type, remain (double)."""

    success: int
    reason: int
    calc_type: int
    remain: Decimal

    def wire(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "reason": self.reason,
            "calc_type": self.calc_type,
            "remain": Double(self.remain),
        }


@dataclass(frozen=True, slots=True)
class RemoteChargeState:
    """remote_charge_state: card and remote top-ups, count, last and cumulative."""

    card_charge_times: int
    card_charge_value: Decimal
    card_total_value: Decimal
    remote_charge_times: int
    remote_charge_value: Decimal
    remote_total_value: Decimal

    def wire(self) -> dict[str, Any]:
        return {
            "card_charge_times": self.card_charge_times,
            "card_charge_value": Double(self.card_charge_value),
            "card_total_value": Double(self.card_total_value),
            "remote_charge_times": self.remote_charge_times,
            "remote_charge_value": Double(self.remote_charge_value),
            "remote_total_value": Double(self.remote_total_value),
        }


@dataclass(frozen=True, slots=True)
class OpenAccountParam:
    """open_account_param: the first charge and a ladder with UInt32 ladders."""

    charge_value: Decimal
    total_value: Decimal
    ladder: LadderPrice  # from price1..5, ladder1..4, cycle_start_time, cycle_month


@dataclass(frozen=True, slots=True)
class OpenAccountReturn:
    """open_account_return: success 0/1, reason, reason_msg, remain (double)."""

    success: int
    reason: int
    reason_msg: str
    remain: Decimal

    def wire(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "reason": self.reason,
            "reason_msg": self.reason_msg,
            "remain": Double(self.remain),
        }


@dataclass(frozen=True, slots=True)
class CumulantParam:
    """cumulant_param: std_sum, work_sum (double)."""

    std_sum: Decimal
    work_sum: Decimal


Param = Empty | LadderPrice | RemainParam | RemoteChargeParam | OpenAccountParam | CumulantParam
Reply = (
    Empty | LadderPrice | RemainParam | RemoteChargeReturn | RemoteChargeState | OpenAccountReturn
)


def write_return_data(reply: Reply) -> str:
    """`return_data` as the platform keeps it: a string holding JSON."""
    return write_json(reply.wire())


# -- reading ctrl_data ---------------------------------------------------------------------------


def _decimal_out(value: Decimal) -> Decimal:
    """A C# decimal keeps its scale; a whole one is still written with a point."""
    exponent = value.as_tuple().exponent
    return value if isinstance(exponent, int) and exponent < 0 else value.quantize(Decimal("0.0"))


def _number(obj: Mapping[str, Any], key: str) -> Decimal:
    if key not in obj or obj[key] is None:
        raise BadParam(f"{key} is missing")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise BadParam(f"{key} is not a JSON number: {value!r}")
    return Decimal(value)


def _amount(obj: Mapping[str, Any], key: str) -> Decimal:
    """Money or volume: at most three places, at most decimal(18,3)."""
    value = _number(obj, key)
    if abs(value) >= 10**15 or value != value.quantize(MILLI):
        raise BadParam(f"{key} {value} is finer than 0.001 or too large for decimal(18,3)")
    if value < 0:
        raise BadParam(f"{key} {value} is negative")
    return value.quantize(MILLI)


def _whole(obj: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = _number(obj, key)
    if value != value.to_integral_value() or not low <= value <= high:
        raise BadParam(f"{key} {value} is not a whole number in {low}..{high}")
    return int(value)


def _day(obj: Mapping[str, Any], key: str, zone: ZoneInfo) -> date:
    value = obj.get(key)
    if not isinstance(value, str):
        raise BadParam(f"{key} is missing or not a DateTime text")
    try:
        return read_day(value, zone)
    except BadTime as exc:
        raise BadParam(f"{key}: {exc}") from None


def _ladder(
    obj: Mapping[str, Any], zone: ZoneInfo, start_key: str, uint_ladders: bool
) -> LadderPrice:
    prices = tuple(_amount(obj, f"price{k}") for k in range(1, LADDERS + 2))
    if uint_ladders:
        ladders = tuple(Decimal(_whole(obj, f"ladder{k}", 0, UINT32_MAX)) for k in range(1, 5))
    else:
        ladders = tuple(_amount(obj, f"ladder{k}") for k in range(1, LADDERS + 1))
    months = _whole(obj, "cycle_month", 0, 1200)
    return LadderPrice(prices, ladders, _day(obj, start_key, zone), months)


def _object(ctrl_data: Any) -> dict[str, Any]:
    if isinstance(ctrl_data, str):
        try:
            ctrl_data = read_json(ctrl_data)
        except NotJson as exc:
            raise BadParam(f"ctrl_data is {exc}") from None
    if not isinstance(ctrl_data, dict):
        raise BadParam(f"ctrl_data is not a JSON object but {type(ctrl_data).__name__}")
    return ctrl_data


def read_ctrl_data(ctrl_type: str, ctrl_data: Any, zone: ZoneInfo) -> Param:
    """The structure `ctrl_type` takes (§4.3.2), read from `ctrl_data`; BadParam if not."""
    if ctrl_type not in CTRL_TYPES:
        raise BadParam(f"unknown ctrl_type {ctrl_type[:200]!r}")
    obj = _object(ctrl_data)
    if ctrl_type == SET_PRICE:
        return _ladder(obj, zone, "cycle_start", uint_ladders=False)
    if ctrl_type == SET_REMAIN:
        return RemainParam(_amount(obj, "remain_value"))
    if ctrl_type == REMOTE_CHARGE:
        return RemoteChargeParam(
            _amount(obj, "charge_value"),
            _amount(obj, "total_value"),
            _whole(obj, "charge_times", 0, 2**31 - 1),
        )
    if ctrl_type == OPEN_ACCOUNT:
        ladder = _ladder(obj, zone, "cycle_start_time", uint_ladders=True)
        return OpenAccountParam(_amount(obj, "charge_value"), _amount(obj, "total_value"), ladder)
    if ctrl_type == SET_CUMULANT:
        return CumulantParam(_amount(obj, "std_sum"), _amount(obj, "work_sum"))
    return Empty()


# ctrl_type -> (ctrl_data structure, return_data structure), as the table of §4.3.2 names them
CTRL_TYPES: dict[str, tuple[str, str]] = {
    SET_PRICE: ("ladder_price", "{}"),
    GET_PRICE: ("{}", "ladder_price"),
    SET_REMAIN: ("remain_param", "remain_param"),
    REMOTE_CHARGE: ("remote_charge_param", "remote_charge_return"),
    GET_CHARGE_STATE: ("{}", "remote_charge_state"),
    OPEN_ACCOUNT: ("open_account_param", "open_account_return"),
    SET_VALVE_ON: ("{}", "{}"),
    SET_VALVE_OFF: ("{}", "{}"),
    SET_CUMULANT: ("cumulant_param", "{}"),
    RELEASE_FORCE: ("{}", "{}"),
}
