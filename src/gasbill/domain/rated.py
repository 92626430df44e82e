"""What rating reads and returns: frozen readings, anomalies, charges, periods, state.

Re-exported by `gasbill.domain.rating`, where the rest of the code reads them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from gasbill.domain.cycles import Cycle
from gasbill.domain.money import Money, Price, Volume, money_from_micro
from gasbill.domain.tariff import VolumeBasis
from gasbill.domain.timeline import NO_VERSION


class FrozenReading(NamedTuple):
    """A frozen (data_type 1) reading: the registers' totals at the freeze instant."""

    at: datetime  # aware
    std_litres: int | None
    work_litres: int | None = None

    @classmethod
    def of(cls, at: datetime, std_sum: Volume, work_sum: Volume | None = None) -> FrozenReading:
        if at.tzinfo is None:
            raise ValueError("a reading's time must be aware")
        return cls(at, std_sum.litres, None if work_sum is None else work_sum.litres)

    @property
    def std_sum(self) -> Volume | None:
        return None if self.std_litres is None else Volume.of_litres(self.std_litres)

    @property
    def work_sum(self) -> Volume | None:
        return None if self.work_litres is None else Volume.of_litres(self.work_litres)

    def register(self, basis: VolumeBasis) -> int | None:
        return self.std_litres if basis is VolumeBasis.STD_SUM else self.work_litres


class AnomalyKind(enum.StrEnum):
    BACKWARDS = "backwards"  # register below the previous one
    CONFLICTING_DUPLICATE = "conflicting_duplicate"  # same time, other value
    EXCESSIVE_FLOW = "excessive_flow"  # implies a flow above the maximum
    OUT_OF_ORDER = "out_of_order"  # earlier than a reading already rated
    NO_TARIFF = "no_tariff"  # before the tariff's first version
    MISSING_REGISTER = "missing_register"  # the basis register is absent


class Anomaly(NamedTuple):
    kind: AnomalyKind
    reading: FrozenReading
    previous: FrozenReading | None
    detail: str


@dataclass(frozen=True, slots=True)
class RatingContext:
    """What rating needs to know of the account, beyond its readings."""

    persons: int | None = None
    opened_on: date | None = None
    whole_m3: bool = False  # self-billing meters hold whole-m³ thresholds
    max_flow_m3_per_hour: Decimal | None = None


class RatingState(NamedTuple):
    """What rating carries from one call to the next for one account."""

    last: FrozenReading | None = None
    cycle: Cycle | None = None
    version_index: int = NO_VERSION
    used_litres: int = 0  # cycle-to-date usage on the tier counter
    cost_micro: int = 0  # cycle-to-date exact cost; its rounding is what was charged

    def rebased(self, opening: FrozenReading) -> RatingState:
        """A new register from `opening` on (meter replaced, setcumulant): same cycle."""
        return self._replace(last=opening)

    @property
    def used(self) -> Volume:
        return Volume.of_litres(self.used_litres)

    @property
    def cost(self) -> Money:
        return money_from_micro(self.cost_micro)


class ChargeLine(NamedTuple):
    tier: int
    litres: int
    price_milli: int
    cost_micro: int  # exact

    @property
    def volume(self) -> Volume:
        return Volume.of_litres(self.litres)

    @property
    def price(self) -> Price:
        return Price.of_milli(self.price_milli)

    @property
    def cost(self) -> Money:
        return money_from_micro(self.cost_micro)


class Charge(NamedTuple):
    """Usage in one regime: one local day, one cycle, one version and price set."""

    period_from: datetime
    period_to: datetime
    day: date
    cycle: Cycle
    version: str
    litres: int
    amount_fen: int  # cumulatively rounded
    lines: tuple[ChargeLine, ...]

    @property
    def volume(self) -> Volume:
        return Volume.of_litres(self.litres)

    @property
    def amount(self) -> Money:
        return Money.of_fen(self.amount_fen)

    @property
    def cost(self) -> Money:
        return money_from_micro(sum(line.cost_micro for line in self.lines))


class RatedPeriod(NamedTuple):
    """The consumption between two consecutive good readings."""

    period_from: datetime
    period_to: datetime
    litres: int
    charges: tuple[Charge, ...]

    @property
    def volume(self) -> Volume:
        return Volume.of_litres(self.litres)

    @property
    def amount_fen(self) -> int:
        return sum(charge.amount_fen for charge in self.charges)

    @property
    def amount(self) -> Money:
        return Money.of_fen(self.amount_fen)

    @property
    def lines(self) -> list[tuple[Charge, ChargeLine]]:
        return [(charge, line) for charge in self.charges for line in charge.lines]


DayKey = tuple[str, date]  # (cycle key, local day): how posted charges are keyed


class RatingResult(NamedTuple):
    periods: list[RatedPeriod]
    anomalies: list[Anomaly]
    state: RatingState

    @property
    def charges(self) -> list[Charge]:
        return [charge for period in self.periods for charge in period.charges]

    @property
    def total_fen(self) -> int:
        return sum(period.amount_fen for period in self.periods)

    def amounts_by_day(self) -> dict[DayKey, int]:
        amounts: dict[DayKey, int] = {}
        for charge in self.charges:
            key = (charge.cycle.key, charge.day)
            amounts[key] = amounts.get(key, 0) + charge.amount_fen
        return amounts
