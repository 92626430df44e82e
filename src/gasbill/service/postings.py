"""The ledger's side of billing: a run's day differences as transfers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from gasbill.domain.ledger import AccountCode, Transfer, TransferKind, new_transfer_id
from gasbill.domain.rating import DayKey, RatingResult


def transfers_for(
    account_id: int,
    difference: dict[DayKey, int],
    result: RatingResult,
    now: datetime,
    *,
    meter_mode: bool,
) -> list[Transfer]:
    """The ledger's side of a run's day differences.

    System mode: one charge (and, after re-rating, one credit) per account
    and run. Meter mode: one per day, effective when the day's last reading
    was taken, so meter_credit can be read as of any reading and compared
    with the balance the meter reported then. The days' `posted_fen`,
    written in the same transaction, is what keeps a day from being charged
    twice; the transfers' keys only need to be unique.
    """
    if not difference:
        return []
    key = str(account_id)
    payer = AccountCode.meter_credit(key) if meter_mode else AccountCode.prepaid(key)
    last = result.state.last.at if result.state.last is not None else now
    if not meter_mode:
        groups = {last: dict(difference)}
    else:
        ends = _day_ends(result)
        groups = defaultdict(dict)
        for day_key, fen in difference.items():
            groups[ends.get(day_key, last)][day_key] = fen
    out = []
    for effective, days in sorted(groups.items()):
        charged = sum(v for v in days.values() if v > 0)
        credited = -sum(v for v in days.values() if v < 0)
        span = sorted(d for _, d in days)
        label = f"{span[0]}..{span[-1]}" if span[0] != span[-1] else f"{span[0]}"
        if charged:
            out.append(
                posting(
                    f"charge:{key}:{new_transfer_id()}",
                    payer,
                    AccountCode.revenue("gas"),
                    charged,
                    effective,
                    now,
                    f"gas {label}",
                )
            )
        if credited:
            out.append(
                posting(
                    f"credit:{key}:{new_transfer_id()}",
                    AccountCode.revenue("gas"),
                    payer,
                    credited,
                    effective,
                    now,
                    f"re-rated {label}",
                )
            )
    return out


def because(transfers: list[Transfer], cause: str, actor: str) -> list[Transfer]:
    """The lines with their cause leading the reason, by `actor`."""
    return [replace(t, reason=f"{cause}: {t.reason}", actor=actor) for t in transfers]


def _day_ends(result: RatingResult) -> dict[DayKey, datetime]:
    """When each rated day's last charge ended."""
    ends: dict[DayKey, datetime] = {}
    for period in result.periods:
        for charge in period.charges:
            day_key = (charge.cycle.key, charge.day)
            if day_key not in ends or charge.period_to > ends[day_key]:
                ends[day_key] = charge.period_to
    return ends


def posting(
    key: str,
    debit: AccountCode,
    credit: AccountCode,
    amount: int,
    effective: datetime,
    now: datetime,
    reason: str,
    *,
    kind: TransferKind = TransferKind.CHARGE,
    actor: str = "billing",
) -> Transfer:
    """A posted transfer made by a job (billing, true-up), not by a person."""
    return Transfer(
        id=new_transfer_id(),
        idempotency_key=key,
        debit_account=debit,
        credit_account=credit,
        amount=amount,
        kind=kind,
        effective_at=effective,
        recorded_at=now,
        reason=reason,
        actor=actor,
    )
