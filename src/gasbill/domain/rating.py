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

from collections.abc import Iterable, Mapping

from gasbill.domain.cycles import Cycle
from gasbill.domain.ladder import check_reading, place_on_tiers
from gasbill.domain.money import round_micro_to_fen
from gasbill.domain.rated import (
    Anomaly,
    AnomalyKind,
    Charge,
    ChargeLine,
    DayKey,
    FrozenReading,
    RatedPeriod,
    RatingContext,
    RatingResult,
    RatingState,
)
from gasbill.domain.tariff import Proration, Tariff, TariffVersion, VolumeBasis
from gasbill.domain.timeline import NO_VERSION, Timeline, from_us, to_us

# the result types live in domain/rated.py; everyone reads them from here
__all__ = [
    "Anomaly",
    "AnomalyKind",
    "Charge",
    "ChargeLine",
    "DayKey",
    "FrozenReading",
    "RatedPeriod",
    "Rater",
    "RatingContext",
    "RatingResult",
    "RatingState",
    "charge_difference",
    "opening_share",
    "rate",
]


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
        """Rate `readings` after `state`: the periods charged, the anomalies, the new state.

        One long function on purpose: it is the hot path (every reading of every
        account; bench/rating.py holds it to >= 25 % of a bare Decimal tier loop), so
        the tariff's fields are read once into locals and each reading costs no more
        calls than its pieces and tiers need.
        """
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
                problem = check_reading(reading, at_us, delta, last, last_us, max_lph)
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
                lines, used, piece_cost = place_on_tiers(
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
