"""The price-change true-up (DESIGN §5, §7): what the meter billed at other prices, settled.

A meter-mode account's `meter_credit` is charged with the prices its meter
held (billing rates it with the meter's tariff). Where those differ from the
tariff in force — a change confirmed late, never, or early — the difference
moves between `prepaid` and `revenue:gas`, never `meter_credit`: positive
(the tariff in force costs more) prepaid → revenue, negative revenue →
prepaid.

Per account, both ratings start at the cycle of the earliest divergence
still open (`true_up_start`) and each (cycle, day) gets `target − posted`;
`true_up_day` keeps what was posted, so a second run posts nothing. Each
day's true-up is credited to the campaign of the change behind it
(`true_up_lines`); where each account's true-up stands is its mark
(`true_up_marks`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import Transfer
from gasbill.domain.meters import MetersRated
from gasbill.domain.rating import DayKey, charge_difference
from gasbill.domain.true_up import owed, true_up_start
from gasbill.service.billing import bill_within, opening_of, rate_account, readings_from
from gasbill.service.billing_ports import ChargeDayRecord, Readings
from gasbill.service.meter_tariffs import meter_confirmations
from gasbill.service.ports import TariffBook
from gasbill.service.true_up_lines import CampaignStart, TrueUpOutcome, lines_of, owner_of
from gasbill.service.true_up_marks import (
    Bound,
    MarkRecord,
    Plan,
    basis_of,
    first_day,
    fresh,
    meters_of,
    new_mark,
    resumed,
    still_marked,
)
from gasbill.service.true_up_ports import TrueUpUnitOfWork

__all__ = ["TrueUpOutcome", "post_true_ups", "run_true_ups", "true_ups_within"]

ONE_US = timedelta(microseconds=1)


def post_true_ups(
    uow: TrueUpUnitOfWork,
    account_ids: Sequence[int],
    *,
    catalog: TariffBook,
    now: datetime,
    settled_after: timedelta = timedelta(days=31),
    max_flow_m3_per_hour: Decimal | None = None,
) -> TrueUpOutcome:
    """Post the true-ups of a batch of accounts in one transaction (others are skipped)."""
    with uow:
        outcome = true_ups_within(
            uow,
            account_ids,
            catalog=catalog,
            now=now,
            settled_after=settled_after,
            max_flow_m3_per_hour=max_flow_m3_per_hour,
        )
        uow.commit()
    return outcome


def run_true_ups(
    uow_factory: Callable[[], TrueUpUnitOfWork],
    *,
    catalog: TariffBook,
    now: datetime,
    batch: int = 200,
    settled_after: timedelta = timedelta(days=31),
    max_flow_m3_per_hour: Decimal | None = None,
    actor: str | None = None,
) -> TrueUpOutcome:
    """True up every active meter-mode account, a batch per transaction.

    The scheduled job, `gasbill true-up` and `POST /api/v1/true-ups` all run
    this. A run by a person (`actor`) is written to the audit log with its
    totals; the job's daily runs are not (their transfers are the record).
    """
    total = TrueUpOutcome()
    after = 0
    while True:
        with uow_factory() as uow:
            ids = uow.true_ups.meter_account_ids(after, batch)
        if not ids:
            break
        after = ids[-1]
        done = post_true_ups(
            uow_factory(),
            ids,
            catalog=catalog,
            now=now,
            settled_after=settled_after,
            max_flow_m3_per_hour=max_flow_m3_per_hour,
        )
        total.add(done)
    if actor is not None:
        with uow_factory() as uow:
            uow.audit.record(
                actor=actor,
                action="true_up.run",
                entity="true_up",
                after={
                    "accounts": total.accounts,
                    "charged_fen": total.charged_fen,
                    "refunded_fen": total.refunded_fen,
                    "days_changed": total.days_changed,
                    "transfers": [t.id for t in total.transfers],
                },
                at=now,
            )
            uow.commit()
    return total


@dataclass(slots=True)
class _Batch:
    """What a batch's true-up rates with, read once for the batch."""

    plans: dict[int, Plan]
    bindings: Bound
    openings: dict[int, datetime | None]
    bases: dict[int, str]
    waiting: set[tuple[str, str]]
    resume: dict[int, MarkRecord]
    rated: list[int]  # the accounts re-rated (the others skipped)
    starts: dict[int, ChargeDayRecord]  # billing's checkpoints, where rated from the start
    readings: Readings
    first_days: dict[int, date]
    posted: dict[int, dict[tuple[str, date], int]]
    trued: dict[int, dict[tuple[str, date], tuple[int, int]]]


def true_ups_within(
    uow: TrueUpUnitOfWork,
    account_ids: Sequence[int],
    *,
    catalog: TariffBook,
    now: datetime,
    settled_after: timedelta = timedelta(days=31),
    max_flow_m3_per_hour: Decimal | None = None,
    incremental: bool = True,
) -> TrueUpOutcome:
    """`post_true_ups` inside the caller's unit of work, which commits. Billing runs first
    (but for accounts it has nothing new for: `_to_bill`), in the same transaction, so
    that what it posted covers every reading up to `now`; the tariff in force is then
    rated over those same readings, with the same anomaly rules.

    Incrementally (the default), an account whose mark (`true_up_mark`) still holds is
    skipped when billing has re-rated nothing since the mark, and re-rated from the mark's
    state on when billing re-rated nothing before it (`still_marked`). Either way it posts
    what the whole re-rating from the start (`incremental=False`) would, to the fen.
    """
    outcome = TrueUpOutcome()
    plans = _plans(uow, account_ids, catalog, now, settled_after)
    if not plans:
        return outcome
    batch = _load(uow, plans, catalog, now, max_flow_m3_per_hour, incremental)
    outcome.skipped = len(plans) - len(batch.rated)
    into = _Postings()
    for account_id in batch.rated:
        _true_up_account(uow, account_id, batch, catalog, now, max_flow_m3_per_hour, outcome, into)
    uow.true_ups.save_true_up_days(into.day_rows)
    kept = {m["account_id"] for m in into.marks}
    uow.true_ups.save_true_up_marks(into.marks, drop=[i for i in batch.rated if i not in kept])
    outcome.transfers = uow.ledger.record_many(into.transfers) if into.transfers else []
    return outcome


@dataclass
class _Postings:
    """What a batch's accounts post, written together at the end."""

    transfers: list[Transfer] = field(default_factory=list)
    day_rows: list[dict[str, Any]] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    of_tariff: dict[str, Sequence[CampaignStart]] = field(default_factory=dict)  # read once each


def _true_up_account(
    uow: TrueUpUnitOfWork,
    account_id: int,
    batch: _Batch,
    catalog: TariffBook,
    now: datetime,
    max_flow_m3_per_hour: Decimal | None,
    outcome: TrueUpOutcome,
    into: _Postings,
) -> None:
    """One re-rated account: its new mark, and the lines for what the tariff in force is
    owed anew, added to `into` and counted in `outcome`."""
    account, held, start = batch.plans[account_id]
    if account_id in batch.openings and batch.openings[account_id] is None:
        return  # not open on the meter: it deducted nothing, nor did the shadow
    mark = batch.resume.get(account_id)
    tariff = catalog.get(account.tariff_id)
    official = _official(account_id, batch, catalog, max_flow_m3_per_hour, now)
    if official is None:
        return
    outcome.accounts += 1
    outcome.resumed += mark is not None
    made = new_mark(
        account_id, start, batch.bases[account_id], official, mark, tariff.volume_basis, now
    )
    if made is not None:
        into.marks.append(made)
    difference = _owed_anew(account_id, official, batch)
    if not difference:
        return
    outcome.days_changed += len(difference)
    if tariff.id not in into.of_tariff:
        into.of_tariff[tariff.id] = uow.true_ups.of_tariff(tariff.id)
    owner = owner_of(into.of_tariff[tariff.id], held, tariff.zone)
    lines, rows_of_days = _lines(account_id, difference, owner, official, batch, now)
    outcome.count(lines)
    into.transfers.extend(lines)
    into.day_rows.extend(rows_of_days)


def _owed_anew(account_id: int, official: MetersRated, batch: _Batch) -> dict[DayKey, int]:
    """Per day from the first trued up: what the tariff in force is owed beyond what billing
    posted, less what the true-up posted before."""
    first = batch.first_days[account_id]
    target = owed(official.result.amounts_by_day(), batch.posted.get(account_id, {}), first)
    trued = batch.trued.get(account_id, {})
    return charge_difference(target, {k: fen for k, (fen, _) in trued.items()})


def _lines(
    account_id: int,
    difference: dict[DayKey, int],
    owner: Callable[[date], int | None],
    official: MetersRated,
    batch: _Batch,
    now: datetime,
) -> tuple[list[Transfer], list[dict[str, Any]]]:
    """The account's ledger lines and day rows, in effect at its last reading rated."""
    last = official.result.state.last
    effective = last.at if last is not None else now
    trued = batch.trued.get(account_id, {})
    return lines_of(account_id, difference, owner, trued, effective, now)


def _load(
    uow: TrueUpUnitOfWork,
    plans: dict[int, Plan],
    catalog: TariffBook,
    now: datetime,
    max_flow: Decimal | None,
    incremental: bool,
) -> _Batch:
    """Bill what billing has anything new for, then read what rating the rest needs."""
    store = uow.billing
    ids = sorted(plans)
    bindings = store.bindings(ids)
    openings = store.meter_openings(ids)
    digests: dict[str, str] = {}
    bases = {
        i: basis_of(plans[i], bindings.get(i, []), openings.get(i), catalog, max_flow, digests)
        for i in ids
    }
    waiting = store.unbilled_meters({m for i in ids for m in meters_of(bindings, i)})
    marks = uow.true_ups.true_up_marks(ids)
    unbilled = _to_bill(uow, marks, plans, bases, bindings, waiting, now)
    if unbilled:
        bill_within(uow, unbilled, catalog=catalog, max_flow_m3_per_hour=max_flow, now=now)
        marks = uow.true_ups.true_up_marks(ids)  # billing moved the marks it re-rated
    resume, skip = (
        still_marked(marks, waiting, plans, bases, bindings) if incremental else ({}, set())
    )
    rated = [i for i in ids if i not in skip]
    full = [i for i in rated if i not in resume]
    checkpoints = store.checkpoints({i: plans[i][2] + ONE_US for i in full})
    starts: dict[int, ChargeDayRecord] = {i: checkpoints[i] for i in full if i in checkpoints}
    begins: dict[int, ChargeDayRecord] = dict(starts)
    begins.update({i: resumed(mark) for i, mark in resume.items()})
    meters = [(m.company_no, m.comm_no) for i in rated for _, m in bindings.get(i, [])]
    readings = readings_from(store, rated, bindings, begins, with_real_time=meters)
    first_days = {i: first_day(plans[i], resume.get(i), catalog) for i in rated}
    posted = store.posted_days({i: first_days[i] - timedelta(days=1) for i in rated})
    trued = uow.true_ups.true_up_days(first_days)
    return _Batch(
        plans, bindings, openings, bases, waiting, resume, rated, starts, readings,
        first_days, posted, trued,
    )  # fmt: skip


def _to_bill(
    uow: TrueUpUnitOfWork,
    marks: Mapping[int, MarkRecord],
    plans: dict[int, Plan],
    bases: dict[int, str],
    bindings: Bound,
    waiting: set[tuple[str, str]],
    now: datetime,
) -> list[int]:
    """The accounts billing may have anything new for: all but those whose mark holds (same
    start and inputs) with no reading of their meters waiting in the inbox and none after
    the last one billing rated (`billed_through`, which billing keeps on the mark)."""
    held = [
        i
        for i, mark in marks.items()
        if i in plans and mark.start_at == plans[i][2] and mark.basis == bases[i]
    ]
    meters = {m for i in held for m in meters_of(bindings, i)}
    latest = uow.billing.latest_readings(meters, now) if meters else {}
    current = set()
    for i in held:
        through = marks[i].billed_through
        mine = meters_of(bindings, i)
        if through is None or mine & waiting:
            continue
        if all(latest.get(meter) is None or latest[meter] <= through for meter in mine):
            current.add(i)
    return [i for i in sorted(plans) if i not in current]


def _official(
    account_id: int,
    batch: _Batch,
    catalog: TariffBook,
    max_flow: Decimal | None,
    now: datetime,
) -> MetersRated | None:
    """The tariff in force's rating of the account: from its mark, or from the start."""
    account, _, _ = batch.plans[account_id]
    rows, opened_at = batch.bindings.get(account_id, []), batch.openings.get(account_id)
    mark = batch.resume.get(account_id)
    opening = None
    if mark is None and opened_at is not None:
        opening = opening_of(opened_at, rows, batch.readings)
    checkpoint = fresh(batch.starts.get(account_id)) if mark is None else resumed(mark)
    rater = catalog.rater(account.tariff_id)
    return rate_account(
        account, rows, checkpoint, batch.readings, rater, max_flow, now, opening=opening
    )


def _plans(
    uow: TrueUpUnitOfWork,
    account_ids: Sequence[int],
    catalog: TariffBook,
    now: datetime,
    settled_after: timedelta,
) -> dict[int, Plan]:
    """The meter-mode accounts (locked) with a divergence still open, and where it starts."""
    accounts = [
        a
        for a in uow.billing.accounts(sorted(set(account_ids)), lock=True)
        if a.billing_mode == BillingMode.METER and a.id is not None
    ]
    confirmed = uow.billing.confirmations([a.id for a in accounts if a.id is not None])
    plans: dict[int, Plan] = {}
    for account in accounts:
        assert account.id is not None
        tariff = catalog.get(account.tariff_id)
        held = meter_confirmations(tariff, confirmed.get(account.id, {}), account.opened_on)
        start = true_up_start(
            tariff, held, now, settled_after=settled_after, opened_on=account.opened_on
        )
        if start is not None:
            plans[account.id] = (account, held, start)
    return plans
