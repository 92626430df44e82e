"""Commands to the meters as intents, and what the meters answer (spec §5.4).

Pure values: the platform adapter turns an intent into `ctrl_type` and
`ctrl_data` and a `return_data` back into one of the result types here. The
service layer decides what a result means for the ledger (DESIGN §8): a
top-up is applied only on `ctrl_state` 3 *and* its own success flag.

Every decimal a command carries must fit the wire's decimal(18,3): at most
3 decimal places and 15 digits before the point.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import ClassVar

from gasbill.domain.command_results import (
    CHARGE_APPLIED,
    CHARGE_REFUSED,
    OPEN_APPLIED,
    OPEN_REFUSED,
    EmptyReturn,
    OpenAccountReturn,
    Outcome,
    RemoteChargeReturn,
    RemoteChargeState,
    Unreadable,
)
from gasbill.domain.cycles import MAX_CYCLE_MONTHS, MIN_CYCLE_MONTHS
from gasbill.domain.errors import InvalidAmount, TariffNotEncodable
from gasbill.domain.money import MILLI, Money, Price, Volume
from gasbill.domain.tariff import MAX_METER_PRICES, TariffVersion, check_version_encodable

# the answers live in domain/command_results.py; everyone reads them from here
__all__ = [
    "CHARGE_APPLIED",
    "CHARGE_REFUSED",
    "INT32_MAX",
    "LADDERS",
    "OPEN_APPLIED",
    "OPEN_REFUSED",
    "PROCESSOR_NAME",
    "TARGET_DEVTYPE_METER",
    "UINT32_MAX",
    "WIRE_LIMIT",
    "Command",
    "CommandResult",
    "CtrlState",
    "CtrlType",
    "EmptyReturn",
    "GetChargeState",
    "GetPrice",
    "LadderPrice",
    "OpenAccount",
    "OpenAccountReturn",
    "Outcome",
    "ReleaseForce",
    "RemainParam",
    "RemoteCharge",
    "RemoteChargeReturn",
    "RemoteChargeState",
    "SetCumulant",
    "SetPrice",
    "SetRemain",
    "SetValveOff",
    "SetValveOn",
    "Unreadable",
    "ladder_price_for",
    "wire_decimal",
]

LADDERS = MAX_METER_PRICES - 1  # ladder1..ladder4
WIRE_LIMIT = Decimal(10) ** 15  # decimal(18,3): 15 digits before the point
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1


class CtrlType(enum.StrEnum):
    """The iotmeterv1 `ctrl_type` strings."""

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

    @property
    def is_prepay(self) -> bool:
        """Prepay commands: one in flight per meter (DESIGN §8)."""
        return self.value.startswith("iotmeterv1.prepay.")


PROCESSOR_NAME = "iotmeterv1"
TARGET_DEVTYPE_METER = 1


class CtrlState(enum.IntEnum):
    """`ctrl_state` of a command record (spec §5.1)."""

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
        """3–7 and 99; only a Retry we asked for sends a command back to 0."""
        return self not in (CtrlState.WAITING, CtrlState.SENT, CtrlState.ACKNOWLEDGED)


# -- value checks -----------------------------------------------------------------


def wire_decimal(value: Decimal, what: str) -> Decimal:
    """Refuse a decimal the wire's decimal(18,3) cannot carry exactly."""
    if not value.is_finite():
        raise InvalidAmount(f"{what} must be finite, not {value}")
    if abs(value) >= WIRE_LIMIT:
        raise InvalidAmount(f"{what} {value} has more than 15 digits before the point")
    if value != value.quantize(MILLI):
        raise InvalidAmount(f"{what} {value} has more than 3 decimal places")
    return value


def _int_in(value: int, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidAmount(f"{what} must be an int in {low}..{high}, not {value!r}")
    return value


def _whole_ladders(ladders: tuple[Volume, ...], where: str) -> None:
    for k, ladder in enumerate(ladders, start=1):
        if not ladder.is_whole() or not 0 <= ladder.value <= UINT32_MAX:
            raise TariffNotEncodable(
                f"{where}: ladder{k} is {ladder.value} m³; open_account_param ladderN is UInt32, "
                "whole m³ only"
            )


def _ascending(ladders: tuple[Volume, ...], where: str) -> None:
    for k in range(1, len(ladders)):
        if ladders[k] < ladders[k - 1]:
            raise TariffNotEncodable(f"{where}: ladder{k + 1} is below ladder{k}")


def _cycle_months(months: int, where: str) -> None:
    _int_in(months, MIN_CYCLE_MONTHS, MAX_CYCLE_MONTHS, f"{where}: cycle_months")


# -- structures -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LadderPrice:
    """`ladder_price`: 5 prices, 4 cumulative thresholds per cycle, the cycle.

    `cycle_start` is the cycle's first local day (the wire's DateTime at
    00:00). As the meter reports it, so shape only is checked here; what we
    send is checked by `SetPrice` and `OpenAccount`.
    """

    prices: tuple[Price, ...]
    ladders: tuple[Volume, ...]
    cycle_start: date
    cycle_months: int

    def __post_init__(self) -> None:
        if len(self.prices) != MAX_METER_PRICES or len(self.ladders) != LADDERS:
            raise InvalidAmount(
                f"ladder_price needs {MAX_METER_PRICES} prices and {LADDERS} ladders, "
                f"got {len(self.prices)} and {len(self.ladders)}"
            )
        for k, price in enumerate(self.prices, start=1):
            wire_decimal(price.value, f"price{k}")
            if price.is_negative():
                raise InvalidAmount(f"price{k} must not be negative")
        for k, ladder in enumerate(self.ladders, start=1):
            wire_decimal(ladder.value, f"ladder{k}")
            if ladder.is_negative():
                raise InvalidAmount(f"ladder{k} must not be negative")
        _int_in(self.cycle_months, 0, INT32_MAX, "cycle_month")

    def is_whole(self) -> bool:
        return all(ladder.is_whole() for ladder in self.ladders)


@dataclass(frozen=True, slots=True)
class RemainParam:
    """`remain_param`: the balance on the meter (yuan; money-mode meters only)."""

    remain_value: Money

    def __post_init__(self) -> None:
        wire_decimal(self.remain_value.value, "remain_value")


# -- intents ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetPrice:
    ctrl_type: ClassVar[CtrlType] = CtrlType.SET_PRICE
    ladder: LadderPrice

    def __post_init__(self) -> None:
        _ascending(self.ladder.ladders, "setprice")
        _cycle_months(self.ladder.cycle_months, "setprice")


@dataclass(frozen=True, slots=True)
class GetPrice:
    ctrl_type: ClassVar[CtrlType] = CtrlType.GET_PRICE


@dataclass(frozen=True, slots=True)
class SetRemain:
    ctrl_type: ClassVar[CtrlType] = CtrlType.SET_REMAIN
    value: Money

    def __post_init__(self) -> None:
        wire_decimal(self.value.value, "remain_value")


@dataclass(frozen=True, slots=True)
class RemoteCharge:
    """A top-up: `times` and `total` count remote top-ups only, this one included."""

    ctrl_type: ClassVar[CtrlType] = CtrlType.REMOTE_CHARGE
    charge: Money
    total: Money
    times: int

    def __post_init__(self) -> None:
        wire_decimal(self.charge.value, "charge_value")
        wire_decimal(self.total.value, "total_value")
        if self.charge.value <= 0:
            raise InvalidAmount(f"charge_value must be positive, not {self.charge.value}")
        if self.total < self.charge:
            raise InvalidAmount(
                f"total_value {self.total.value} is below this top-up {self.charge.value}"
            )
        _int_in(self.times, 1, INT32_MAX, "charge_times")


@dataclass(frozen=True, slots=True)
class GetChargeState:
    ctrl_type: ClassVar[CtrlType] = CtrlType.GET_CHARGE_STATE


@dataclass(frozen=True, slots=True)
class OpenAccount:
    """`open_account_param`: first top-up, prices, whole-m³ ladders, the cycle."""

    ctrl_type: ClassVar[CtrlType] = CtrlType.OPEN_ACCOUNT
    charge: Money
    total: Money
    prices: tuple[Price, ...]
    ladders: tuple[Volume, ...]
    cycle_start: date
    cycle_months: int

    def __post_init__(self) -> None:
        wire_decimal(self.charge.value, "charge_value")
        wire_decimal(self.total.value, "total_value")
        if self.charge.is_negative() or self.total < self.charge:
            raise InvalidAmount(
                f"openaccount needs 0 <= charge_value <= total_value, "
                f"got {self.charge.value} and {self.total.value}"
            )
        _ = self.ladder  # checks the prices and the shape
        _whole_ladders(self.ladders, "openaccount")
        _ascending(self.ladders, "openaccount")
        _cycle_months(self.cycle_months, "openaccount")

    @property
    def ladder(self) -> LadderPrice:
        return LadderPrice(self.prices, self.ladders, self.cycle_start, self.cycle_months)

    @classmethod
    def of(cls, charge: Money, total: Money, ladder: LadderPrice) -> OpenAccount:
        return cls(
            charge, total, ladder.prices, ladder.ladders, ladder.cycle_start, ladder.cycle_months
        )


@dataclass(frozen=True, slots=True)
class SetValveOn:
    ctrl_type: ClassVar[CtrlType] = CtrlType.SET_VALVE_ON


@dataclass(frozen=True, slots=True)
class SetValveOff:
    ctrl_type: ClassVar[CtrlType] = CtrlType.SET_VALVE_OFF


@dataclass(frozen=True, slots=True)
class SetCumulant:
    ctrl_type: ClassVar[CtrlType] = CtrlType.SET_CUMULANT
    std_sum: Volume
    work_sum: Volume

    def __post_init__(self) -> None:
        wire_decimal(self.std_sum.value, "std_sum")
        wire_decimal(self.work_sum.value, "work_sum")


@dataclass(frozen=True, slots=True)
class ReleaseForce:
    ctrl_type: ClassVar[CtrlType] = CtrlType.RELEASE_FORCE


Command = (
    SetPrice
    | GetPrice
    | SetRemain
    | RemoteCharge
    | GetChargeState
    | OpenAccount
    | SetValveOn
    | SetValveOff
    | SetCumulant
    | ReleaseForce
)

CommandResult = (
    LadderPrice
    | RemainParam
    | RemoteChargeReturn
    | RemoteChargeState
    | OpenAccountReturn
    | EmptyReturn
    | Unreadable
)


# -- from a tariff ------------------------------------------------------------------


def ladder_price_for(
    version: TariffVersion,
    persons: int | None,
    *,
    month: int,
    share: tuple[int, int] = (1, 1),
    cycle_start: date | None = None,
    tariff_id: str = "",
) -> LadderPrice:
    """The `ladder_price` a self-billing meter gets for a tariff version.

    `month` (1–12, local) picks the season's prices; `share` is the opening
    proration (numerator, denominator) as rating computes it; `cycle_start`
    defaults to the version's cycle anchor. The version's own thresholds must
    be whole m³ (refused otherwise); after the household bonus and proration
    they are rounded down to whole m³, exactly as rating's shadow does.
    Unused tiers repeat the last price and the last threshold.
    """
    check_version_encodable(tariff_id, version, persons)
    numerator, denominator = share
    if not 0 < numerator <= denominator:
        raise InvalidAmount(f"proration share must be 0 < n <= d, not {numerator}/{denominator}")
    prices = version.prices_in_month(month)
    litres = [t.litres * numerator // denominator for t in version.thresholds_for(persons)]
    ladders = tuple(Volume.of_litres(t - t % 1000) for t in litres)
    padded_prices = prices + (prices[-1],) * (MAX_METER_PRICES - len(prices))
    last = ladders[-1] if ladders else Volume.zero()
    padded_ladders = ladders + (last,) * (LADDERS - len(ladders))
    return LadderPrice(
        padded_prices,
        padded_ladders,
        version.cycle.anchor if cycle_start is None else cycle_start,
        version.cycle.months,
    )
