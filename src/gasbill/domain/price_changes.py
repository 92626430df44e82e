"""The instants a self-billing meter's prices change, and the ladder each meter gets.

A meter holds one ladder and applies a pushed one at once: it knows nothing of
versions or seasons. So every instant at which the prices in force change is a
*price change* to push: a version's `effective_from`, and, inside a version
with seasons, each first of a month at local midnight where a season (or the
base prices) begins. Each change has a stable label by which campaigns and
confirmations name it: the version's label, or `"<version> <season|base>
<YYYY-MM>"` for a season change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from gasbill.domain.commands import LadderPrice, ladder_price_for
from gasbill.domain.cycles import Cycle, local_midnight
from gasbill.domain.money import Price
from gasbill.domain.rating import RatingContext, opening_share
from gasbill.domain.tariff import Tariff, TariffVersion

BASE = "base"  # the label part of a season change back to a version's own prices


@dataclass(frozen=True, slots=True)
class PriceChange:
    """From `at` on, the prices of version `version_index` for that month are in force."""

    at: datetime  # aware
    label: str
    version_index: int
    prices: tuple[Price, ...]


def season_of(version: TariffVersion, month: int) -> str:
    for season in version.seasons:
        if month in season.months:
            return season.name
    return BASE


def price_changes(tariff: Tariff, until: datetime) -> list[PriceChange]:
    """Every price change of the tariff at or before `until`, in time order."""
    zone = ZoneInfo(tariff.zone)
    versions = tariff.versions
    changes: list[PriceChange] = []
    for index, version in enumerate(versions):
        if version.effective_from > until:
            break
        start = version.effective_from.astimezone(zone)
        changes.append(
            PriceChange(
                version.effective_from, version.label, index, version.prices_in_month(start.month)
            )
        )
        if not version.seasons:
            continue
        end = versions[index + 1].effective_from if index + 1 < len(versions) else None
        month = date(start.year, start.month, 1) + relativedelta(months=1)
        while True:
            at = local_midnight(month, zone)
            if at > until or (end is not None and at >= end):
                break
            name = season_of(version, month.month)
            if name != season_of(version, (month - relativedelta(months=1)).month):
                label = f"{version.label} {name} {month:%Y-%m}"
                changes.append(PriceChange(at, label, index, version.prices_in_month(month.month)))
            month += relativedelta(months=1)
    return changes


def change_in_force(changes: Sequence[PriceChange], at: datetime) -> PriceChange | None:
    """The newest of the (time-ordered) changes at or before `at`."""
    found = None
    for change in changes:
        if change.at > at:
            break
        found = change
    return found


def opening_instant(tariff: Tariff, opened_on: date) -> datetime:
    """When an account opened: local midnight of its opening day in the tariff's zone."""
    return local_midnight(opened_on, ZoneInfo(tariff.zone))


def ladder_for(
    tariff: Tariff, change: PriceChange, persons: int | None, opened_on: date | None
) -> LadderPrice:
    """The `ladder_price` one meter gets for a change: its household and opening proration.

    The cycle start sent is the version's cycle anchor (as for every push of
    that cycle rule), so a meter keeps counting its cycle across a price
    change and restarts it only when the cycle rule itself changes.
    """
    version = tariff.versions[change.version_index]
    zone = ZoneInfo(tariff.zone)
    day = change.at.astimezone(zone).date()
    first, last = version.cycle.bounds(day)
    cycle = Cycle(local_midnight(first, zone), local_midnight(last, zone), tariff.zone)
    context = RatingContext(persons=persons, opened_on=opened_on, whole_m3=True)
    share = opening_share(version.opening_proration, version, cycle, context)
    return ladder_price_for(version, persons, month=day.month, share=share, tariff_id=tariff.id)
