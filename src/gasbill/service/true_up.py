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
day's true-up is credited to the campaign of the change behind it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.adapters.db.tables.accounts import Account, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.tables.campaigns import Campaign, TrueUpMark
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import AccountKind, Transfer
from gasbill.domain.meters import MetersRated
from gasbill.domain.rating import DayKey, charge_difference
from gasbill.domain.tariff import VolumeBasis
from gasbill.domain.true_up import owed, true_up_start
from gasbill.domain.true_up_postings import (
    attribution,
    by_campaign,
    push_begun,
    stamp,
    true_up_transfer,
)
from gasbill.service.billing import bill_within, opening_of, rate_account, readings_from
from gasbill.service.billing_days import STATE_COLUMNS, checkpoint_of
from gasbill.service.meter_tariffs import meter_confirmations
from gasbill.service.ports import TariffBook

ONE_US = timedelta(microseconds=1)


@dataclass(slots=True)
class TrueUpOutcome:
    accounts: int = 0  # accounts re-rated
    charged_fen: int = 0  # prepaid → revenue
    refunded_fen: int = 0  # revenue → prepaid
    days_changed: int = 0
    transfers: list[Transfer] = field(default_factory=list)
    skipped: int = 0  # accounts whose mark held and which billing had not re-rated since
    resumed: int = 0  # of `accounts`, those re-rated from their mark on

    def as_json(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "days_changed": self.days_changed,
            "charged_fen": self.charged_fen,
            "refunded_fen": self.refunded_fen,
            "transfers": [t.id for t in self.transfers],
        }


def post_true_ups(
    uow: UnitOfWork,
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
    uow_factory: Callable[[], UnitOfWork],
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
            ids = uow.campaigns.meter_account_ids(after, batch)
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
        total.accounts += done.accounts
        total.charged_fen += done.charged_fen
        total.refunded_fen += done.refunded_fen
        total.days_changed += done.days_changed
        total.skipped += done.skipped
        total.resumed += done.resumed
        total.transfers.extend(done.transfers)
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


def true_ups_within(
    uow: UnitOfWork,
    account_ids: Sequence[int],
    *,
    catalog: TariffBook,
    now: datetime,
    settled_after: timedelta = timedelta(days=31),
    max_flow_m3_per_hour: Decimal | None = None,
    incremental: bool = True,
) -> TrueUpOutcome:
    """`post_true_ups` inside the caller's unit of work, which commits. Billing runs first,
    in the same transaction, so that what it posted covers every reading up to `now`; the
    tariff in force is then rated over those same readings, with the same anomaly rules.

    Incrementally (the default), an account whose mark (`true_up_mark`) still holds — the
    same start and inputs, no reading waiting in the inbox — is skipped when billing has
    re-rated nothing since the mark, and re-rated from the mark's state on when billing
    re-rated nothing before it: what was trued up before it is still owed exactly, since
    neither its readings nor its charges have changed. Either way it posts what the whole
    re-rating from the start (`incremental=False`) would, to the fen.
    """
    outcome = TrueUpOutcome()
    store, campaigns = uow.billing, uow.campaigns
    plans = _plans(uow, account_ids, catalog, now, settled_after)
    if not plans:
        return outcome
    ids = sorted(plans)
    bill_within(uow, ids, catalog=catalog, max_flow_m3_per_hour=max_flow_m3_per_hour, now=now)
    bindings = store.bindings(ids)
    openings = store.meter_openings(ids)
    digests: dict[str, str] = {}
    bases = {
        i: _basis(
            plans[i], bindings.get(i, []), openings.get(i), catalog, max_flow_m3_per_hour, digests
        )
        for i in ids
    }
    resume, skip = _still_marked(uow, ids, plans, bases, bindings) if incremental else ({}, set())
    outcome.skipped = len(skip)
    rated_ids = [i for i in ids if i not in skip]
    full = [i for i in rated_ids if i not in resume]
    starts = store.checkpoints({i: plans[i][2] + ONE_US for i in full})
    begins: dict[int, ChargeDay] = {i: starts[i] for i in full if i in starts}
    begins.update({i: _resumed(mark) for i, mark in resume.items()})
    meters = [(m.company_no, m.comm_no) for i in rated_ids for _, m in bindings.get(i, [])]
    readings = readings_from(store, rated_ids, bindings, begins, with_real_time=meters)
    first_days = {i: _first_day(plans[i], resume.get(i), catalog) for i in rated_ids}
    posted = store.posted_days({i: first_days[i] - timedelta(days=1) for i in rated_ids})
    transfers: list[Transfer] = []
    day_rows: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    of_tariff: dict[str, Sequence[Campaign]] = {}  # the campaigns of each tariff, read once
    for account_id in rated_ids:
        account, held, start = plans[account_id]
        if account_id in openings and openings[account_id] is None:
            continue  # not open on the meter: it deducted nothing, nor did the shadow
        rows, opened_at, mark = (
            bindings.get(account_id, []),
            openings.get(account_id),
            resume.get(account_id),
        )
        opening = None
        if mark is None and opened_at is not None:
            opening = opening_of(opened_at, rows, readings)
        tariff = catalog.get(account.tariff_id)
        checkpoint = _fresh(starts.get(account_id)) if mark is None else _resumed(mark)
        rater = catalog.rater(tariff.id)
        official = rate_account(
            account, rows, checkpoint, readings, rater, max_flow_m3_per_hour, now, opening=opening
        )
        if official is None:
            continue
        outcome.accounts += 1
        outcome.resumed += mark is not None
        new_mark = _mark(
            account_id, start, bases[account_id], official, mark, tariff.volume_basis, now
        )
        if new_mark is not None:
            marks.append(new_mark)
        first_day = first_days[account_id]
        target = owed(official.result.amounts_by_day(), posted.get(account_id, {}), first_day)
        trued = campaigns.true_up_days(account_id, first_day)
        difference = charge_difference(target, {k: fen for k, (fen, _) in trued.items()})
        if not difference:
            continue
        outcome.days_changed += len(difference)
        if tariff.id not in of_tariff:
            of_tariff[tariff.id] = campaigns.of_tariff(tariff.id)
        owner = _attribution(of_tariff[tariff.id], held, tariff.zone)
        last = official.result.state.last
        effective = last.at if last is not None else now
        lines, rows_of_days = _lines(account_id, difference, owner, trued, effective, now)
        _count(outcome, lines)
        transfers.extend(lines)
        day_rows.extend(rows_of_days)
    campaigns.save_true_up_days(day_rows)
    kept = {m["account_id"] for m in marks}
    campaigns.save_true_up_marks(marks, drop=[i for i in rated_ids if i not in kept])
    outcome.transfers = uow.ledger.record_many(transfers) if transfers else []
    return outcome


def _still_marked(
    uow: UnitOfWork,
    ids: Sequence[int],
    plans: dict[int, tuple[Account, dict[str, datetime], datetime]],
    bases: dict[int, str],
    bindings: dict[int, list[tuple[MeterBinding, Meter]]],
) -> tuple[dict[int, TrueUpMark], set[int]]:
    """The accounts to re-rate from their mark on, and those to skip: each mark made with
    the same start and inputs, with no reading of its meters waiting to be billed (a late
    one may lie before the mark), and with nothing billing re-rated up to its day."""
    marks = uow.campaigns.true_up_marks(ids)
    meters_of = {i: {(m.company_no, m.comm_no) for _, m in bindings.get(i, [])} for i in ids}
    waiting = uow.billing.unbilled_meters(
        {meter for found in meters_of.values() for meter in found}
    )
    resume: dict[int, TrueUpMark] = {}
    skip: set[int] = set()
    for i in ids:
        mark = marks.get(i)
        if mark is None or mark.start_at != plans[i][2] or mark.basis != bases[i]:
            continue
        if meters_of[i] & waiting:
            continue
        if mark.rebilled_from is None:
            skip.add(i)  # billing has re-rated nothing since: nothing is owed anew
        elif mark.rebilled_from > mark.day:
            resume[i] = mark
    return resume, skip


def _basis(
    plan: tuple[Account, dict[str, datetime], datetime],
    bindings: Sequence[tuple[MeterBinding, Meter]],
    opened_at: datetime | None,
    catalog: TariffBook,
    max_flow: Decimal | None,
    digests: dict[str, str],
) -> str:
    """A digest of what a true-up's rating depends on besides the readings and the charges:
    a mark made with other inputs (a reloaded tariff, a new confirmation, a replaced meter)
    no longer holds."""
    account, held, _ = plan
    if account.tariff_id not in digests:
        tariff = catalog.get(account.tariff_id)
        digests[account.tariff_id] = hashlib.sha256(repr(tariff).encode()).hexdigest()
    parts = [
        digests[account.tariff_id],
        account.tariff_id,
        str(account.persons),
        str(account.opened_on),
        str(account.billing_mode),
        repr(sorted(held.items())),
        repr(opened_at),
        repr(max_flow),
        repr(
            [
                (
                    m.company_no,
                    m.comm_no,
                    b.bound_at,
                    b.opening_litres,
                    b.unbound_at,
                    b.final_litres,
                )
                for b, m in bindings
            ]
        ),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _first_day(
    plan: tuple[Account, dict[str, datetime], datetime],
    mark: TrueUpMark | None,
    catalog: TariffBook,
) -> date:
    """The first day trued up: the start's, or the day after the mark's."""
    account, _, start = plan
    first = start.astimezone(ZoneInfo(catalog.get(account.tariff_id).zone)).date()
    if mark is None:
        return first
    return max(first, mark.day + timedelta(days=1))


def _mark(
    account_id: int,
    start: datetime,
    basis: str,
    official: MetersRated,
    old: TrueUpMark | None,
    volume_basis: VolumeBasis,
    now: datetime,
) -> dict[str, Any] | None:
    """The account's new mark: the tariff in force's state after the last reading that
    ended a day (the old mark's when none came since); None: none to resume from."""
    found = checkpoint_of(official.result, volume_basis)
    if not found and official.day_end is not None:
        found = checkpoint_of(official.day_end, volume_basis)
    last = official.result.state.last
    row: dict[str, Any] = {
        "account_id": account_id,
        "start_at": start,
        "basis": basis,
        "billed_through": last.at if last is not None else None,
        "rebilled_from": None,
        "updated_at": now,
    }
    if found:
        ((cycle_key, day), state), *_ = found.items()
        return row | {"cycle_key": cycle_key, "day": day, **state}
    if old is None:
        return None
    return row | {
        "cycle_key": old.cycle_key,
        "day": old.day,
        **{name: getattr(old, name) for name in STATE_COLUMNS},
    }


def _resumed(mark: TrueUpMark) -> ChargeDay:
    """A mark's state as a checkpoint to rate the tariff in force on from."""
    return ChargeDay(
        account_id=mark.account_id,
        cycle_key=mark.cycle_key,
        day=mark.day,
        **{name: getattr(mark, name) for name in STATE_COLUMNS},
    )


def _lines(
    account_id: int,
    difference: dict[DayKey, int],
    owner: Callable[[date], int | None],
    trued: dict[DayKey, tuple[int, int]],
    effective: datetime,
    now: datetime,
) -> tuple[list[Transfer], list[dict[str, Any]]]:
    """A ledger line per campaign for the net of its days, and the days' rows."""
    lines: list[Transfer] = []
    rows: list[dict[str, Any]] = []
    for campaign_id, days in by_campaign(difference, owner).items():
        rows.extend(_day_rows(account_id, days, campaign_id, trued, now))
        key_stamp = stamp(account_id, campaign_id, days, trued)
        line = true_up_transfer(
            account_id, campaign_id, days, key_stamp, effective=effective, now=now
        )
        if line is not None:
            lines.append(line)
    return lines, rows


def _plans(
    uow: UnitOfWork,
    account_ids: Sequence[int],
    catalog: TariffBook,
    now: datetime,
    settled_after: timedelta,
) -> dict[int, tuple[Account, dict[str, datetime], datetime]]:
    """The meter-mode accounts (locked) with a divergence still open, and where it starts."""
    accounts = [
        a
        for a in uow.billing.accounts(sorted(set(account_ids)), lock=True)
        if a.billing_mode == BillingMode.METER and a.id is not None
    ]
    confirmed = uow.campaigns.confirmations([a.id for a in accounts if a.id is not None])
    plans: dict[int, tuple[Account, dict[str, datetime], datetime]] = {}
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


def _fresh(checkpoint: ChargeDay | None) -> ChargeDay | None:
    """A billing checkpoint as a bare starting reading: both ratings start from it afresh."""
    if checkpoint is None or checkpoint.state_at is None:
        return None
    return ChargeDay(
        account_id=checkpoint.account_id,
        cycle_key="",
        day=checkpoint.day,
        state_at=checkpoint.state_at,
        state_register=checkpoint.state_register,
        state_used=0,
        state_cost=0,
    )


def _attribution(
    campaigns: Sequence[Campaign], held: dict[str, datetime], zone: str
) -> Callable[[date], int | None]:
    """day → the campaign of the newest change whose push had begun by the end of that day."""
    starts = [
        (push_begun(c.effective_at, c.created_at, held.get(c.label)), c.id)
        for c in campaigns
        if c.id is not None
    ]
    return attribution(starts, zone)


def _day_rows(
    account_id: int,
    days: dict[DayKey, int],
    campaign_id: int | None,
    trued: dict[DayKey, tuple[int, int]],
    now: datetime,
) -> list[dict[str, Any]]:
    """The true-up's day rows: what each day has now been posted, and its revision."""
    rows = []
    for key, fen in days.items():
        before, revision = trued.get(key, (0, 0))
        rows.append(
            {
                "account_id": account_id,
                "cycle_key": key[0],
                "day": key[1],
                "posted_fen": before + fen,
                "campaign_id": campaign_id,
                "revision": revision + 1,
                "updated_at": now,
            }
        )
    return rows


def _count(outcome: TrueUpOutcome, lines: Sequence[Transfer]) -> None:
    for line in lines:
        if line.debit_account.kind == AccountKind.PREPAID:
            outcome.charged_fen += line.amount
        else:
            outcome.refunded_fen += line.amount
