"""The tariff as a meter applied it, and the price-change true-up (DESIGN §5).

A self-billing meter deducts with the last ladder it confirmed, from the
moment it confirmed it: a price change reaches it late (or, pushed ahead
within the lead time, early). Meter-mode accounts are shadow-billed with
`meter_tariff`, so `meter_credit` says what the meter holds; the difference
from the tariff in force, day by day, is the **true-up** between `prepaid`
and revenue.

`confirmed` maps a price change's label (see `price_changes`) to the instant
the meter confirmed it. A change never confirmed is not on the meter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gasbill.domain.cycles import local_midnight
from gasbill.domain.errors import TariffError
from gasbill.domain.price_changes import (
    PriceChange,
    change_in_force,
    full_ladder_change,
    held_share,
    meter_changes,
    opening_instant,
    price_changes,
)
from gasbill.domain.rating import DayKey, RatingResult
from gasbill.domain.tariff import Tariff

LABEL_HORIZON = timedelta(days=366)  # how far past the last confirmation labels are looked up


def meter_entries(
    tariff: Tariff, confirmed: Mapping[str, datetime], opened_on: date | None = None
) -> list[tuple[datetime, PriceChange]]:
    """The ladders the meter held, in order: (from when, which change).

    Ordered by confirmation time (a meter holds what it confirmed last); of
    two confirmed at one instant the later change wins. Labels that are not
    this tariff's changes (or, given the opening day, its full-ladder push)
    are ignored.
    """
    if not confirmed:
        return []
    horizon = max(confirmed.values()) + LABEL_HORIZON
    changes = meter_changes(tariff, horizon, opened_on)
    found = sorted(
        ((confirmed[c.label], c) for c in changes if c.label in confirmed),
        key=lambda entry: (entry[0], entry[1].at),
    )
    entries: list[tuple[datetime, PriceChange]] = []
    for at, change in found:
        if entries and entries[-1][0] == at:
            entries[-1] = (at, change)
        else:
            entries.append((at, change))
    return entries


def meter_tariff(
    tariff: Tariff, confirmed: Mapping[str, datetime], opened_on: date | None = None
) -> Tariff:
    """The tariff as the meter applied it: each confirmed change in force from its confirmation.

    One version per ladder the meter held, with that ladder's prices and no
    seasons (the meter knows none). The meter restarts its cycle count only
    when the cycle rule changes, never at a price change, so no version here
    resets the counter. Given the opening day, each version carries the
    share of the thresholds the meter held with it (`held_share`), in every
    cycle: a prorated opening ladder stays prorated until a full one is
    confirmed.
    """
    entries = meter_entries(tariff, confirmed, opened_on)
    if not entries:
        raise TariffError(f"tariff {tariff.id!r}: no price change confirmed on the meter")
    versions = tuple(
        dataclasses.replace(
            tariff.versions[change.version_index],
            label=change.label,
            effective_from=at,
            prices=change.prices,
            seasons=(),
            reset_on_change=False,
            meter_share=None if opened_on is None else held_share(tariff, change, opened_on),
        )
        for at, change in entries
    )
    return dataclasses.replace(tariff, versions=versions, source=f"{tariff.source} (as metered)")


def with_opening(
    tariff: Tariff, confirmed: Mapping[str, datetime], opened_on: date
) -> dict[str, datetime]:
    """`confirmed` plus the change the meter was opened with (in force at the opening)."""
    opened = opening_instant(tariff, opened_on)
    changes = price_changes(tariff, max(opened, tariff.versions[0].effective_from))
    base = change_in_force(changes, opened) or changes[0]
    result = dict(confirmed)
    result[base.label] = min(result.get(base.label, base.at), base.at)
    return result


def as_of(
    tariff: Tariff,
    confirmed: Mapping[str, datetime],
    since: datetime,
    opened_on: date | None = None,
) -> dict[str, datetime]:
    """The confirmations that still matter when rating from `since` on.

    Later confirmations stay as they are; the ladder in force at `since`
    moves to its change's own instant (if not later than `since`), and older
    ones go: meters that agree from `since` on then share one meter tariff
    (and one rater). Kept whole when the tariff changes its cycle rule, where
    the start of a version also starts a cycle.
    """
    if len({version.cycle for version in tariff.versions}) > 1:
        return dict(confirmed)
    entries = meter_entries(tariff, confirmed, opened_on)
    kept = {change.label: at for at, change in entries if at > since}
    earlier = [(at, change) for at, change in entries if at <= since]
    if earlier:
        at, change = earlier[-1]
        kept[change.label] = change.at if change.at <= since else at
    return kept


def divergence(
    tariff: Tariff,
    confirmed: Mapping[str, datetime],
    until: datetime,
    opened_on: date | None = None,
) -> list[tuple[datetime, datetime]]:
    """The stretches [start, end) up to `until` where the meter held another ladder than in force.

    Other prices, or (given the opening day) prorated opening thresholds
    after the opening cycle has ended.
    """
    entries = meter_entries(tariff, confirmed, opened_on)
    if not entries or until <= entries[0][0]:
        return []
    official = price_changes(tariff, until)
    full = None if opened_on is None else full_ladder_change(tariff, opened_on)
    first = entries[0][0]
    points = sorted(
        {first}
        | {c.at for c in official if first < c.at <= until}
        | {at for at, _ in entries if at <= until}
        | ({full.at} if full is not None and first < full.at <= until else set())
    )
    stretches: list[tuple[datetime, datetime]] = []
    for k, start in enumerate(points):
        end = points[k + 1] if k + 1 < len(points) else until
        if end <= start:
            continue
        in_force = change_in_force(official, start)
        held = [change for at, change in entries if at <= start][-1]
        # prorated opening thresholds held past the opening cycle
        stale = (
            full is not None and start >= full.at and held_share(tariff, held, opened_on) != (1, 1)
        )
        if (
            in_force is not None
            and (in_force.version_index, in_force.prices) == (held.version_index, held.prices)
            and not stale
        ):
            continue
        if stretches and stretches[-1][1] == start:
            stretches[-1] = (stretches[-1][0], end)
        else:
            stretches.append((start, end))
    return stretches


def true_up_start(
    tariff: Tariff,
    confirmed: Mapping[str, datetime],
    now: datetime,
    *,
    settled_after: timedelta = timedelta(days=31),
    opened_on: date | None = None,
) -> datetime | None:
    """Where re-rating for the true-up must start: the cycle of the earliest open divergence.

    A divergence affects the days of its cycles up to the end of the cycle
    it ends in (tier positions and cumulative rounding carry on). One whose
    last cycle ended more than `settled_after` ago is settled; None if all are.
    """
    zone = ZoneInfo(tariff.zone)
    starts = []
    for start, end in divergence(tariff, confirmed, now, opened_on):
        last = end - timedelta(microseconds=1)
        cycle_end = tariff.version_at(last).cycle.bounds(last.astimezone(zone).date())[1]
        if local_midnight(cycle_end, zone) > now - settled_after:
            starts.append(start)
    if not starts:
        return None
    first = min(starts)
    cycle_start = tariff.version_at(first).cycle.bounds(first.astimezone(zone).date())[0]
    return local_midnight(cycle_start, zone)


def true_up(official: RatingResult, as_metered: RatingResult) -> dict[DayKey, int]:
    """Per (cycle, day): what the tariff in force charges minus what the meter deducted, in fen.

    Positive: the customer owes it (prepaid → revenue); negative: it is
    refunded (revenue → prepaid). Both ratings round cumulatively per cycle,
    so the true-ups of a cycle add up to the difference of its rounded costs.
    """
    charged = official.amounts_by_day()
    deducted = as_metered.amounts_by_day()
    differences = {
        key: charged.get(key, 0) - deducted.get(key, 0) for key in set(charged) | set(deducted)
    }
    return {key: fen for key, fen in sorted(differences.items()) if fen}


def owed(
    in_force: Mapping[DayKey, int],
    shadow: Mapping[DayKey, int],
    first_day: date,
    last_day: date = date.max,
) -> dict[DayKey, int]:
    """Per (cycle, day) from `first_day` to `last_day`: the tariff in force minus the shadow.

    `in_force` is the tariff in force rated over the account's readings;
    `shadow` what billing actually posted to `meter_credit` for those days
    (the prices the meter held, switched where the meter took them). Taking
    the shadow as posted, not re-derived, makes charges plus true-ups equal
    the tariff in force by construction, day by day.
    """
    keys = {k for k in set(in_force) | set(shadow) if first_day <= k[1] <= last_day}
    differences = {key: in_force.get(key, 0) - shadow.get(key, 0) for key in keys}
    return {key: fen for key, fen in sorted(differences.items()) if fen}
