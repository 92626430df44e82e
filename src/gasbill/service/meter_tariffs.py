"""Raters of tariffs as the meters applied them, shared and kept between runs.

A meter-mode account is shadow-billed with the prices its meter confirmed
(DESIGN §5). Building a rater costs a timeline, so raters are cached by the
confirmations that matter from where rating starts (`as_of`): once a
campaign is behind them, every meter on a tariff shares one rater again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime

from gasbill.domain.price_changes import held_share
from gasbill.domain.rating import Rater
from gasbill.domain.tariff import Proration, Tariff
from gasbill.domain.true_up import as_of, meter_entries, meter_tariff, with_opening
from gasbill.service.ports import TariffBook

RaterKey = tuple[int, frozenset[tuple[str, datetime]], date | None]


class MeterRaters:
    """A bounded cache of raters, by tariff (identity) and confirmations."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._raters: OrderedDict[RaterKey, tuple[Tariff, Rater]] = OrderedDict()
        self._lock = threading.Lock()

    def rater(
        self, tariff: Tariff, confirmed: Mapping[str, datetime], opened_on: date | None = None
    ) -> Rater:
        """The rater of `meter_tariff`; the opening day is part of the key only where it counts."""
        # every ladder held full: meters opened on any day share one rater
        shared = opened_on is None or not _prorated(tariff, confirmed, opened_on)
        key = (id(tariff), frozenset(confirmed.items()), None if shared else opened_on)
        with self._lock:
            found = self._raters.get(key)
            if found is not None and found[0] is tariff:
                self._raters.move_to_end(key)
                return found[1]
        rater = Rater(meter_tariff(tariff, confirmed, opened_on))
        with self._lock:
            self._raters[key] = (tariff, rater)
            self._raters.move_to_end(key)
            while len(self._raters) > self.maxsize:
                self._raters.popitem(last=False)
        return rater

    def clear(self) -> None:
        with self._lock:
            self._raters.clear()


def _prorated(tariff: Tariff, confirmed: Mapping[str, datetime], opened_on: date) -> bool:
    """Whether any ladder the meter held has prorated thresholds."""
    if all(v.opening_proration is Proration.NONE for v in tariff.versions):
        return False
    return any(
        held_share(tariff, change, opened_on) != (1, 1)
        for _, change in meter_entries(tariff, confirmed, opened_on)
    )


SHARED = MeterRaters()


def meter_confirmations(
    tariff: Tariff, confirmed: Mapping[str, datetime], opened_on: date
) -> dict[str, datetime]:
    """What a meter holds: the change it was opened with, and those it confirmed since."""
    return with_opening(tariff, confirmed, opened_on)


def meter_rater(
    catalog: TariffBook,
    tariff_id: str,
    opened_on: date,
    confirmed: Mapping[str, datetime],
    *,
    since: datetime | None = None,
    raters: MeterRaters = SHARED,
) -> Rater:
    """The rater of the tariff as this account's meter applied it, for rating from `since` on."""
    tariff = catalog.get(tariff_id)
    full = meter_confirmations(tariff, confirmed, opened_on)
    kept = full if since is None else as_of(tariff, full, since, opened_on)
    return raters.rater(tariff, kept, opened_on)
