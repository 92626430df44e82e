"""Household gas use by season: deterministic for a seed, in whole litres."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Average litres a day for a cooking-and-hot-water household, by month; heating
# households scale it. Winter use is about three times summer use.
MONTHLY_LITRES_PER_DAY = (2400, 2200, 1800, 1300, 1000, 800, 700, 700, 800, 1100, 1700, 2200)


def daily_litres(day: date, rng: random.Random, scale_percent: int = 100) -> int:
    """One day's use: the month's mean, ±30 % noise, never negative."""
    mean_litres = MONTHLY_LITRES_PER_DAY[day.month - 1] * scale_percent // 100
    noise = rng.randint(-30, 30)
    weekend = 15 if day.weekday() >= 5 else 0
    return max(0, mean_litres * (100 + noise + weekend) // 100)


def frozen_readings(
    first_day: date,
    days: int,
    zone: ZoneInfo,
    *,
    seed: int = 1,
    start_litres: int = 0,
    scale_percent: int = 100,
) -> Iterator[tuple[datetime, int, int]]:
    """Daily freezes at local midnight as (instant, std litres, work litres); the first opens."""
    rng = random.Random(seed)
    register = start_litres
    for offset in range(days + 1):
        day = first_day + timedelta(days=offset)
        at = datetime.combine(day, time(0), tzinfo=zone)
        yield at, register, register * 1_020 // 1_000
        register += daily_litres(day, rng, scale_percent)
