"""A household's gas use through the day: how a day's litres spread over its hours.

The day's total comes from `consumption.daily_litres` (season, weekend, noise);
here it is spread over the local day by hourly weights, one set for the
heating season (November to March: heating mornings and evenings, some use at
night) and one for the rest of the year (cooking and hot water peaks). The
share of the day used by an instant is piecewise linear, so the litres used
between any two instants are exact whole litres and a day adds up to its
total, whatever the step the world is advanced by.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

HEATING_MONTHS = frozenset({11, 12, 1, 2, 3})

# Relative use in each local hour 0..23.
SUMMER_WEIGHTS = (1, 1, 1, 1, 1, 2, 6, 10, 8, 4, 3, 7, 8, 4, 2, 2, 3, 8, 12, 10, 7, 5, 3, 1)
WINTER_WEIGHTS = (3, 3, 3, 3, 3, 4, 8, 11, 9, 6, 5, 7, 8, 5, 4, 4, 5, 9, 12, 11, 9, 7, 5, 4)

# Mean gas temperature by month, tenths of °C (the meter sits outside or in a kitchen).
MONTHLY_TENTHS_C = (20, 45, 100, 160, 210, 250, 280, 275, 230, 170, 100, 40)
BASE_PRESSURE = Decimal("103.300")  # kPa absolute: atmosphere plus a 2 kPa service


class DayShape:
    """Cumulative hourly weights of one profile."""

    def __init__(self, weights: tuple[int, ...]) -> None:
        if len(weights) != 24 or min(weights) < 0 or sum(weights) == 0:
            raise ValueError("a day shape needs 24 non-negative hourly weights")
        self.weights = weights
        self.total = sum(weights)
        cumulative = [0]
        for weight in weights:
            cumulative.append(cumulative[-1] + weight)
        self.cumulative = tuple(cumulative)

    def used_by(self, day_litres: int, seconds: int, day_seconds: int) -> int:
        """Litres of `day_litres` used in the first `seconds` of a day `day_seconds` long."""
        if seconds <= 0:
            return 0
        if seconds >= day_seconds:
            return day_litres
        # Stretch the 24 hours over the real day length (23 or 25 h on a DST change).
        scaled = seconds * 86_400
        hour, within = divmod(scaled, 3_600 * day_seconds)
        numerator = self.cumulative[hour] * 3_600 * day_seconds + self.weights[hour] * within
        return day_litres * numerator // (self.total * 3_600 * day_seconds)

    def litres_per_hour(self, day_litres: int, hour: int) -> int:
        return day_litres * self.weights[hour] // self.total


SUMMER = DayShape(SUMMER_WEIGHTS)
WINTER = DayShape(WINTER_WEIGHTS)


def shape_for(month: int) -> DayShape:
    return WINTER if month in HEATING_MONTHS else SUMMER


def gas_temperature(local: datetime, noise_tenths: int) -> Decimal:
    """°C with one decimal: the month's mean, a day-night swing and the meter's noise."""
    swing = (-20, -25, -25, -20, -10, 0, 10, 20, 25, 25, 20, 10)[local.hour // 2]
    return Decimal(MONTHLY_TENTHS_C[local.month - 1] + swing + noise_tenths).scaleb(-1)
