"""Rating: frozen readings → ladder-priced charges, exact to the fen, never drifting.

Consumption is the difference of consecutive frozen readings on the tariff's
volume basis. The delta of (t_prev, t] is split at local days, cycle
boundaries, version and season changes (in proportion to time, which only
matters across a gap), then across tiers by cycle-to-date usage.

Inside, volumes are integer litres, prices integer thousandths of a yuan per
m³, and costs integer millionths of a yuan (litres × thousandths), so all
arithmetic is exact and fast; the types in the results expose them as
`Volume`, `Price` and `Money`.

Rounding never drifts: the amount charged for a piece is
round(cycle cost after) − round(cycle cost before), so a cycle's charges sum
to the rounded cost of its whole usage.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from gasbill.domain.cycles import Cycle
from gasbill.domain.money import Money, Price, Volume, money_from_micro, round_micro_to_fen
from gasbill.domain.tariff import Proration, Tariff, TariffVersion, VolumeBasis
from gasbill.domain.timeline import NO_VERSION, Timeline, from_us, to_us

US_PER_HOUR = 3_600_000_000


class FrozenReading(NamedTuple):
    """A frozen (data_type 1) reading: the registers' totals at the freeze instant."""

    at: datetime  # aware
    std_litres: int | None
    work_litres: int | None = None

    @classmethod
    def of(cls, at: datetime, std_sum: Volume, work_sum: Volume | None = None) -> FrozenReading:
        if at.tzinfo is None:
            raise ValueError("a reading's time must be aware")
        return cls(at, std_sum.litres, None if work_sum is None else work_sum.litres)

    @property
    def std_sum(self) -> Volume | None:
        return None if self.std_litres is None else Volume.of_litres(self.std_litres)

    @property
    def work_sum(self) -> Volume | None:
        return None if self.work_litres is None else Volume.of_litres(self.work_litres)

    def register(self, basis: VolumeBasis) -> int | None:
        return self.std_litres if basis is VolumeBasis.STD_SUM else self.work_litres


class AnomalyKind(enum.StrEnum):
    BACKWARDS = "backwards"  # register below the previous one
    CONFLICTING_DUPLICATE = "conflicting_duplicate"  # same time, other value
    EXCESSIVE_FLOW = "excessive_flow"  # implies a flow above the maximum
    OUT_OF_ORDER = "out_of_order"  # earlier than a reading already rated
    NO_TARIFF = "no_tariff"  # before the tariff's first version
    MISSING_REGISTER = "missing_register"  # the basis register is absent


class Anomaly(NamedTuple):
    kind: AnomalyKind
    reading: FrozenReading
    previous: FrozenReading | None
    detail: str


@dataclass(frozen=True, slots=True)
class RatingContext:
    """What rating needs to know of the account, beyond its readings."""

    persons: int | None = None
    opened_on: date | None = None
    whole_m3: bool = False  # self-billing meters hold whole-m³ thresholds
    max_flow_m3_per_hour: Decimal | None = None


class RatingState(NamedTuple):
    """What rating carries from one call to the next for one account."""

    last: FrozenReading | None = None
    cycle: Cycle | None = None
    version_index: int = NO_VERSION
    used_litres: int = 0  # cycle-to-date usage on the tier counter
    cost_micro: int = 0  # cycle-to-date exact cost; its rounding is what was charged

    def rebased(self, opening: FrozenReading) -> RatingState:
        """A new register from `opening` on (meter replaced, setcumulant): same cycle."""
        return self._replace(last=opening)

    @property
    def used(self) -> Volume:
        return Volume.of_litres(self.used_litres)

    @property
    def cost(self) -> Money:
        return money_from_micro(self.cost_micro)


class ChargeLine(NamedTuple):
    tier: int
    litres: int
    price_milli: int
    cost_micro: int  # exact

    @property
    def volume(self) -> Volume:
        return Volume.of_litres(self.litres)

    @property
    def price(self) -> Price:
        return Price.of_milli(self.price_milli)

    @property
    def cost(self) -> Money:
        return money_from_micro(self.cost_micro)


class Charge(NamedTuple):
    """Usage in one regime: one local day, one cycle, one version and price set."""

    period_from: datetime
    period_to: datetime
    day: date
    cycle: Cycle
    version: str
    litres: int
    amount_fen: int  # cumulatively rounded
    lines: tuple[ChargeLine, ...]

    @property
    def volume(self) -> Volume:
        return Volume.of_litres(self.litres)

    @property
    def amount(self) -> Money:
        return Money.of_fen(self.amount_fen)

    @property
    def cost(self) -> Money:
        return money_from_micro(sum(line.cost_micro for line in self.lines))


class RatedPeriod(NamedTuple):
    """The consumption between two consecutive good readings."""

    period_from: datetime
    period_to: datetime
    litres: int
    charges: tuple[Charge, ...]

    @property
    def volume(self) -> Volume:
        return Volume.of_litres(self.litres)

    @property
    def amount_fen(self) -> int:
        return sum(charge.amount_fen for charge in self.charges)

    @property
    def amount(self) -> Money:
        return Money.of_fen(self.amount_fen)

    @property
    def lines(self) -> list[tuple[Charge, ChargeLine]]:
        return [(charge, line) for charge in self.charges for line in charge.lines]


DayKey = tuple[str, date]  # (cycle key, local day): how posted charges are keyed


class RatingResult(NamedTuple):
    periods: list[RatedPeriod]
    anomalies: list[Anomaly]
    state: RatingState

    @property
    def charges(self) -> list[Charge]:
        return [charge for period in self.periods for charge in period.charges]

    @property
    def total_fen(self) -> int:
        return sum(period.amount_fen for period in self.periods)

    def amounts_by_day(self) -> dict[DayKey, int]:
        amounts: dict[DayKey, int] = {}
        for charge in self.charges:
            key = (charge.cycle.key, charge.day)
            amounts[key] = amounts.get(key, 0) + charge.amount_fen
        return amounts


class Rater:
    """Rates readings on one tariff; keep one per tariff and reuse it."""

    def __init__(self, tariff: Tariff) -> None:
        self.tariff = tariff
        self.timeline = Timeline(tariff)
        self._labels = [v.label for v in tariff.versions]
        self._thresholds: dict[tuple[int, Cycle, RatingContext], tuple[int, ...]] = {}

    def rate(
        self,
        readings: Iterable[FrozenReading],
        context: RatingContext | None = None,
        state: RatingState | None = None,
    ) -> RatingResult:
        context = context or RatingContext()
        state = state or RatingState()
        readings = list(readings)
        periods: list[RatedPeriod] = []
        anomalies: list[Anomaly] = []
        if not readings:
            return RatingResult(periods, anomalies, state)

        basis = self.tariff.volume_basis
        std_basis = basis is VolumeBasis.STD_SUM
        rounding = self.tariff.rounding
        versions = self.tariff.versions
        labels = self._labels
        first = state.last.at if state.last is not None else readings[0].at
        self.timeline.ensure(to_us(min(first, readings[0].at)), to_us(readings[-1].at))
        pieces_of = self.timeline.pieces
        max_lph = (
            None
            if context.max_flow_m3_per_hour is None
            else int(context.max_flow_m3_per_hour * 1000)
        )

        last = state.last
        last_us = to_us(last.at) if last is not None else 0
        last_register = last.register(basis) if last is not None else None
        cycle, version_index = state.cycle, state.version_index
        used, cost = state.used_litres, state.cost_micro
        charged = round_micro_to_fen(cost, rounding)
        # thresholds change only with the version or the cycle: look them up then
        thresholds: tuple[int, ...] = ()
        thresholds_for: tuple[int, Cycle | None] | None = None

        for reading in readings:
            register = reading.std_litres if std_basis else reading.work_litres
            if register is None:
                anomalies.append(
                    Anomaly(AnomalyKind.MISSING_REGISTER, reading, last, f"no {basis} register")
                )
                continue
            if last is None or last_register is None:
                last, last_us, last_register = reading, to_us(reading.at), register
                continue
            at_us = to_us(reading.at)
            delta = register - last_register
            if at_us <= last_us or delta < 0 or max_lph is not None:
                problem = _check(reading, at_us, delta, last, last_us, max_lph)
                if problem is not None:
                    if problem[0] is not None:
                        anomalies.append(Anomaly(problem[0], reading, last, problem[1]))
                    continue

            pieces = pieces_of(last_us, at_us, delta)
            single = len(pieces) == 1
            if pieces[0].regime.cycle is None or (
                not single and any(piece.regime.cycle is None for piece in pieces)
            ):
                anomalies.append(
                    Anomaly(
                        AnomalyKind.NO_TARIFF, reading, last, "before the tariff's first version"
                    )
                )
                continue
            charges: list[Charge] = []
            for piece in pieces:
                regime = piece.regime
                if regime.cycle is not cycle and regime.cycle != cycle:
                    cycle, used, cost, charged = regime.cycle, 0, 0, 0
                if regime.version_index != version_index:
                    if (
                        version_index != NO_VERSION
                        and versions[regime.version_index].reset_on_change
                    ):
                        used = 0
                    version_index = regime.version_index
                if thresholds_for != (version_index, cycle):
                    assert cycle is not None
                    thresholds = self._thresholds_for(version_index, cycle, context)
                    thresholds_for = (version_index, cycle)
                lines, used, piece_cost = _tiers(
                    piece.litres, used, thresholds, regime.prices_milli
                )
                cost += piece_cost
                rounded = round_micro_to_fen(cost, rounding)
                assert cycle is not None
                charges.append(
                    Charge(
                        last.at if single else from_us(piece.from_us),
                        reading.at if single else from_us(piece.to_us),
                        regime.day,
                        cycle,
                        labels[version_index],
                        piece.litres,
                        rounded - charged,
                        lines,
                    )
                )
                charged = rounded
            periods.append(RatedPeriod(last.at, reading.at, delta, tuple(charges)))
            last, last_us, last_register = reading, at_us, register

        new_state = RatingState(last, cycle, version_index, used, cost)
        return RatingResult(periods, anomalies, new_state)

    def _thresholds_for(
        self, version_index: int, cycle: Cycle, context: RatingContext
    ) -> tuple[int, ...]:
        key = (version_index, cycle, context)
        cached = self._thresholds.get(key)
        if cached is None:
            cached = self._compute_thresholds(version_index, cycle, context)
            self._thresholds[key] = cached
        return cached

    def _compute_thresholds(
        self, version_index: int, cycle: Cycle, context: RatingContext
    ) -> tuple[int, ...]:
        version = self.tariff.versions[version_index]
        litres = [t.litres for t in version.thresholds_for(context.persons)]
        numerator, denominator = opening_share(version.opening_proration, version, cycle, context)
        if numerator != denominator:
            litres = [t * numerator // denominator for t in litres]
        if context.whole_m3:
            litres = [t - t % 1000 for t in litres]
        return tuple(litres)


def opening_share(
    policy: Proration, version: TariffVersion, cycle: Cycle, context: RatingContext
) -> tuple[int, int]:
    """The share of the opening cycle left when the account opened: (numerator, denominator).

    A version of a tariff as a meter applied it carries the share the meter
    holds (`meter_share`), in every cycle.
    """
    if version.meter_share is not None:
        return version.meter_share
    opened = context.opened_on
    if policy is Proration.NONE or opened is None:
        return 1, 1
    cycle_from, cycle_to = version.cycle.bounds(cycle.first_day)
    if not cycle_from < opened < cycle_to:
        return 1, 1
    if policy is Proration.BY_DAY:
        return (cycle_to - opened).days, (cycle_to - cycle_from).days
    months = version.cycle.months
    return months - version.cycle.month_index(cycle_from, opened), months


def _check(
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


def _tiers(
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


def rate(
    tariff: Tariff,
    readings: Iterable[FrozenReading],
    context: RatingContext | None = None,
    state: RatingState | None = None,
) -> RatingResult:
    """Rate once; for many accounts on one tariff, keep a `Rater`."""
    return Rater(tariff).rate(readings, context, state)


def charge_difference(
    target: Mapping[DayKey, int], posted: Mapping[DayKey, int]
) -> dict[DayKey, int]:
    """What to post so that `posted` becomes `target`: only the non-zero differences."""
    keys = set(target) | set(posted)
    differences = {key: target.get(key, 0) - posted.get(key, 0) for key in keys}
    return {key: amount for key, amount in sorted(differences.items()) if amount}
