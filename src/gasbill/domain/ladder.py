"""Rating's inner steps, per reading: is it rateable after the last one, and its litres
placed on the price ladder. Called once per reading on the hot path (bench/rating.py)."""

from __future__ import annotations

from decimal import Decimal

from gasbill.domain.money import Volume
from gasbill.domain.rated import AnomalyKind, ChargeLine, FrozenReading

US_PER_HOUR = 3_600_000_000


def check_reading(
    reading: FrozenReading,
    at_us: int,
    delta: int,
    last: FrozenReading,
    last_us: int,
    max_lph: int | None,
) -> tuple[AnomalyKind | None, str] | None:
    """Why a reading cannot be rated after `last`, or None. (None, "") = skip silently."""
    if at_us < last_us:
        return AnomalyKind.OUT_OF_ORDER, f"earlier than {last.at.isoformat()}"
    if at_us == last_us:
        if delta == 0:
            return None, ""  # the same reading again
        return AnomalyKind.CONFLICTING_DUPLICATE, (
            f"same time as another reading, {Volume.of_litres(abs(delta)).fixed()} m³ apart"
        )
    if delta < 0:
        return AnomalyKind.BACKWARDS, f"register went back by {Volume.of_litres(-delta).fixed()} m³"
    if max_lph is not None and delta * US_PER_HOUR > max_lph * (at_us - last_us):
        hours = Decimal(at_us - last_us) / US_PER_HOUR
        return AnomalyKind.EXCESSIVE_FLOW, (
            f"{Volume.of_litres(delta).fixed()} m³ in {hours:.2f} h exceeds "
            f"{Decimal(max_lph) / 1000} m³/h"
        )
    return None


def place_on_tiers(
    litres: int, used: int, thresholds: tuple[int, ...], prices: tuple[int, ...]
) -> tuple[tuple[ChargeLine, ...], int, int]:
    """Place `litres` on the ladder above `used`: lines, new usage, exact cost."""
    if litres == 0:
        return (), used, 0
    # Most days fit in the tier they start in: one line, no loop.
    tier = 0
    for threshold in thresholds:
        if used < threshold:
            break
        tier += 1
    if tier == len(thresholds) or used + litres <= thresholds[tier]:
        price = prices[tier]
        line_cost = litres * price
        return (ChargeLine(tier + 1, litres, price, line_cost),), used + litres, line_cost
    lines: list[ChargeLine] = []
    cost = 0
    remaining = litres
    position = used
    for tier, threshold in enumerate(thresholds):
        if remaining <= 0:
            break
        if position < threshold:
            take = min(remaining, threshold - position)
            line_cost = take * prices[tier]
            lines.append(ChargeLine(tier + 1, take, prices[tier], line_cost))
            cost += line_cost
            position += take
            remaining -= take
    if remaining > 0:
        tier = len(prices) - 1
        line_cost = remaining * prices[tier]
        lines.append(ChargeLine(tier + 1, remaining, prices[tier], line_cost))
        cost += line_cost
        position += remaining
    return tuple(lines), position, cost
