"""The balance a meter-mode account is judged by."""

from __future__ import annotations

from datetime import datetime, timedelta

from gasbill.domain.decisions.common import to_utc
from gasbill.domain.money import Money

METER_READING_STALE_AFTER = timedelta(hours=48)


def meter_mode_balance(
    *,
    reported_remain: Money | None,
    reported_at: datetime | None,
    top_ups_in_flight: Money,
    meter_credit: Money,
    now: datetime,
    stale_after: timedelta = METER_READING_STALE_AFTER,
) -> Money:
    """The balance a meter-mode account is judged by (DESIGN §7).

    The meter's latest reported `remain_money` plus top-ups still in flight
    (the meter has not counted them yet); the ledger's `meter_credit` when the
    meter has not reported for `stale_after`, since an old report no longer
    says what the meter holds.
    """
    if reported_remain is None or reported_at is None:
        return meter_credit
    if to_utc(now, "now") - to_utc(reported_at, "reported_at") > stale_after:
        return meter_credit
    return reported_remain + top_ups_in_flight
