"""The schema of a tariff file: pydantic models with every rule that can name its field."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from decimal import Decimal
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gasbill.adapters.tariffs.fields import (
    BasisName,
    CycleMonths,
    EffectiveFrom,
    LocalDate,
    ModeName,
    Month,
    Persons,
    PriceValue,
    ProrationName,
    Rounding,
    TariffId,
    Text,
    VolumeValue,
    Zone,
    localize,
    rule_error,
)
from gasbill.domain.money import DEFAULT_ROUNDING
from gasbill.domain.tariff import MAX_PRICES

DEFAULT_ZONE = "Asia/Shanghai"


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class BonusModel(_Model):
    persons: Persons
    extra_m3: VolumeValue


class HouseholdModel(_Model):
    mode: ModeName
    bonuses: list[BonusModel] = Field(min_length=1)

    @field_validator("bonuses")
    @classmethod
    def _sizes_distinct_and_bonuses_grow(cls, bonuses: list[BonusModel]) -> list[BonusModel]:
        first: dict[int, int] = {}
        for j, bonus in enumerate(bonuses):
            if bonus.persons in first:
                raise rule_error(
                    "duplicate",
                    f"persons = {bonus.persons} is also in bonuses[{first[bonus.persons]}]",
                    f"[{j}].persons",
                )
            first[bonus.persons] = j
        ordered = sorted(bonuses, key=lambda b: b.persons)
        for smaller, larger in itertools.pairwise(ordered):
            if larger.extra_m3 < smaller.extra_m3:
                raise rule_error(
                    "shrinking",
                    f"{larger.persons} or more persons get less ({larger.extra_m3} m³) than "
                    f"{smaller.persons} or more ({smaller.extra_m3} m³)",
                    f"[{first[larger.persons]}].extra_m3",
                )
        return bonuses


class SeasonModel(_Model):
    name: Text
    months: list[Month] = Field(min_length=1, max_length=12)
    prices: list[PriceValue] = Field(min_length=1, max_length=MAX_PRICES)

    @field_validator("months")
    @classmethod
    def _months_once(cls, months: list[int]) -> list[int]:
        seen: set[int] = set()
        for j, month in enumerate(months):
            if month in seen:
                raise rule_error("duplicate", f"month {month} is listed twice", f"[{j}]")
            seen.add(month)
        return months


class VersionModel(_Model):
    label: Text | None = None
    effective_from: EffectiveFrom
    prices: list[PriceValue] = Field(min_length=1, max_length=MAX_PRICES)
    thresholds: list[VolumeValue]
    cycle_start: LocalDate
    cycle_months: CycleMonths
    seasons: list[SeasonModel] = Field(default_factory=list)
    household: HouseholdModel | None = None
    opening_proration: ProrationName
    reset_on_change: bool

    @field_validator("thresholds")
    @classmethod
    def _ladder(cls, thresholds: list[Decimal], info: ValidationInfo) -> list[Decimal]:
        prices = info.data.get("prices")
        if prices is not None and len(thresholds) != len(prices) - 1:
            raise rule_error(
                "count",
                f"{len(prices)} price{'s' if len(prices) > 1 else ''} need "
                f"{len(prices) - 1} threshold{'s' if len(prices) != 2 else ''}, "
                f"got {len(thresholds)}",
            )
        for lower, upper in itertools.pairwise(thresholds):
            if upper <= lower:
                raise rule_error("ascending", f"must ascend ({lower} then {upper})")
        return thresholds

    @model_validator(mode="after")
    def _seasons_fit(self) -> Self:
        owner: dict[int, str] = {}
        for j, season in enumerate(self.seasons):
            if len(season.prices) != len(self.prices):
                raise rule_error(
                    "season_prices",
                    f"season {season.name!r} needs {len(self.prices)} prices like the "
                    f"version's, got {len(season.prices)}",
                    f"seasons[{j}].prices",
                )
            for month in season.months:
                if month in owner:
                    raise rule_error(
                        "overlap",
                        f"month {month} is already in season {owner[month]!r}",
                        f"seasons[{j}].months",
                    )
                owner[month] = season.name
        return self


class DefaultsModel(_Model):
    """`[defaults]`: any version key, inherited by every version that lacks it."""

    label: Text | None = None
    effective_from: EffectiveFrom | None = None
    prices: list[PriceValue] | None = Field(default=None, min_length=1, max_length=MAX_PRICES)
    thresholds: list[VolumeValue] | None = None
    cycle_start: LocalDate | None = None
    cycle_months: CycleMonths | None = None
    seasons: list[SeasonModel] | None = None
    household: HouseholdModel | None = None
    opening_proration: ProrationName | None = None
    reset_on_change: bool | None = None


class TariffModel(_Model):
    id: TariffId | None = None
    name: Text
    source: Text
    timezone: Zone | None = None
    volume_basis: BasisName = "std_sum"
    rounding: Rounding = DEFAULT_ROUNDING
    versions: list[VersionModel] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_is_stem(cls, value: str | None, info: ValidationInfo) -> str | None:
        stem = (info.context or {}).get("stem")
        if value is not None and stem is not None and value != stem:
            raise rule_error("id_stem", f"must equal the file name's stem {stem!r}, not {value!r}")
        return value

    @model_validator(mode="after")
    def _versions_in_order(self, info: ValidationInfo) -> Self:
        zone = ZoneInfo(self.timezone or (info.context or {}).get("default_zone", DEFAULT_ZONE))
        previous: datetime | None = None
        for i, version in enumerate(self.versions):
            instant = localize(version.effective_from, zone, f"versions[{i}].effective_from")
            if previous is not None and instant <= previous:
                raise rule_error(
                    "order",
                    f"must be later than versions[{i - 1}].effective_from "
                    f"({_show_when(self.versions[i - 1].effective_from)}, here "
                    f"{_show_when(version.effective_from)}): versions are listed in the order "
                    "they take effect",
                    f"versions[{i}].effective_from",
                )
            previous = instant
        first: dict[str, int] = {}
        for i, version in enumerate(self.versions):
            label = version_label(version)
            if label in first:
                raise rule_error(
                    "duplicate",
                    f"label {label!r} is also versions[{first[label]}]'s: labels must be unique",
                    f"versions[{i}].label",
                )
            first[label] = i
        return self


def version_label(version: VersionModel) -> str:
    return version.label or _show_when(version.effective_from)


def _show_when(value: date | datetime) -> str:
    return value.isoformat()
