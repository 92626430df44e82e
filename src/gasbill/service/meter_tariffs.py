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

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.rating import Rater
from gasbill.domain.tariff import Tariff
from gasbill.domain.true_up import as_of, meter_tariff, with_opening

RaterKey = tuple[int, frozenset[tuple[str, datetime]]]


class MeterRaters:
    """A bounded cache of raters, by tariff (identity) and confirmations."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._raters: OrderedDict[RaterKey, tuple[Tariff, Rater]] = OrderedDict()
        self._lock = threading.Lock()

    def rater(self, tariff: Tariff, confirmed: Mapping[str, datetime]) -> Rater:
        key = (id(tariff), frozenset(confirmed.items()))
        with self._lock:
            found = self._raters.get(key)
            if found is not None and found[0] is tariff:
                self._raters.move_to_end(key)
                return found[1]
        rater = Rater(meter_tariff(tariff, confirmed))
        with self._lock:
            self._raters[key] = (tariff, rater)
            self._raters.move_to_end(key)
            while len(self._raters) > self.maxsize:
                self._raters.popitem(last=False)
        return rater

    def clear(self) -> None:
        with self._lock:
            self._raters.clear()


SHARED = MeterRaters()


def meter_confirmations(
    tariff: Tariff, confirmed: Mapping[str, datetime], opened_on: date
) -> dict[str, datetime]:
    """What a meter holds: the change it was opened with, and those it confirmed since."""
    return with_opening(tariff, confirmed, opened_on)


def meter_rater(
    catalog: TariffCatalog,
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
    return raters.rater(tariff, full if since is None else as_of(tariff, full, since))
