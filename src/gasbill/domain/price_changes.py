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
from gasbill.domain.tariff import Proration, Tariff, TariffVersion

BASE = "base"  # the label part of a season change back to a version's own prices
FULL_LADDER = "full ladder"  # the label part of a push back to the full thresholds


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


def opening_cycle_end(tariff: Tariff, opened_on: date) -> datetime:
    """The next cycle boundary after an opening: where a prorated opening cycle ends."""
    zone = ZoneInfo(tariff.zone)
    opened = opening_instant(tariff, opened_on)
    version = tariff.version_at(max(opened, tariff.versions[0].effective_from))
    return local_midnight(version.cycle.bounds(opened_on)[1], zone)


def held_share(tariff: Tariff, change: PriceChange, opened_on: date | None) -> tuple[int, int]:
    """The share of the thresholds in the ladder a meter gets for `change`.

    The opening proration of the cycle the ladder is pushed for: that of the
    change, or of the opening when the change was already in force then (the
    meter was opened with it). Full, (1, 1), from the cycle after the opening.
    """
    version = tariff.versions[change.version_index]
    if version.opening_proration is Proration.NONE or opened_on is None:
        return 1, 1
    zone = ZoneInfo(tariff.zone)
    day = max(change.at, opening_instant(tariff, opened_on)).astimezone(zone).date()
    first, last = version.cycle.bounds(day)
    cycle = Cycle(local_midnight(first, zone), local_midnight(last, zone), tariff.zone)
    context = RatingContext(opened_on=opened_on, whole_m3=True)
    return opening_share(version.opening_proration, version, cycle, context)


def full_ladder_change(tariff: Tariff, opened_on: date) -> PriceChange | None:
    """The push that puts a prorated meter back on the full ladder, if it needs one.

    At the first cycle boundary after a prorated opening the meter still
    holds its opening thresholds: it needs the prices in force then with the
    full thresholds. None when the opening was not prorated, or when a price
    change falls on that boundary (its own push carries the full ladder).
    """
    boundary = opening_cycle_end(tariff, opened_on)
    changes = price_changes(tariff, boundary)
    opened = change_in_force(changes, opening_instant(tariff, opened_on)) or changes[0]
    if held_share(tariff, opened, opened_on) == (1, 1):
        return None
    return full_ladder_at(tariff, boundary)


def full_ladder_at(tariff: Tariff, boundary: datetime) -> PriceChange | None:
    """The full-ladder push at a cycle boundary: the prices in force then, labelled as such.

    None where a price change falls on the boundary (its push is full already).
    """
    in_force = change_in_force(price_changes(tariff, boundary), boundary)
    if in_force is None or in_force.at == boundary:
        return None
    zone = ZoneInfo(tariff.zone)
    label = f"{in_force.label} {FULL_LADDER} {boundary.astimezone(zone):%Y-%m-%d}"
    return PriceChange(boundary, label, in_force.version_index, in_force.prices)


def is_full_ladder(label: str) -> bool:
    """Whether a campaign's label names a full-ladder push (not a price change)."""
    return f" {FULL_LADDER} " in label


def meter_changes(tariff: Tariff, until: datetime, opened_on: date | None) -> list[PriceChange]:
    """Every ladder a meter opened on `opened_on` may be pushed, at or before `until`, in order.

    The tariff's price changes, and the full-ladder push after a prorated opening.
    """
    changes = price_changes(tariff, until)
    full = None if opened_on is None else full_ladder_change(tariff, opened_on)
    if full is not None and full.at <= until:
        changes.append(full)
        changes.sort(key=lambda change: change.at)
    return changes


def ladder_for(
    tariff: Tariff, change: PriceChange, persons: int | None, opened_on: date | None
) -> LadderPrice:
    """The `ladder_price` one meter gets for a change: its household and opening proration.

    The cycle start sent is the version's cycle anchor (as for every push of
    that cycle rule), so a meter keeps counting its cycle across a price
    change and restarts it only when the cycle rule itself changes. The
    thresholds are those of `held_share`.
    """
    version = tariff.versions[change.version_index]
    day = change.at.astimezone(ZoneInfo(tariff.zone)).date()
    share = held_share(tariff, change, opened_on)
    return ladder_price_for(version, persons, month=day.month, share=share, tariff_id=tariff.id)
