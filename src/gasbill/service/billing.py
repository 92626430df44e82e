"""Billing: rate each account's frozen readings and post what each day is owed.

For each account, billing re-rates from its latest checkpoint before what
changed (or from the opening reading), so every day it computes is a whole
day's target; it posts only `target − already posted` per (cycle, local
day). Billing a reading twice, or again after a late reading, therefore
never charges a day twice, and a late reading moves money only between the
days it touches. Anomalous readings become exceptions for a clerk.

Accounts are billed in batches: one query per kind of row for the whole
batch, one transfer per account and direction, one upsert for all days.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.adapters.db.repositories.billing import BillingStore, Readings
from gasbill.adapters.db.repositories.campaigns import CampaignStore
from gasbill.adapters.db.tables.accounts import Account, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.accounts import BillingMode
from gasbill.domain.cycles import Cycle, local_midnight
from gasbill.domain.ledger import AccountCode, Transfer, TransferKind, new_transfer_id
from gasbill.domain.rating import (
    Anomaly,
    FrozenReading,
    RatedPeriod,
    Rater,
    RatingContext,
    RatingResult,
    RatingState,
    charge_difference,
)
from gasbill.domain.tariff import VolumeBasis
from gasbill.domain.timeline import NO_VERSION
from gasbill.service.meter_tariffs import meter_rater

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DayKey = tuple[str, date]


@dataclass(slots=True)
class BillingOutcome:
    accounts: int = 0
    readings: int = 0
    charged_fen: int = 0
    credited_fen: int = 0
    days_changed: int = 0
    exceptions: int = 0
    transfers: list[Transfer] = field(default_factory=list)

    def add(self, other: BillingOutcome) -> None:
        self.accounts += other.accounts
        self.readings += other.readings
        self.charged_fen += other.charged_fen
        self.credited_fen += other.credited_fen
        self.days_changed += other.days_changed
        self.exceptions += other.exceptions
        self.transfers.extend(other.transfers)


def bill_accounts(
    uow: UnitOfWork,
    account_ids: Sequence[int],
    *,
    catalog: TariffCatalog,
    since: dict[int, datetime] | None = None,
    max_flow_m3_per_hour: Decimal | None = None,
    now: datetime | None = None,
) -> BillingOutcome:
    """Bill a batch of accounts in one transaction.

    `since` names, per account, the earliest acquisition time that changed
    (a late or corrected reading, a tariff correction); without it billing
    carries on from the account's latest checkpoint.
    """
    with uow:
        outcome = bill_within(
            uow,
            account_ids,
            catalog=catalog,
            since=since,
            max_flow_m3_per_hour=max_flow_m3_per_hour,
            now=now,
        )
        uow.commit()
    return outcome


def bill_within(
    uow: UnitOfWork,
    account_ids: Sequence[int],
    *,
    catalog: TariffCatalog,
    since: dict[int, datetime] | None = None,
    max_flow_m3_per_hour: Decimal | None = None,
    now: datetime | None = None,
    cause: str = "",
    actor: str = "billing",
) -> BillingOutcome:
    """`bill_accounts` inside the caller's unit of work, which commits.

    `cause` (an accepted correction, say) leads each ledger line's reason, and
    `actor` is who the lines are by, when a person's decision set billing off.
    """
    now = now or datetime.now(UTC)
    since = since or {}
    outcome = BillingOutcome()
    store = BillingStore(uow.session)
    accounts = store.accounts(sorted(set(account_ids)), lock=True)
    ids = [a.id for a in accounts if a.id is not None]
    bindings = store.bindings(ids)
    checkpoints = store.checkpoints({i: since.get(i) for i in ids})
    posted = store.posted_days({i: checkpoints[i].day if i in checkpoints else None for i in ids})
    meters = [(m.company_no, m.comm_no) for rows in bindings.values() for _, m in rows]
    earliest = min((c.state_at for c in checkpoints.values() if c.state_at), default=EPOCH)
    if len(checkpoints) < len(ids):
        earliest = EPOCH
    metered = [a.id for a in accounts if a.id is not None and a.billing_mode == BillingMode.METER]
    metered_meters = [(m.company_no, m.comm_no) for a in metered for _, m in bindings.get(a, [])]
    readings = store.frozen_readings(meters, earliest, with_real_time=metered_meters)
    openings = store.meter_openings(metered)
    confirmed = {
        account_id: {
            label: _applied_at(at, bindings.get(account_id, []), readings)
            for label, at in changes.items()
        }
        for account_id, changes in CampaignStore(uow.session).confirmations(metered).items()
    }

    day_rows: list[dict[str, Any]] = []
    exception_rows: list[dict[str, Any]] = []
    transfers: list[Transfer] = []
    for account in accounts:
        assert account.id is not None
        checkpoint = checkpoints.get(account.id)
        opening = None
        if account.id in openings:
            opened_at = openings[account.id]
            if opened_at is None:
                continue  # not open on the meter yet: it deducts nothing, nor do we
            opening = _opening_reading(
                _applied_at(opened_at, bindings.get(account.id, []), readings),
                bindings.get(account.id, []),
                readings,
            )
        plan = _rate_account(
            account,
            bindings.get(account.id, []),
            checkpoint,
            readings,
            _rater(account, catalog, confirmed.get(account.id, {}), checkpoint),
            max_flow_m3_per_hour,
            now,
            opening=opening,
        )
        if plan is None:
            continue
        result, anomalies, count = plan
        outcome.accounts += 1
        outcome.readings += count
        target = result.amounts_by_day()
        difference = charge_difference(target, posted.get(account.id, {}))
        day_rows.extend(
            _day_rows(
                account.id,
                result,
                difference,
                posted.get(account.id, {}),
                now,
                catalog.get(account.tariff_id).volume_basis,
            )
        )
        exception_rows.extend(_exception_rows(account, anomalies, now))
        made = _transfers(account, difference, result, now, outcome)
        transfers.extend(_because(made, cause, actor) if cause else made)
        outcome.days_changed += len(difference)
    store.save_days(day_rows)
    store.add_exceptions(exception_rows)
    outcome.exceptions = len(exception_rows)
    outcome.transfers = uow.ledger.record_many(transfers) if transfers else []
    return outcome


def _rater(
    account: Account,
    catalog: TariffCatalog,
    confirmed: dict[str, datetime],
    checkpoint: ChargeDay | None,
) -> Rater:
    """Meter mode: the prices last confirmed on the meter (DESIGN §5); else the tariff's."""
    if account.billing_mode != BillingMode.METER:
        return catalog.rater(account.tariff_id)
    since = checkpoint.state_at if checkpoint is not None else None
    return meter_rater(catalog, account.tariff_id, account.opened_on, confirmed, since=since)


def _rate_account(
    account: Account,
    bindings: list[tuple[MeterBinding, Meter]],
    checkpoint: ChargeDay | None,
    readings: Readings,
    rater: Rater,
    max_flow: Decimal | None,
    now: datetime,
    *,
    opening: FrozenReading | None = None,
) -> tuple[RatingResult, list[tuple[Anomaly, str]], int] | None:
    if not bindings:
        return None
    context = RatingContext(
        persons=account.persons,
        opened_on=account.opened_on,
        whole_m3=account.billing_mode == BillingMode.METER,
        max_flow_m3_per_hour=max_flow,
    )
    state, start = _starting_state(checkpoint, bindings, rater.tariff.zone)
    periods: list[RatedPeriod] = []
    anomalies: list[tuple[Anomaly, str]] = []
    count = 0
    switched = False  # after the first meter rated here, each next one is a new register
    for binding, meter in bindings:
        if binding.unbound_at is not None and binding.unbound_at <= start:
            continue
        if (
            state.last is None
            and opening is not None
            and (binding.unbound_at is None or opening.at <= binding.unbound_at)
        ):
            # a meter-mode meter deducts from when it was opened: so does its shadow
            state = RatingState(last=opening)
        elif state.last is None or switched or binding.bound_at > state.last.at:
            # a new register from here on: the meter's opening reading
            first = FrozenReading(binding.bound_at, binding.opening_litres, binding.opening_litres)
            state = state.rebased(first) if state.last is not None else RatingState(last=first)
        assert state.last is not None
        series = [
            FrozenReading(r.at, r.std, r.work)
            for r in readings.get((meter.company_no, meter.comm_no), [])
            if state.last.at < r.at <= now
            and (binding.unbound_at is None or r.at <= binding.unbound_at)
        ]
        if (
            binding.unbound_at is not None
            and binding.final_litres is not None
            and (not series or series[-1].at < binding.unbound_at)
        ):
            series.append(
                FrozenReading(binding.unbound_at, binding.final_litres, binding.final_litres)
            )
        switched = True
        count += len(series)
        result = rater.rate(series, context, state)
        periods.extend(result.periods)
        anomalies.extend((anomaly, meter.comm_no) for anomaly in result.anomalies)
        state = result.state
    return RatingResult(periods, [], state), anomalies, count


APPLIED_WITHIN = timedelta(hours=36)


def _applied_at(
    confirmed_at: datetime,
    bindings: list[tuple[MeterBinding, Meter]],
    readings: Readings,
) -> datetime:
    """When a confirmed command took effect on the meter.

    The platform reports the ending, not the instant; a meter takes commands
    when it wakes and reports a reading then, so that reading's time — the
    latest before the confirmation — is the instant. Without one (no
    real-time reading), the confirmation time stands.
    """
    latest = None
    for _, meter in bindings:
        for reading in readings.get((meter.company_no, meter.comm_no), []):
            at = reading.at
            if reading.real_time and confirmed_at - APPLIED_WITHIN <= at <= confirmed_at:
                latest = at if latest is None or at > latest else latest
    return latest or confirmed_at


def _opening_reading(
    at: datetime,
    bindings: list[tuple[MeterBinding, Meter]],
    readings: Readings,
) -> FrozenReading | None:
    """The register at the opening instant, if a reading gives it."""
    for _, meter in bindings:
        for reading in readings.get((meter.company_no, meter.comm_no), []):
            if reading.at == at:
                return FrozenReading(reading.at, reading.std, reading.work)
    return None


def _starting_state(
    checkpoint: ChargeDay | None, bindings: list[tuple[MeterBinding, Meter]], zone: str
) -> tuple[RatingState, datetime]:
    if checkpoint is None or checkpoint.state_at is None:
        return RatingState(), EPOCH
    assert checkpoint.state_register is not None
    cycle = None
    if checkpoint.state_cycle_start is not None and checkpoint.state_cycle_end is not None:
        cycle = Cycle(checkpoint.state_cycle_start, checkpoint.state_cycle_end, zone)
    last = FrozenReading(checkpoint.state_at, checkpoint.state_register, checkpoint.state_register)
    state = RatingState(
        last=last,
        cycle=cycle,
        version_index=checkpoint.state_version
        if checkpoint.state_version is not None
        else NO_VERSION,
        used_litres=checkpoint.state_used or 0,
        cost_micro=checkpoint.state_cost or 0,
    )
    return state, checkpoint.state_at


def _day_rows(
    account_id: int,
    result: RatingResult,
    difference: dict[DayKey, int],
    posted: dict[DayKey, int],
    now: datetime,
    basis: VolumeBasis,
) -> list[dict[str, Any]]:
    """The charge days to write: every day rated (for its lines and checkpoint) or changed."""
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
    # checkpoints: the state after each reading that ends a day exactly
    checkpoints = _checkpoints(result, basis)
    for key, state in checkpoints.items():
        if key in days:
            days[key].update(state)
    for key in difference:
        days.setdefault(key, _empty_day(account_id, key, now))
    for key, row in days.items():
        row["posted_fen"] = posted.get(key, 0) + difference.get(key, 0)
        row["lines"] = json.dumps(
            [[v, t, p, s[0], s[1]] for (v, t, p), s in sorted(lines[key].items())],
            separators=(",", ":"),
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


def _checkpoints(result: RatingResult, basis: VolumeBasis) -> dict[DayKey, dict[str, Any]]:
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


def _exception_rows(
    account: Account, anomalies: list[tuple[Anomaly, str]], now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "kind": str(anomaly.kind),
            "status": "open",
            "account_id": account.id,
            "company_no": account.company_no,
            "meter_comm_no": comm_no,
            "reading_at": anomaly.reading.at,
            "detail": anomaly.detail,
            "resolution": "",
            "created_at": now,
        }
        for anomaly, comm_no in anomalies
    ]


def _transfers(
    account: Account,
    difference: dict[DayKey, int],
    result: RatingResult,
    now: datetime,
    outcome: BillingOutcome,
) -> list[Transfer]:
    """The ledger's side of a run's day differences.

    System mode: one charge (and, after re-rating, one credit) per account
    and run. Meter mode: one per day, effective when the day's last reading
    was taken, so meter_credit can be read as of any reading and compared
    with the balance the meter reported then. The days' `posted_fen`,
    written in the same transaction, is what keeps a day from being charged
    twice; the transfers' keys only need to be unique.
    """
    outcome.charged_fen += sum(v for v in difference.values() if v > 0)
    outcome.credited_fen += -sum(v for v in difference.values() if v < 0)
    if not difference:
        return []
    key = str(account.id)
    meter_mode = account.billing_mode == BillingMode.METER
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


def _because(transfers: list[Transfer], cause: str, actor: str) -> list[Transfer]:
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
