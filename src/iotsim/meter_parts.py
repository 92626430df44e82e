"""What a meter is made of, apart from its behaviour: units, codes, its spec, counters, snapshots.

Money in integer millionths of a yuan inside; what the meter reports is
floored to 0.001 yuan, the wire's decimal(18,3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from iotsim.vendor import LadderPrice

MICRO = 1_000_000  # millionths of a yuan in a yuan
PPM = 1_000_000
SECOND = timedelta(seconds=1)
NEVER = datetime.min.replace(tzinfo=UTC)  # placeholders until the first day begins


class AlarmCode(enum.IntEnum):
    LOW_BALANCE = 1  # 余额不足
    MAGNETIC_ATTACK = 2  # 磁攻击


class EventCode(enum.IntEnum):
    VALVE_OPENED = 1
    VALVE_CLOSED = 2
    TOP_UP = 3
    ACCOUNT_OPENED = 4


def micro_of(amount: Decimal) -> int:
    """Yuan (at most 6 places) as integer millionths; refuses anything finer."""
    scaled = amount.scaleb(6)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} yuan is finer than a millionth")
    return int(scaled)


def reported(micro: int) -> Decimal:
    """A balance as the meter reports it: floored to 0.001 yuan."""
    return Decimal(micro // 1000).scaleb(-3)


def litres_text(litres: int) -> Decimal:
    return Decimal(litres).scaleb(-3)


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """What is fixed when the meter is installed (seeded per meter)."""

    comm_no: str
    scale_percent: int  # household size: 100 is the average household
    wake_seconds: int  # its daily wake-up, seconds after local midnight
    factor_permille: int  # working / standard volume
    start_litres: int
    battery_mv: int
    rssi: int
    low_balance_micro: int
    magnetic_attack_ppm: int  # chance per day


@dataclass(frozen=True, slots=True)
class Uplink:
    """What the meter sends the platform: a reading, an alarm or an event (wire body)."""

    kind: Literal["reading", "alarm", "event"]
    at: datetime
    body: dict[str, Any]


@dataclass(slots=True)
class ChargeCounters:
    """Top-ups of one kind: count, last amount, cumulative amount (millionths)."""

    times: int = 0
    last_micro: int = 0
    total_micro: int = 0

    def add(self, micro: int, total_micro: int | None = None) -> None:
        self.times += 1
        self.last_micro = micro
        self.total_micro = self.total_micro + micro if total_micro is None else total_micro


@dataclass(frozen=True, slots=True)
class MeterStatus:
    """A snapshot of one meter for tests, the demo and the control API: plain values.

    Money in yuan (`balance` exact to the millionth, the rest to 0.001 as
    the meter reports it), volumes in m³.
    """

    comm_no: str
    opened: bool
    balance: Decimal  # exact (to the millionth)
    remain: Decimal  # as reported: floored to 0.001
    valve_open: bool
    remote_valve_off: bool
    exhausted: bool
    ladder: LadderPrice | None
    cycle_used: Decimal
    month_used: Decimal
    std_sum: Decimal
    work_sum: Decimal
    remote_charge_times: int
    remote_charge_value: Decimal
    remote_total_value: Decimal
    card_charge_times: int
    card_charge_value: Decimal
    card_total_value: Decimal
    total_buy_value: Decimal
    magatt_times: int
    wake_time: time
    battery_voltage: Decimal


def exact_yuan(micro: int) -> Decimal:
    return Decimal(micro).scaleb(-6)
