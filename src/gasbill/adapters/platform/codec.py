"""iotmeterv1 codec: command intents <-> `ctrl_type`/`ctrl_data`, results <-> `return_data`.

Both ways for every command of spec §5.4, so that the dispatcher and the
simulator speak the same structures. Numbers never pass through float:
`ctrl_data` is written with each Decimal's own digits, and replies are read
with `parse_float=Decimal`. A returned double is read through its text and
quantized to 0.001. A reply that is missing or not the expected structure
decodes to `Unreadable`, never to a guessed success.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.adapters.platform.codec_values import RAW_LIMIT as RAW_LIMIT
from gasbill.adapters.platform.codec_values import Bad as _Bad
from gasbill.adapters.platform.codec_values import exact as _exact
from gasbill.adapters.platform.codec_values import integer as _integer
from gasbill.adapters.platform.codec_values import json_object as _object
from gasbill.adapters.platform.codec_values import optional as _optional
from gasbill.adapters.platform.codec_values import raw_text as _raw
from gasbill.adapters.platform.codec_values import returned as _returned
from gasbill.adapters.platform.jsontext import decimal_text, dumps_exact
from gasbill.adapters.platform.times import format_platform_time, parse_platform_time
from gasbill.adapters.platform.wire import (
    CtrlDataRecord,
    NewCtrlData,
)
from gasbill.domain.commands import (
    LADDERS,
    UINT32_MAX,
    Command,
    CommandResult,
    CtrlType,
    EmptyReturn,
    GetChargeState,
    GetPrice,
    LadderPrice,
    OpenAccount,
    OpenAccountReturn,
    ReleaseForce,
    RemainParam,
    RemoteCharge,
    RemoteChargeReturn,
    RemoteChargeState,
    SetCumulant,
    SetPrice,
    SetRemain,
    SetValveOff,
    SetValveOn,
    Unreadable,
)
from gasbill.domain.errors import GasbillError, TariffNotEncodable
from gasbill.domain.money import Money, Price, Volume
from gasbill.service.ports import OutgoingCommand


class CodecError(ValueError):
    """`ctrl_data` that does not hold the command its `ctrl_type` names."""


_EMPTY_COMMANDS: dict[
    CtrlType, type[GetPrice | GetChargeState | SetValveOn | SetValveOff | ReleaseForce]
] = {
    CtrlType.GET_PRICE: GetPrice,
    CtrlType.GET_CHARGE_STATE: GetChargeState,
    CtrlType.SET_VALVE_ON: SetValveOn,
    CtrlType.SET_VALVE_OFF: SetValveOff,
    CtrlType.RELEASE_FORCE: ReleaseForce,
}
_EMPTY_RETURNS = frozenset(
    {
        CtrlType.SET_PRICE,
        CtrlType.SET_VALVE_ON,
        CtrlType.SET_VALVE_OFF,
        CtrlType.SET_CUMULANT,
        CtrlType.RELEASE_FORCE,
    }
)


def _ctrl_type(text: str | None) -> CtrlType | None:
    try:
        return CtrlType((text or "").strip())
    except ValueError:
        return None


def _ladder_text(volume: Volume) -> str:
    if not volume.is_whole() or not 0 <= volume.value <= UINT32_MAX:
        raise TariffNotEncodable(
            f"openaccount ladder {volume.value} m³ is not a whole UInt32 (whole m³ only)"
        )
    return str(int(volume.value))


def _ladder_fields(ladder: LadderPrice, ladder_text: Callable[[Volume], str]) -> list[str]:
    fields: list[str] = []
    for k, price in enumerate(ladder.prices, start=1):
        fields.append(f'"price{k}":{decimal_text(price.value)}')
        if k <= LADDERS:
            fields.append(f'"ladder{k}":{ladder_text(ladder.ladders[k - 1])}')
    return fields


# ladders written (by id: the ladder and its ctrl_data), see Codec._ladder_price
_LADDER_PRICES: dict[int, tuple[LadderPrice, str]] = {}


@lru_cache(maxsize=256)
def _platform_time(instant: datetime, zone: ZoneInfo) -> str:
    """`format_platform_time`, once per instant: a batch's commands share their times."""
    return format_platform_time(instant, zone)


def _money(value: Money) -> str:
    return decimal_text(value.value)


def _obj(*fields: str) -> str:
    return "{" + ",".join(fields) + "}"


class Codec:
    """The iotmeterv1 codec; `zone` is the platform's zone for its DateTime fields."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    # -- DateTime ------------------------------------------------------------------
    def _datetime_text(self, day: date) -> str:
        return f"{day.isoformat()}T00:00:00"

    def _date(self, obj: Mapping[str, Any], key: str) -> date:
        value = obj.get(key)
        if not isinstance(value, str):
            raise _Bad(f"{key} is missing or not a date-time text")
        try:
            return parse_platform_time(value, self.zone).astimezone(self.zone).date()
        except ValueError as exc:
            raise _Bad(str(exc)) from None

    # -- commands: intent -> wire ----------------------------------------------------
    def encode(self, command: Command) -> tuple[str, str]:
        """`(ctrl_type, ctrl_data)`; `ctrl_data` is a string holding JSON."""
        return command.ctrl_type.value, self._ctrl_data(command)

    def _ctrl_data(self, command: Command) -> str:
        if isinstance(command, SetPrice):
            return self._ladder_price(command.ladder)
        if isinstance(command, SetRemain):
            return _obj(f'"remain_value":{_money(command.value)}')
        if isinstance(command, RemoteCharge):
            return _obj(
                f'"charge_value":{_money(command.charge)}',
                f'"total_value":{_money(command.total)}',
                f'"charge_times":{command.times}',
            )
        if isinstance(command, OpenAccount):
            return _obj(
                f'"charge_value":{_money(command.charge)}',
                f'"total_value":{_money(command.total)}',
                *_ladder_fields(command.ladder, _ladder_text),
                f'"cycle_start_time":"{self._datetime_text(command.cycle_start)}"',
                f'"cycle_month":{command.cycle_months}',
            )
        if isinstance(command, SetCumulant):
            return _obj(
                f'"std_sum":{decimal_text(command.std_sum.value)}',
                f'"work_sum":{decimal_text(command.work_sum.value)}',
            )
        return "{}"

    def _ladder_price(self, ladder: LadderPrice) -> str:
        # a campaign sends one of a handful of ladders (the same objects: the stored
        # intents are decoded once per text) to thousands of meters: each written once.
        # By identity, not equality: 2.61 and 2.610 are equal prices, not the same text.
        known = _LADDER_PRICES.get(id(ladder))
        if known is not None and known[0] is ladder:
            return known[1]
        text = _obj(
            *_ladder_fields(ladder, lambda v: decimal_text(v.value)),
            f'"cycle_start":"{self._datetime_text(ladder.cycle_start)}"',
            f'"cycle_month":{ladder.cycle_months}',
        )
        if len(_LADDER_PRICES) >= 256:
            _LADDER_PRICES.clear()
        _LADDER_PRICES[id(ladder)] = (ladder, text)  # held: its id is not reused meanwhile
        return text

    def new_ctrl_data(
        self,
        command: Command,
        *,
        ctrl_define_no: str,
        target_comm_no: str,
        ctrl_time: datetime,
        ctrl_timeout: datetime,
        upper_ctrl_id: int | None = None,
    ) -> NewCtrlData:
        """The `Add`/`AddMulti` body of a command, times in the platform's zone."""
        ctrl_type, ctrl_data = self.encode(command)
        return NewCtrlData(
            ctrl_define_no=ctrl_define_no,
            target_comm_no=target_comm_no,
            ctrl_time=_platform_time(ctrl_time, self.zone),
            ctrl_timeout=_platform_time(ctrl_timeout, self.zone),
            ctrl_type=ctrl_type,
            ctrl_data=ctrl_data,
            upper_ctrl_id=upper_ctrl_id,
        )

    def outgoing(self, command: OutgoingCommand) -> NewCtrlData:
        """The `AddMulti` item of a command the outbox hands over: the only place our
        commands become the wire's `ctrl_type` and `ctrl_data`."""
        return self.new_ctrl_data(
            command.intent,
            ctrl_define_no=command.define_no,
            target_comm_no=command.meter_comm_no,
            ctrl_time=command.at,
            ctrl_timeout=command.timeout_at,
            upper_ctrl_id=command.command_id,
        )

    # -- commands: wire -> intent (the simulator's side) -------------------------------
    def decode_command(self, ctrl_type: str | None, ctrl_data: Any) -> Command:
        kind = _ctrl_type(ctrl_type)
        if kind is None:
            raise CodecError(f"unknown ctrl_type {ctrl_type!r}")
        try:
            obj = _object(ctrl_data)
            if kind in _EMPTY_COMMANDS:
                return _EMPTY_COMMANDS[kind]()
            if kind is CtrlType.SET_PRICE:
                return SetPrice(self._read_ladder(obj, _exact, "cycle_start"))
            if kind is CtrlType.SET_REMAIN:
                return SetRemain(Money(_exact(obj, "remain_value")))
            if kind is CtrlType.REMOTE_CHARGE:
                return RemoteCharge(
                    Money(_exact(obj, "charge_value")),
                    Money(_exact(obj, "total_value")),
                    _integer(obj, "charge_times"),
                )
            if kind is CtrlType.OPEN_ACCOUNT:
                return OpenAccount.of(
                    Money(_exact(obj, "charge_value")),
                    Money(_exact(obj, "total_value")),
                    self._read_ladder(obj, _exact, "cycle_start_time"),
                )
            return SetCumulant(Volume(_exact(obj, "std_sum")), Volume(_exact(obj, "work_sum")))
        except (_Bad, GasbillError) as exc:
            raise CodecError(f"{kind.value}: ctrl_data {_raw(ctrl_data)!r}: {exc}") from None

    def command_of(self, record: CtrlDataRecord) -> Command:
        return self.decode_command(record.ctrl_type, record.ctrl_data)

    # -- results: wire -> result ----------------------------------------------------------
    def decode_result(self, ctrl_type: str | None, return_data: Any) -> CommandResult:
        """The device's reply, or `Unreadable` with the reason: never a guessed success."""
        kind = _ctrl_type(ctrl_type)
        if kind is None:
            return Unreadable(f"unknown ctrl_type {ctrl_type!r}", _raw(return_data))
        try:
            obj = _object(return_data)
            return self._result(kind, obj)
        except (_Bad, GasbillError) as exc:
            return Unreadable(f"{kind.value} return_data: {exc}", _raw(return_data))

    def result_of(self, record: CtrlDataRecord) -> CommandResult:
        return self.decode_result(record.ctrl_type, record.return_data)

    def _result(self, kind: CtrlType, obj: dict[str, Any]) -> CommandResult:
        if kind in _EMPTY_RETURNS:
            return EmptyReturn()
        if kind is CtrlType.GET_PRICE:
            return self._read_ladder(obj, _returned, "cycle_start")
        if kind is CtrlType.SET_REMAIN:
            return RemainParam(Money(_returned(obj, "remain_value")))
        if kind is CtrlType.REMOTE_CHARGE:
            remain = _optional(_returned, obj, "remain")
            return RemoteChargeReturn(
                success=_integer(obj, "success"),
                reason=_optional(_integer, obj, "reason"),
                calc_type=_optional(_integer, obj, "calc_type"),
                remain=None if remain is None else Money(remain),
            )
        if kind is CtrlType.GET_CHARGE_STATE:
            return RemoteChargeState(
                card_charge_times=_integer(obj, "card_charge_times"),
                card_charge_value=Money(_returned(obj, "card_charge_value")),
                card_total_value=Money(_returned(obj, "card_total_value")),
                remote_charge_times=_integer(obj, "remote_charge_times"),
                remote_charge_value=Money(_returned(obj, "remote_charge_value")),
                remote_total_value=Money(_returned(obj, "remote_total_value")),
            )
        # CtrlType.OPEN_ACCOUNT: every other type is handled above
        remain = _optional(_returned, obj, "remain")
        reason_msg = obj.get("reason_msg")
        return OpenAccountReturn(
            success=_integer(obj, "success"),
            reason=_optional(_integer, obj, "reason"),
            reason_msg=reason_msg if isinstance(reason_msg, str) else "",
            remain=None if remain is None else Money(remain),
        )

    def _read_ladder(
        self,
        obj: Mapping[str, Any],
        read: Callable[[Mapping[str, Any], str], Decimal],
        start_key: str,
    ) -> LadderPrice:
        prices = tuple(Price(read(obj, f"price{k}")) for k in range(1, LADDERS + 2))
        ladders = tuple(Volume(read(obj, f"ladder{k}")) for k in range(1, LADDERS + 1))
        return LadderPrice(
            prices, ladders, self._date(obj, start_key), _integer(obj, "cycle_month")
        )

    # -- results: result -> wire (the simulator's side) -----------------------------------
    def encode_result(self, result: CommandResult) -> str:
        """`return_data` as a string holding JSON."""
        if isinstance(result, Unreadable):
            raise CodecError("an Unreadable result has no wire form")
        if isinstance(result, EmptyReturn):
            return "{}"
        if isinstance(result, LadderPrice):
            return self._ladder_price(result)
        if isinstance(result, RemainParam):
            return _obj(f'"remain_value":{_money(result.remain_value)}')
        if isinstance(result, RemoteChargeState):
            return _obj(
                f'"card_charge_times":{result.card_charge_times}',
                f'"card_charge_value":{_money(result.card_charge_value)}',
                f'"card_total_value":{_money(result.card_total_value)}',
                f'"remote_charge_times":{result.remote_charge_times}',
                f'"remote_charge_value":{_money(result.remote_charge_value)}',
                f'"remote_total_value":{_money(result.remote_total_value)}',
            )
        fields = [f'"success":{result.success}']
        if result.reason is not None:
            fields.append(f'"reason":{result.reason}')
        if isinstance(result, RemoteChargeReturn):
            if result.calc_type is not None:
                fields.append(f'"calc_type":{result.calc_type}')
        else:
            fields.append(f'"reason_msg":{dumps_exact(result.reason_msg)}')
        if result.remain is not None:
            fields.append(f'"remain":{_money(result.remain)}')
        return _obj(*fields)
