"""Ladder (阶梯) tariffs: a named sequence of dated versions.

Tier k covers cycle-to-date usage in (L[k-1], L[k]]; above the last
threshold the last price applies. Thresholds are per cycle and cumulative.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from gasbill.domain.cycles import CycleRule
from gasbill.domain.errors import NoVersionInForce, TariffError, TariffNotEncodable
from gasbill.domain.money import DEFAULT_ROUNDING, ROUNDING_MODES, Price, Volume

MAX_METER_PRICES = 5  # ladder_price has price1..price5 (spec §5.4)
MAX_PRICES = 10


class HouseholdMode(enum.StrEnum):
    SHIFT = "shift"  # every threshold moves by the bonus
    WIDEN = "widen"  # threshold k moves by k × bonus


class Proration(enum.StrEnum):
    NONE = "none"
    BY_MONTH = "by_month"
    BY_DAY = "by_day"


class VolumeBasis(enum.StrEnum):
    STD_SUM = "std_sum"
    WORK_SUM = "work_sum"


@dataclass(frozen=True, slots=True)
class HouseholdPolicy:
    """Extra m³ per cycle by household size: `bonuses` maps a minimum size to a bonus."""

    mode: HouseholdMode = HouseholdMode.SHIFT
    bonuses: tuple[tuple[int, Volume], ...] = ()

    def bonus_for(self, persons: int | None) -> Volume:
        best = Volume.zero()
        if persons is None:
            return best
        for minimum, extra in sorted(self.bonuses, key=lambda b: b[0]):
            if persons >= minimum:
                best = extra
        return best

    def apply(self, thresholds: tuple[Volume, ...], persons: int | None) -> tuple[Volume, ...]:
        bonus = self.bonus_for(persons)
        if not bonus:
            return thresholds
        if self.mode is HouseholdMode.SHIFT:
            return tuple(t + bonus for t in thresholds)
        return tuple(t + bonus * k for k, t in enumerate(thresholds, start=1))


@dataclass(frozen=True, slots=True)
class Season:
    """Months (1–12, local) in which a version charges its own price set."""

    name: str
    months: frozenset[int]
    prices: tuple[Price, ...]


@dataclass(frozen=True, slots=True)
class TariffVersion:
    label: str
    effective_from: datetime  # aware
    prices: tuple[Price, ...]
    thresholds: tuple[Volume, ...]
    cycle: CycleRule
    seasons: tuple[Season, ...] = ()
    household: HouseholdPolicy = field(default_factory=HouseholdPolicy)
    opening_proration: Proration = Proration.NONE
    reset_on_change: bool = False
    # Tariffs as a meter applied them only: the share (numerator, denominator)
    # of the thresholds the meter holds in every cycle, whatever the opening
    # rule says (a meter keeps its prorated opening ladder until it gets a
    # full one). None: `opening_proration` decides, cycle by cycle.
    meter_share: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        where = f"version {self.label!r}"
        if self.effective_from.tzinfo is None:
            raise TariffError(f"{where}: effective_from must carry a time zone")
        if not 1 <= len(self.prices) <= MAX_PRICES:
            raise TariffError(f"{where}: prices must have 1 to {MAX_PRICES} entries")
        if len(self.thresholds) != len(self.prices) - 1:
            raise TariffError(
                f"{where}: {len(self.prices)} prices need {len(self.prices) - 1} thresholds, "
                f"got {len(self.thresholds)}"
            )
        _check_prices(where, self.prices)
        previous = Volume.zero()
        for k, threshold in enumerate(self.thresholds, start=1):
            if threshold <= previous:
                raise TariffError(f"{where}: thresholds must be positive and ascending (#{k})")
            previous = threshold
        seen: set[int] = set()
        for season in self.seasons:
            if len(season.prices) != len(self.prices):
                raise TariffError(
                    f"{where}: season {season.name!r} needs {len(self.prices)} prices, "
                    f"got {len(season.prices)}"
                )
            _check_prices(f"{where} season {season.name!r}", season.prices)
            if not season.months or not season.months <= set(range(1, 13)):
                raise TariffError(f"{where}: season {season.name!r} months must be 1..12")
            if seen & season.months:
                raise TariffError(f"{where}: season {season.name!r} overlaps another season")
            seen |= season.months

    def prices_in_month(self, month: int) -> tuple[Price, ...]:
        for season in self.seasons:
            if month in season.months:
                return season.prices
        return self.prices

    def thresholds_for(self, persons: int | None, *, whole_m3: bool = False) -> tuple[Volume, ...]:
        """Thresholds after the household bonus; whole m³ (rounded down) for meters."""
        adjusted = self.household.apply(self.thresholds, persons)
        if whole_m3:
            adjusted = tuple(Volume(t.value.to_integral_value(ROUND_DOWN)) for t in adjusted)
        return adjusted

    def same_cycle_as(self, other: TariffVersion) -> bool:
        return self.cycle == other.cycle


@dataclass(frozen=True, slots=True)
class Tariff:
    id: str
    name: str
    zone: str
    versions: tuple[TariffVersion, ...]
    volume_basis: VolumeBasis = VolumeBasis.STD_SUM
    rounding: str = DEFAULT_ROUNDING
    source: str = ""

    def __post_init__(self) -> None:
        if not self.versions:
            raise TariffError(f"tariff {self.id!r}: needs at least one version")
        for earlier, later in zip(self.versions, self.versions[1:], strict=False):
            if later.effective_from <= earlier.effective_from:
                raise TariffError(
                    f"tariff {self.id!r}: version {later.label!r} must start after "
                    f"{earlier.label!r} (versions strictly ordered by effective_from)"
                )
        if self.rounding not in ROUNDING_MODES:
            raise TariffError(f"tariff {self.id!r}: unknown rounding {self.rounding!r}")

    def version_index_at(self, instant: datetime) -> int:
        index = -1
        for i, version in enumerate(self.versions):
            if version.effective_from <= instant:
                index = i
            else:
                break
        if index < 0:
            raise NoVersionInForce(
                f"tariff {self.id!r} has no version in force at {instant.isoformat()}"
            )
        return index

    def version_at(self, instant: datetime) -> TariffVersion:
        return self.versions[self.version_index_at(instant)]

    def check_meter_encodable(self, persons: int | None = None) -> None:
        """Refuse, with the reason, a tariff a self-billing meter cannot hold."""
        for version in self.versions:
            check_version_encodable(self.id, version, persons)


def check_version_encodable(tariff_id: str, version: TariffVersion, persons: int | None) -> None:
    where = f"tariff {tariff_id!r} version {version.label!r}"
    for name, prices in [("prices", version.prices)] + [
        (f"season {s.name!r} prices", s.prices) for s in version.seasons
    ]:
        if len(prices) > MAX_METER_PRICES:
            raise TariffNotEncodable(
                f"{where}: {name} has {len(prices)} tiers; a self-billing meter holds at most "
                f"{MAX_METER_PRICES} (ladder_price price1..price5)"
            )
    for k, threshold in enumerate(version.thresholds, start=1):
        if not threshold.is_whole():
            raise TariffNotEncodable(
                f"{where}: threshold #{k} is {threshold.value} m³; a self-billing meter takes "
                "whole m³ only (open_account_param ladderN is UInt32)"
            )


def _check_prices(where: str, prices: tuple[Price, ...]) -> None:
    for k, price in enumerate(prices, start=1):
        if price.is_negative():
            raise TariffError(f"{where}: price #{k} must not be negative")
        if price.value != price.value.quantize(Decimal("0.001")):
            raise TariffError(f"{where}: price #{k} has more than 3 decimals")
