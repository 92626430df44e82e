"""What a true-up posts: the days' differences grouped by the campaign that owns each day,
and one ledger line per campaign for their net, keyed so that a repeated run cannot post
twice.

A day belongs to the newest price change whose push to the meters had begun by the end
of that day (its effective instant, the campaign's creation, or the meter's confirmation,
whichever came first); a day before any belongs to none (`None`).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gasbill.domain.cycles import local_midnight
from gasbill.domain.ledger import AccountCode, Transfer, TransferKind, new_transfer_id
from gasbill.domain.rating import DayKey

ACTOR = "true-up"


def push_begun(
    effective_at: datetime, created_at: datetime, confirmed_at: datetime | None
) -> datetime:
    """When a price change's push had begun for a meter: the earliest of the three."""
    return min(effective_at, created_at, *([confirmed_at] if confirmed_at is not None else []))


def attribution(starts: Iterable[tuple[datetime, int]], zone: str) -> Callable[[date], int | None]:
    """day → the campaign whose push began last by the end of that day (local midnight after
    it), given each campaign's (begun, id); None before the first."""
    ordered = sorted(starts)
    instants = [at for at, _ in ordered]
    tz = ZoneInfo(zone)

    def owner(day: date) -> int | None:
        k = bisect.bisect_left(instants, local_midnight(day + timedelta(days=1), tz)) - 1
        return ordered[k][1] if k >= 0 else None

    return owner


def by_campaign(
    difference: Mapping[DayKey, int], owner: Callable[[date], int | None]
) -> dict[int | None, dict[DayKey, int]]:
    """The day differences grouped by the campaign that owns each day."""
    grouped: dict[int | None, dict[DayKey, int]] = defaultdict(dict)
    for key, fen in difference.items():
        grouped[owner(key[1])][key] = fen
    return dict(grouped)


def stamp(
    account_id: int,
    campaign_id: int | None,
    days: Mapping[DayKey, int],
    posted: Mapping[DayKey, tuple[int, int]],
) -> str:
    """Deterministic for one state of the days (their differences and what was posted and
    revised before): the same run repeated gets the same key, so posts nothing twice."""
    state = sorted((k[0], str(k[1]), fen, *posted.get(k, (0, 0))) for k, fen in days.items())
    digest = hashlib.sha256(json.dumps(state).encode()).hexdigest()[:16]
    first, last = min(k[1] for k in days), max(k[1] for k in days)
    return f"{account_id}:{campaign_id or 0}:{first}..{last}:{digest}"


def true_up_transfer(
    account_id: int,
    campaign_id: int | None,
    days: Mapping[DayKey, int],
    key_stamp: str,
    *,
    effective: datetime,
    now: datetime,
) -> Transfer | None:
    """One ledger line for the net of the days: prepaid → revenue when more is owed, revenue
    → prepaid when less; none when the days net to zero.

    Day by day the two ratings' cumulative rounding can differ by a fen either way even
    where the prices agree; only the net is owed or due back.
    """
    net = sum(days.values())
    if net == 0:
        return None
    prepaid, revenue = AccountCode.prepaid(str(account_id)), AccountCode.revenue("gas")
    span = f"{min(k[1] for k in days)}..{max(k[1] for k in days)}"
    what = f"campaign #{campaign_id}" if campaign_id else "tariff change"
    if net > 0:
        key, debit, credit, reason = (
            f"true-up:{key_stamp}",
            prepaid,
            revenue,
            "price-change true-up",
        )
    else:
        key, debit, credit = f"true-up-refund:{key_stamp}", revenue, prepaid
        reason = "price-change true-up refund"
    return Transfer(
        id=new_transfer_id(),
        idempotency_key=key,
        debit_account=debit,
        credit_account=credit,
        amount=abs(net),
        kind=TransferKind.TRUE_UP,
        effective_at=effective,
        recorded_at=now,
        reason=f"{reason} ({what}) {span}",
        actor=ACTOR,
    )
