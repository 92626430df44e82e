"""Billing's day rows: what each rated day charged, its lines, its checkpoint; and anomalies.

A day row holds the day's litres, exact cost, `posted_fen` (what the ledger
has been charged for it: the next run posts only the difference) and, when a
reading ends the day exactly, the rating state there: the checkpoint the
next run re-rates from.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.domain.cycles import Cycle, local_midnight
from gasbill.domain.rating import Anomaly, DayKey, RatingResult
from gasbill.domain.tariff import VolumeBasis
from gasbill.service.ports import NewException

# one encoder for every day: json.dumps with separators builds a new one per call
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def day_rows(
    account_id: int,
    result: RatingResult,
    difference: dict[DayKey, int],
    posted: dict[DayKey, int],
    now: datetime,
    basis: VolumeBasis,
    day_end: RatingResult | None = None,
) -> list[dict[str, Any]]:
    """The charge days to write: every day rated (for its lines and checkpoint) or changed.

    `day_end` is the rating up to the last reading at a local midnight: its state is the
    checkpoint when the final one ends no day (a real-time reading came after it)."""
    days: dict[DayKey, dict[str, Any]] = {}
    lines: dict[DayKey, dict[tuple[str, int, int], list[int]]] = defaultdict(dict)
    for period in result.periods:
        for charge in period.charges:
            key = (charge.cycle.key, charge.day)
            row = days.setdefault(key, _empty_day(account_id, key, now))
            row["litres"] += charge.litres
            for line in charge.lines:
                row["cost_micro"] += line.cost_micro
                slot = lines[key].setdefault((charge.version, line.tier, line.price_milli), [0, 0])
                slot[0] += line.litres
                slot[1] += line.cost_micro
    # the checkpoint: the state after the last reading that ends a day exactly
    checkpoints = checkpoint_of(result, basis)
    if not checkpoints and day_end is not None:
        checkpoints = checkpoint_of(day_end, basis)
    for key, state in checkpoints.items():
        if key in days:
            days[key].update(state)
    for key in difference:
        days.setdefault(key, _empty_day(account_id, key, now))
    for key, row in days.items():
        row["posted_fen"] = posted.get(key, 0) + difference.get(key, 0)
        row["lines"] = _compact_json(
            [[v, t, p, s[0], s[1]] for (v, t, p), s in sorted(lines[key].items())]
        )
    return list(days.values())


def _empty_day(account_id: int, key: DayKey, now: datetime) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "cycle_key": key[0],
        "day": key[1],
        "posted_fen": 0,
        "litres": 0,
        "cost_micro": 0,
        "lines": "[]",
        "state_at": None,
        "state_register": None,
        "state_cycle_start": None,
        "state_cycle_end": None,
        "state_version": None,
        "state_used": None,
        "state_cost": None,
        "updated_at": now,
    }


# a checkpoint's columns (in `charge_day` and `true_up_mark`)
STATE_COLUMNS = (
    "state_at",
    "state_register",
    "state_cycle_start",
    "state_cycle_end",
    "state_version",
    "state_used",
    "state_cost",
)


def checkpoint_of(result: RatingResult, basis: VolumeBasis) -> dict[DayKey, dict[str, Any]]:
    """The final rating state, as a checkpoint, if its reading ends a local day exactly."""
    found: dict[DayKey, dict[str, Any]] = {}
    final = result.state
    if final.last is None or final.cycle is None or not result.periods:
        return found
    last_period = result.periods[-1]
    last_charge = last_period.charges[-1] if last_period.charges else None
    if last_charge is None:
        return found
    zone_end = _next_local_midnight(last_charge.day, final.cycle)
    if last_period.period_to != zone_end:
        return found
    found[(last_charge.cycle.key, last_charge.day)] = {
        "state_at": final.last.at,
        "state_register": final.last.register(basis),
        "state_cycle_start": final.cycle.start,
        "state_cycle_end": final.cycle.end,
        "state_version": final.version_index,
        "state_used": final.used_litres,
        "state_cost": final.cost_micro,
    }
    return found


def _next_local_midnight(day: date, cycle: Cycle) -> datetime:
    return local_midnight(day + timedelta(days=1), ZoneInfo(cycle.zone))


def exceptions_of(
    account_id: int, company_no: str, anomalies: list[tuple[Anomaly, str]], now: datetime
) -> list[NewException]:
    """The anomalies rating found, each an exception for a clerk."""
    return [
        NewException(
            kind=str(anomaly.kind),
            company_no=company_no,
            meter_comm_no=comm_no,
            reading_at=anomaly.reading.at,
            detail=anomaly.detail,
            at=now,
            account_id=account_id,
        )
        for anomaly, comm_no in anomalies
    ]
