"""Meters back on the full ladder after a prorated opening (issue 10 §4): what the meter holds."""

from datetime import date, timedelta
from decimal import Decimal

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.money import Volume
from gasbill.domain.price_changes import (
    full_ladder_at,
    full_ladder_change,
    is_full_ladder,
    ladder_for,
    meter_changes,
    price_changes,
)
from gasbill.domain.rating import FrozenReading, Rater, RatingContext
from gasbill.domain.true_up import as_of, divergence, meter_tariff, true_up_start, with_opening
from tests.conftest import ROOT
from tests.factories import at

CATALOG = TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
RISE = CATALOG.get("price-change-example")  # yearly cycle from Jan 1, by_day proration, 300/600
NEW = "2025-07 increase"  # 3.20/3.84/4.80 from 2025-07-01
OPENED = date(2025, 10, 1)  # 92 of 365 days left: thresholds 75.6 → 75 and 151.2 → 151 m³
FULL = f"{NEW} full ladder 2026-01-01"
CONTEXT = RatingContext(persons=3, opened_on=OPENED, whole_m3=True)


def series(first: date, litres_per_day: list[int]) -> list[FrozenReading]:
    register, out = 0, [FrozenReading(at(first.year, first.month, first.day), 0, 0)]
    for offset, used in enumerate(litres_per_day, start=1):
        register += used
        day = first + timedelta(days=offset)
        out.append(FrozenReading(at(day.year, day.month, day.day), register, register))
    return out


def by_day(result) -> dict[date, int]:
    return {day: fen for (_, day), fen in result.amounts_by_day().items()}


def test_a_prorated_opening_needs_the_full_ladder_at_the_next_cycle_boundary():
    change = full_ladder_change(RISE, OPENED)
    assert change is not None
    assert (change.at, change.label) == (at(2026, 1, 1), FULL)
    assert is_full_ladder(change.label) and not is_full_ladder(NEW)
    assert [str(p.value) for p in change.prices] == ["3.20", "3.84", "4.80"]
    assert full_ladder_at(RISE, at(2026, 1, 1)) == change
    assert [c.label for c in meter_changes(RISE, at(2026, 6, 1), OPENED)][-1] == FULL
    assert FULL not in [c.label for c in meter_changes(RISE, at(2025, 12, 31), OPENED)]


def test_no_full_ladder_without_proration_or_opened_on_a_cycle_start():
    assert full_ladder_change(RISE, date(2025, 1, 1)) is None  # the whole cycle: no proration
    assert full_ladder_change(CATALOG.get("shanghai-residential"), OPENED) is None  # "none"


def test_the_opening_ladder_is_prorated_and_the_full_ladder_is_not():
    opening = next(c for c in price_changes(RISE, at(2025, 10, 1)) if c.label == NEW)
    full = full_ladder_change(RISE, OPENED)
    assert full is not None
    held = ladder_for(RISE, opening, 3, OPENED).ladders[:2]
    assert held == (Volume(Decimal(75)), Volume(Decimal(151)))
    assert ladder_for(RISE, full, 3, OPENED).ladders[:2] == (
        Volume(Decimal(300)),
        Volume(Decimal(600)),
    )


def test_the_meter_keeps_prorated_thresholds_until_it_confirms_the_full_ladder():
    # Oct 1: 80 m³ (75 in tier 1 in the opening cycle); Jan 1: 80 m³, still prorated on the
    # meter; the full ladder confirmed Jan 3 00:00; Jan 3: 100 m³ on the full ladder, counted
    # on from the 80 m³ the meter has in its cycle
    use = [80_000] + [0] * 91 + [80_000, 0, 100_000]
    readings = series(date(2025, 10, 1), use)
    held = with_opening(RISE, {FULL: at(2026, 1, 3)}, OPENED)
    metered = by_day(Rater(meter_tariff(RISE, held, OPENED)).rate(readings, CONTEXT))
    official = by_day(Rater(RISE).rate(readings, CONTEXT))
    prorated = 75 * 320 + 5 * 384
    assert metered[date(2025, 10, 1)] == official[date(2025, 10, 1)] == prorated
    assert metered[date(2026, 1, 1)] == prorated  # the meter: still 75/151 in the new cycle
    assert official[date(2026, 1, 1)] == 80 * 320  # the tariff: the full ladder
    assert metered[date(2026, 1, 3)] == official[date(2026, 1, 3)] == 100 * 320


def test_without_the_full_ladder_the_meter_stays_prorated_in_later_cycles():
    readings = series(date(2025, 12, 31), [0, 80_000])
    held = with_opening(RISE, {}, OPENED)
    metered = by_day(Rater(meter_tariff(RISE, held, OPENED)).rate(readings, CONTEXT))
    assert metered[date(2026, 1, 1)] == 75 * 320 + 5 * 384


def test_the_stale_prorated_stretch_is_a_divergence_until_the_full_ladder_is_confirmed():
    confirmed = with_opening(RISE, {FULL: at(2026, 1, 3)}, OPENED)
    until = at(2026, 2, 1)
    assert divergence(RISE, confirmed, until, OPENED) == [(at(2026, 1, 1), at(2026, 1, 3))]
    waiting = with_opening(RISE, {}, OPENED)
    assert divergence(RISE, waiting, until, OPENED) == [(at(2026, 1, 1), until)]
    assert true_up_start(RISE, waiting, until, opened_on=OPENED) == at(2026, 1, 1)
    # opened on a cycle start, the rise confirmed on time: nothing prorated, nothing diverges
    plain = with_opening(RISE, {NEW: at(2025, 7, 1)}, date(2025, 1, 1))
    assert divergence(RISE, plain, until, date(2025, 1, 1)) == []


def test_once_the_full_ladder_is_behind_the_rater_is_the_full_one():
    confirmed = with_opening(RISE, {FULL: at(2026, 1, 3)}, OPENED)
    kept = as_of(RISE, confirmed, at(2026, 2, 1), OPENED)
    assert kept == {FULL: at(2026, 1, 1)}
    version = meter_tariff(RISE, kept, OPENED).versions[0]
    assert version.meter_share == (1, 1)
