"""One money-mode IoT meter: its registers, the household behind it, its money and its valve.

Money on the meter is kept **exactly**, in integer millionths of a yuan: a
litre at a price in thousandths of a yuan per m³ costs exactly that many
millionths, so nothing is ever rounded inside the meter and there is no
drift. What the meter reports (`remain_money`, `remain`) is that balance
floored to 0.001 yuan, the wire's decimal(18,3).

Deduction follows the ladder pushed to *this* meter: the meter counts its own
cycle-to-date volume from its ladder's `cycle_start`/`cycle_month`, prices
each litre at the tier that volume is in (`ladderN` are cumulative
thresholds, above `ladder4` costs `price5`), restarts the count when a new
cycle begins, and when a `setprice` brings a new cycle definition.

The valve is open unless the application closed it (`setvalveoff`) or an
opened meter cannot pay for one more litre; then it closes by itself and
reports it, and it opens again by itself when money comes (top-up,
`setremain`). `setvalveon` lifts a remote close but is refused while the
money is exhausted; `releaseforce` lifts a remote close whatever the money.
A meter not yet opened meters gas without deducting (a plain meter).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from iotsim.consumption import daily_litres
from iotsim.cycles import cycle_index, local_midnight
from iotsim.meter_parts import (
    NEVER,
    PPM,
    SECOND,
    AlarmCode,
    ChargeCounters,
    EventCode,
    MeterSpec,
    MeterStatus,
    Uplink,
    exact_yuan,
    litres_text,
    micro_of,
    reported,
)
from iotsim.profile import DayShape, shape_for
from iotsim.vendor import LadderPrice

__all__ = [
    "PPM",
    "AlarmCode",
    "EventCode",
    "Meter",
    "MeterSpec",
    "MeterStatus",
    "Uplink",
    "litres_text",
    "micro_of",
    "reported",
]


@dataclass
class Meter:
    spec: MeterSpec
    zone: ZoneInfo
    rng: random.Random
    started: datetime
    std_litres: int = 0
    std_base: int = 0  # registers as last set: work follows std by the factor from here
    work_base: int = 0
    balance_micro: int = 0
    opened: bool = False
    ladder: LadderPrice | None = None
    thresholds: tuple[int, ...] = ()  # litres
    prices: tuple[int, ...] = ()  # thousandths of a yuan per m³ = millionths per litre
    cycle_index: int | None = None
    cycle_litres: int = 0
    last_cycle_litres: int = 0
    month_key: tuple[int, int] = (0, 0)
    month_litres: int = 0
    last_month_litres: int = 0
    remote: ChargeCounters = field(default_factory=ChargeCounters)
    card: ChargeCounters = field(default_factory=ChargeCounters)
    total_buy_micro: int = 0
    remote_off: bool = False
    exhausted: bool = False
    low_armed: bool = True
    magatt_times: int = 0
    magnetic_today: bool = False
    battery_mv: int = 0
    rssi: int = 0
    frozen: list[Uplink] = field(default_factory=list)  # readings waiting for the next wake
    uplinks: list[Uplink] = field(default_factory=list)
    # today
    day: date = date.min
    day_start: datetime = NEVER
    day_end: datetime = NEVER
    day_seconds: int = 86_400
    shape: DayShape = field(default_factory=lambda: shape_for(1))
    day_litres: int = 0
    demand_done: int = 0
    position: datetime = NEVER
    wake_at: datetime = NEVER
    attack_at: datetime | None = None
    temperature_noise: int = 0

    def __post_init__(self) -> None:
        self.std_litres = self.std_base = self.spec.start_litres
        self.work_base = self.spec.start_litres * self.spec.factor_permille // 1000
        self.battery_mv, self.rssi = self.spec.battery_mv, self.spec.rssi
        local = self.started.astimezone(self.zone)
        self.month_key = (local.year, local.month)
        self._begin_day(local.date())
        seconds = (self.started - self.day_start) // SECOND
        self.demand_done = self.shape.used_by(self.day_litres, seconds, self.day_seconds)
        self.position = self.started

    @property
    def comm_no(self) -> str:
        return self.spec.comm_no

    @property
    def work_litres(self) -> int:
        return (
            self.work_base + (self.std_litres - self.std_base) * self.spec.factor_permille // 1000
        )

    @property
    def valve_open(self) -> bool:
        return not self.remote_off and not self.exhausted

    # -- the day ----------------------------------------------------------------------
    def _begin_day(self, day: date) -> None:
        self.day = day
        self.day_start = local_midnight(day, self.zone)
        self.day_end = local_midnight(day + timedelta(days=1), self.zone)
        self.day_seconds = (self.day_end - self.day_start) // SECOND
        self.shape = shape_for(day.month)
        self.day_litres = daily_litres(day, self.rng, self.spec.scale_percent)
        self.demand_done = 0
        self.temperature_noise = self.rng.randint(-15, 15)
        self.wake_at = self.day_start + min(self.spec.wake_seconds, self.day_seconds - 1) * SECOND
        self.attack_at = None
        if self.rng.randrange(PPM) < self.spec.magnetic_attack_ppm:
            self.attack_at = self.day_start + self.rng.randrange(self.day_seconds) * SECOND

    def happenings(self, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
        """The wake-up and attack of today that fall in [start, end), in time order."""
        found = [(self.wake_at, "wake")]
        if self.attack_at is not None:
            found.append((self.attack_at, "attack"))
        return sorted((at, kind) for at, kind in found if start <= at < end)

    def roll_day(self, snapshot: Callable[[Meter, datetime, int], dict[str, Any]]) -> None:
        """At local midnight: month and cycle counters, battery, the next day, the freeze."""
        day = self.day + timedelta(days=1)
        if (day.year, day.month) != self.month_key:
            self.last_month_litres, self.month_litres = self.month_litres, 0
            self.month_key = (day.year, day.month)
        index = self._cycle_index(day)
        if index is not None and index != self.cycle_index:
            self.last_cycle_litres, self.cycle_litres = self.cycle_litres, 0
            self.cycle_index = index
        self.battery_mv -= self.rng.randint(0, 1)
        self.magnetic_today = False
        self._begin_day(day)
        self.position = self.day_start
        self.frozen.append(Uplink("reading", self.day_start, snapshot(self, self.day_start, 1)))

    def _cycle_index(self, day: date) -> int | None:
        ladder = self.ladder
        if ladder is None:
            return None
        return cycle_index(ladder.cycle_start, ladder.cycle_month, day)

    # -- gas ----------------------------------------------------------------------------
    def flow_to(self, instant: datetime) -> None:
        """Let the household use gas up to `instant` (within today)."""
        seconds = (instant - self.day_start) // SECOND
        target = self.shape.used_by(self.day_litres, seconds, self.day_seconds)
        demand = target - self.demand_done
        start, self.position = self.position, instant
        if demand <= 0:
            return
        self.demand_done = target
        self.draw(demand, start, instant)

    def draw(self, litres: int, start: datetime, end: datetime) -> int:
        """The household wants `litres` between `start` and `end`: the litres it got."""
        if not self.valve_open or litres <= 0:
            return 0  # wanted gas and got none
        delivered = self._deliver(litres)
        if delivered < litres or self._cannot_pay():
            elapsed = (end - start) * delivered // litres // SECOND * SECOND
            self._set_exhausted(True, start + elapsed)
        self._check_low(end)
        return delivered

    def _deliver(self, litres: int) -> int:
        if not self.opened or not self.prices:
            self._register(litres)
            return litres
        delivered = 0
        while delivered < litres:
            tier = self._tier()
            price = self.prices[tier]
            take = litres - delivered
            if tier < len(self.thresholds):
                take = min(take, self.thresholds[tier] - self.cycle_litres)
            short = price > 0 and self.balance_micro < take * price
            if short:
                take = self.balance_micro // price
            self.balance_micro -= take * price
            self._register(take)
            delivered += take
            if short:
                break
        return delivered

    def _register(self, litres: int) -> None:
        self.std_litres += litres
        self.month_litres += litres
        self.cycle_litres += litres

    def _tier(self) -> int:
        for tier, threshold in enumerate(self.thresholds):
            if self.cycle_litres < threshold:
                return tier
        return len(self.thresholds)

    @property
    def current_price(self) -> int:
        return self.prices[self._tier()] if self.prices else 0

    def _cannot_pay(self) -> bool:
        price = self.current_price
        return self.opened and price > 0 and self.balance_micro < price

    # -- valve, alarms, events ---------------------------------------------------------
    def _set_exhausted(self, exhausted: bool, at: datetime) -> None:
        before = self.valve_open
        self.exhausted = exhausted
        self._valve_moved(before, at, "余额不足" if exhausted else "已充值")

    def _valve_moved(self, before: bool, at: datetime, reason: str) -> None:
        if before == self.valve_open:
            return
        code = EventCode.VALVE_OPENED if self.valve_open else EventCode.VALVE_CLOSED
        content = ("开阀" if self.valve_open else "关阀") + f"：{reason}"
        self.event(code, content, at, {"valve_open": self.valve_open, "reason": reason})

    def settle_valve(self, at: datetime) -> None:
        """After money or prices changed: close at exhaustion, reopen when money came."""
        cannot_pay = self._cannot_pay()
        if cannot_pay != self.exhausted:
            self._set_exhausted(cannot_pay, at)
        self._check_low(at)

    def set_remote_off(self, off: bool, at: datetime) -> None:
        before = self.valve_open
        self.remote_off = off
        self._valve_moved(before, at, "远程关阀" if off else "远程开阀")

    def _check_low(self, at: datetime) -> None:
        if not self.opened:
            return
        low = self.balance_micro < self.spec.low_balance_micro
        if low and self.low_armed:
            self.low_armed = False
            data = {"remain_money": reported(self.balance_micro)}
            self.alarm(AlarmCode.LOW_BALANCE, "余额不足", at, data)
        elif not low:
            self.low_armed = True

    def attack(self, at: datetime) -> None:
        self.magatt_times += 1
        self.magnetic_today = True
        self.alarm(AlarmCode.MAGNETIC_ATTACK, "磁攻击", at, {"magatt_times": self.magatt_times})

    def alarm(self, code: AlarmCode, content: str, at: datetime, data: dict[str, Any]) -> None:
        body = {"alarm_code": int(code), "alarm_content": content, "alarm_data": data}
        self.uplinks.append(Uplink("alarm", at, body))

    def event(self, code: EventCode, content: str, at: datetime, data: dict[str, Any]) -> None:
        body = {"event_code": int(code), "event_content": content, "event_data": data}
        self.uplinks.append(Uplink("event", at, body))

    def take_uplinks(self) -> list[Uplink]:
        taken, self.uplinks = self.uplinks, []
        return taken

    def wake(self) -> list[Uplink]:
        """The daily wake-up: fresh signal strength; the frozen readings to send."""
        self.rssi = self.spec.rssi + self.rng.randint(-6, 6)
        frozen, self.frozen = self.frozen, []
        return frozen

    # -- what commands do ---------------------------------------------------------------
    def set_ladder(self, ladder: LadderPrice, at: datetime) -> None:
        old = self.ladder
        same_cycle = old is not None and (old.cycle_start, old.cycle_month) == (
            ladder.cycle_start,
            ladder.cycle_month,
        )
        self.ladder = ladder
        self.thresholds = tuple(int(v.scaleb(3)) for v in ladder.ladders)  # m³ -> litres
        self.prices = tuple(int(p.scaleb(3)) for p in ladder.prices)  # yuan/m³ -> millionths/l
        if not same_cycle:
            self.last_cycle_litres, self.cycle_litres = self.cycle_litres, 0
            self.cycle_index = self._cycle_index(self.day)
        self.settle_valve(at)

    def credit(self, micro: int, at: datetime) -> None:
        self.balance_micro += micro
        self.total_buy_micro += micro
        self.settle_valve(at)

    def status(self) -> MeterStatus:
        return MeterStatus(
            comm_no=self.comm_no,
            opened=self.opened,
            balance=exact_yuan(self.balance_micro),
            remain=reported(self.balance_micro),
            valve_open=self.valve_open,
            remote_valve_off=self.remote_off,
            exhausted=self.exhausted,
            ladder=self.ladder,
            cycle_used=litres_text(self.cycle_litres),
            month_used=litres_text(self.month_litres),
            std_sum=litres_text(self.std_litres),
            work_sum=litres_text(self.work_litres),
            remote_charge_times=self.remote.times,
            remote_charge_value=exact_yuan(self.remote.last_micro),
            remote_total_value=exact_yuan(self.remote.total_micro),
            card_charge_times=self.card.times,
            card_charge_value=exact_yuan(self.card.last_micro),
            card_total_value=exact_yuan(self.card.total_micro),
            total_buy_value=exact_yuan(self.total_buy_micro),
            magatt_times=self.magatt_times,
            wake_time=self.wake_at.astimezone(self.zone).time(),
            battery_voltage=Decimal(self.battery_mv).scaleb(-3),
        )
