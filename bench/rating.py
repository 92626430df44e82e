"""Rating throughput: the real rating path against a bare Decimal tier loop.

    .venv/bin/python bench/rating.py [--meter-days 1000000] [--days 365]

Both rate the same daily deltas on Beijing's residential ladder. The real
path is `Rater.rate` on frozen readings (timeline lookup, splitting, tiers,
cumulative rounding, charge lines); the baseline is the least a tier loop can
do in Decimal: place each day's delta on the ladder and round the cycle's
running cost. Target: the real path at >= 25 % of the baseline.
"""

from __future__ import annotations

import argparse
import itertools
import time
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from gasbill.adapters.tariffs import load_tariff
from gasbill.domain.rating import FrozenReading, Rater, RatingContext
from iotsim.consumption import frozen_readings

TARIFF = Path(__file__).resolve().parent.parent / "tariffs" / "beijing-residential.toml"
FEN = Decimal("0.01")


def fleet(meters: int, days: int, zone: ZoneInfo) -> list[list[FrozenReading]]:
    return [
        [
            FrozenReading(*freeze)
            for freeze in frozen_readings(
                date(2025, 1, 1), days, zone, seed=seed, scale_percent=150
            )
        ]
        for seed in range(meters)
    ]


def real_path(rater: Rater, series: list[list[FrozenReading]]) -> int:
    context = RatingContext(persons=3)
    total = 0
    for readings in series:
        total += rater.rate(readings, context).total_fen
    return total


def bare_loop(deltas: list[list[Decimal]], thresholds: list[Decimal], prices: list[Decimal]) -> int:
    total = Decimal(0)
    last_price = prices[-1]
    for meter in deltas:
        used = Decimal(0)
        cost = Decimal(0)
        charged = Decimal(0)
        for delta in meter:
            remaining = delta
            for threshold, price in zip(thresholds, prices, strict=False):
                if remaining and used < threshold:
                    take = min(remaining, threshold - used)
                    cost += take * price
                    used += take
                    remaining -= take
            if remaining:
                cost += remaining * last_price
                used += remaining
            rounded = cost.quantize(FEN, rounding=ROUND_HALF_UP)
            day_charge = rounded - charged  # what the day is charged: cumulative rounding
            charged += day_charge
        total += charged
    return int(total * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meter-days", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    tariff = load_tariff(TARIFF)
    zone = ZoneInfo(tariff.zone)
    meters = max(1, args.meter_days // args.days)
    meter_days = meters * args.days
    print(f"preparing {meters} meters × {args.days} days = {meter_days:,} meter-days …")
    series = fleet(meters, args.days, zone)
    deltas = [
        [Decimal(b.std_litres - a.std_litres) / 1000 for a, b in itertools.pairwise(s)]
        for s in series
    ]
    version = tariff.versions[-1]
    thresholds = [t.value for t in version.thresholds]
    prices = [p.value for p in version.prices]
    rater = Rater(tariff)
    rater.rate(series[0][:3])  # build the timeline outside the timing

    started = time.perf_counter()
    baseline_fen = bare_loop(deltas, thresholds, prices)
    baseline_s = time.perf_counter() - started

    started = time.perf_counter()
    real_fen = real_path(rater, series)
    real_s = time.perf_counter() - started

    if real_fen != baseline_fen:
        raise SystemExit(f"the two paths disagree: {real_fen} fen vs {baseline_fen} fen")
    baseline_rate = meter_days / baseline_s
    real_rate = meter_days / real_s
    print(f"bare Decimal tier loop : {baseline_rate:12,.0f} meter-days/s  ({baseline_s:.2f} s)")
    print(f"real rating path       : {real_rate:12,.0f} meter-days/s  ({real_s:.2f} s)")
    print(f"ratio real / baseline  : {real_rate / baseline_rate:12.1%}   (target >= 25 %)")
    print(f"both billed {real_fen / 100:,.2f} yuan in total")


if __name__ == "__main__":
    main()
