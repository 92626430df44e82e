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

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from gasbill.crashpoints import crash_point
from gasbill.domain.accounts import BillingMode
from gasbill.domain.cycles import Cycle
from gasbill.domain.ledger import Transfer
from gasbill.domain.meters import (
    APPLIED_WITHIN,
    MeterSpan,
    MetersRated,
    applied_at,
    opening_reading,
    rate_meters,
)
from gasbill.domain.rating import (
    FrozenReading,
    Rater,
    RatingContext,
    RatingState,
    charge_difference,
)
from gasbill.domain.timeline import NO_VERSION
from gasbill.service.billing_days import day_rows, exceptions_of
from gasbill.service.billing_ports import (
    BillingRepository,
    BillingUnitOfWork,
    ChargeDayRecord,
    Readings,
)
from gasbill.service.meter_tariffs import meter_rater
from gasbill.service.ports import (
    AccountRecord,
    BindingRecord,
    MeterRecord,
    NewException,
    TariffBook,
)
from gasbill.service.postings import because, transfers_for

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

    def add_bill(self, bill: _AccountBill) -> None:
        """Count one account billed (its exceptions and transfers are counted once posted)."""
        self.accounts += 1
        self.readings += bill.readings
        self.charged_fen += sum(v for v in bill.difference.values() if v > 0)
        self.credited_fen += -sum(v for v in bill.difference.values() if v < 0)
        self.days_changed += len(bill.difference)


def bill_accounts(
    uow: BillingUnitOfWork,
    account_ids: Sequence[int],
    *,
    catalog: TariffBook,
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
    uow: BillingUnitOfWork,
    account_ids: Sequence[int],
    *,
    catalog: TariffBook,
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
    store = uow.billing
    batch = _load(store, account_ids, since)
    outcome = BillingOutcome()
    bills: list[_AccountBill] = []
    for account in batch.accounts:
        bill = _bill_account(account, batch, catalog, since, max_flow_m3_per_hour, now)
        if bill is not None:
            bills.append(bill)
            outcome.add_bill(bill)
    transfers: list[Transfer] = []
    for bill in bills:
        transfers += because(bill.transfers, cause, actor) if cause else bill.transfers
    exceptions = [e for bill in bills for e in bill.exceptions]
    store.save_days([row for bill in bills for row in bill.days])
    store.note_billed([bill.mark for bill in bills if bill.mark is not None])
    crash_point("bill.after_days")  # the days written, not yet posted (one transaction)
    uow.exceptions.add_once(exceptions)
    outcome.exceptions = len(exceptions)
    outcome.transfers = uow.ledger.record_many(transfers) if transfers else []
    crash_point("bill.after_post")
    return outcome


@dataclass(slots=True)
class _AccountBill:
    """What billing one account changes: its days, its true-up mark, exceptions, postings."""

    readings: int
    difference: dict[tuple[str, date], int]  # fen per (cycle, day): target − already posted
    days: list[dict[str, Any]]
    mark: dict[str, Any] | None  # what was rated, for the true-up's mark (None: no day)
    exceptions: list[NewException]
    transfers: list[Transfer]


def _bill_account(
    account: AccountRecord,
    batch: _Batch,
    catalog: TariffBook,
    since: dict[int, datetime],
    max_flow: Decimal | None,
    now: datetime,
) -> _AccountBill | None:
    """Rate one account of the batch and work out what changes; None: nothing to bill."""
    assert account.id is not None
    spans = batch.spans.get(account.id, [])
    checkpoint = batch.checkpoints.get(account.id)
    opening = None
    if account.id in batch.openings:
        opened_at = batch.openings[account.id]
        if opened_at is None:
            return None  # not open on the meter yet: it deducts nothing, nor do we
        opening = opening_reading(applied_at(opened_at, spans), spans)
    rater = _rater(account, catalog, batch.confirmed.get(account.id, {}), checkpoint)
    rated = _rate(account, spans, checkpoint, rater, max_flow, now, opening)
    if rated is None:
        return None
    posted = batch.posted.get(account.id, {})
    difference = charge_difference(rated.result.amounts_by_day(), posted)
    basis = catalog.get(account.tariff_id).volume_basis
    rows = day_rows(account.id, rated.result, difference, posted, now, basis, rated.day_end)
    last = rated.result.state.last
    mark = None
    if rows and last is not None:
        mark = {
            "account_id": account.id,
            "first_day": min(row["day"] for row in rows),
            "last_at": last.at,
            "since": since.get(account.id),
            "changed": bool(difference),
        }
    meter_mode = account.billing_mode == BillingMode.METER
    return _AccountBill(
        readings=rated.readings,
        difference=difference,
        days=rows,
        mark=mark,
        exceptions=exceptions_of(account.id, account.company_no, rated.anomalies, now),
        transfers=transfers_for(account.id, difference, rated.result, now, meter_mode=meter_mode),
    )


@dataclass(slots=True)
class _Batch:
    """What billing a batch of accounts reads, one query per kind of row."""

    accounts: Sequence[AccountRecord]
    spans: dict[int, list[MeterSpan]]
    checkpoints: Mapping[int, ChargeDayRecord]
    posted: dict[int, dict[tuple[str, date], int]]
    openings: dict[int, datetime | None]
    confirmed: dict[int, dict[str, datetime]]


def _load(
    store: BillingRepository,
    account_ids: Sequence[int],
    since: dict[int, datetime],
) -> _Batch:
    accounts = store.accounts(sorted(set(account_ids)), lock=True)
    ids = [a.id for a in accounts if a.id is not None]
    bindings = store.bindings(ids)
    checkpoints = store.checkpoints({i: since.get(i) for i in ids})
    posted = store.posted_days({i: checkpoints[i].day if i in checkpoints else None for i in ids})
    metered = [a.id for a in accounts if a.id is not None and a.billing_mode == BillingMode.METER]
    metered_meters = [(m.company_no, m.comm_no) for a in metered for _, m in bindings.get(a, [])]
    readings = readings_from(store, ids, bindings, checkpoints, with_real_time=metered_meters)
    spans = {i: meter_spans(bindings.get(i, []), readings) for i in ids}
    confirmed = {
        account_id: {
            label: applied_at(at, spans.get(account_id, [])) for label, at in changes.items()
        }
        for account_id, changes in store.confirmations(metered).items()
    }
    return _Batch(accounts, spans, checkpoints, posted, store.meter_openings(metered), confirmed)


def readings_from(
    store: BillingRepository,
    ids: Sequence[int],
    bindings: Mapping[int, Sequence[tuple[BindingRecord, MeterRecord]]],
    checkpoints: Mapping[int, ChargeDayRecord],
    *,
    with_real_time: Sequence[tuple[str, str]],
) -> Readings:
    """The accounts' meters' readings that rating from their checkpoints needs.

    Accounts with a checkpoint read from the earliest of them, less `APPLIED_WITHIN` (the
    wake-up reading that places a command confirmed after the checkpoint); the others'
    meters from the start, in a query of their own, so that one new account does not make
    the whole batch read every meter's history.
    """
    wanted = set(ids)
    starts = {i: c.state_at for i, c in checkpoints.items() if i in wanted and c.state_at}
    fresh = {
        (m.company_no, m.comm_no) for i in ids if i not in starts for _, m in bindings.get(i, ())
    }
    recent = {(m.company_no, m.comm_no) for i in starts for _, m in bindings.get(i, ())} - fresh
    readings: Readings = defaultdict(list)
    if recent:
        earliest = min(starts.values()) - APPLIED_WITHIN
        readings.update(store.frozen_readings(recent, earliest, with_real_time=with_real_time))
    if fresh:
        readings.update(store.frozen_readings(fresh, EPOCH, with_real_time=with_real_time))
    return readings


def meter_spans(
    bindings: Sequence[tuple[BindingRecord, MeterRecord]], readings: Readings
) -> list[MeterSpan]:
    """The meters an account used, each with its readings."""
    return [
        MeterSpan(
            comm_no=meter.comm_no,
            bound_at=binding.bound_at,
            opening_litres=binding.opening_litres,
            unbound_at=binding.unbound_at,
            final_litres=binding.final_litres,
            readings=readings.get((meter.company_no, meter.comm_no), []),
        )
        for binding, meter in bindings
    ]


def opening_of(
    opened_at: datetime, bindings: Sequence[tuple[BindingRecord, MeterRecord]], readings: Readings
) -> FrozenReading | None:
    """A meter-mode account's register when it was opened on its meter, if a reading gives it."""
    spans = meter_spans(bindings, readings)
    return opening_reading(applied_at(opened_at, spans), spans)


def rate_account(
    account: AccountRecord,
    bindings: Sequence[tuple[BindingRecord, MeterRecord]],
    checkpoint: ChargeDayRecord | None,
    readings: Readings,
    rater: Rater,
    max_flow: Decimal | None,
    now: datetime,
    *,
    opening: FrozenReading | None = None,
) -> MetersRated | None:
    """Rate an account's readings from `checkpoint` (None: from the start) up to `now`."""
    spans = meter_spans(bindings, readings)
    return _rate(account, spans, checkpoint, rater, max_flow, now, opening)


def _rate(
    account: AccountRecord,
    spans: list[MeterSpan],
    checkpoint: ChargeDayRecord | None,
    rater: Rater,
    max_flow: Decimal | None,
    now: datetime,
    opening: FrozenReading | None,
) -> MetersRated | None:
    if not spans:
        return None
    context = RatingContext(
        persons=account.persons,
        opened_on=account.opened_on,
        whole_m3=account.billing_mode == BillingMode.METER,
        max_flow_m3_per_hour=max_flow,
    )
    state, start = _starting_state(checkpoint, rater.tariff.zone)
    return rate_meters(spans, rater, context, state, start=start, now=now, opening=opening)


def _rater(
    account: AccountRecord,
    catalog: TariffBook,
    confirmed: dict[str, datetime],
    checkpoint: ChargeDayRecord | None,
) -> Rater:
    """Meter mode: the prices last confirmed on the meter (DESIGN §5); else the tariff's."""
    if account.billing_mode != BillingMode.METER:
        return catalog.rater(account.tariff_id)
    since = checkpoint.state_at if checkpoint is not None else None
    return meter_rater(catalog, account.tariff_id, account.opened_on, confirmed, since=since)


def _starting_state(checkpoint: ChargeDayRecord | None, zone: str) -> tuple[RatingState, datetime]:
    """Where rating resumes: the checkpoint's state, or from scratch."""
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
