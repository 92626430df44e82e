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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.adapters.db.repositories.billing import BillingStore, Readings
from gasbill.adapters.db.repositories.campaigns import CampaignStore
from gasbill.adapters.db.tables.accounts import Account, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.tables.campaigns import Campaign
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import AccountKind, Transfer
from gasbill.domain.rating import DayKey, charge_difference
from gasbill.domain.true_up import owed, true_up_start
from gasbill.domain.true_up_postings import (
    attribution,
    by_campaign,
    push_begun,
    stamp,
    true_up_transfer,
)
from gasbill.service.billing import bill_within, opening_of, rate_account
from gasbill.service.meter_tariffs import meter_confirmations
from gasbill.service.ports import TariffBook

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NEVER = datetime.max.replace(tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


@dataclass(slots=True)
class TrueUpOutcome:
    accounts: int = 0  # accounts re-rated
    charged_fen: int = 0  # prepaid → revenue
    refunded_fen: int = 0  # revenue → prepaid
    days_changed: int = 0
    transfers: list[Transfer] = field(default_factory=list)

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
            ids = CampaignStore(uow.session).meter_account_ids(after, batch)
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
) -> TrueUpOutcome:
    """`post_true_ups` inside the caller's unit of work, which commits. Billing runs first,
    in the same transaction, so that what it posted covers every reading up to `now`; the
    tariff in force is then rated over those same readings, with the same anomaly rules."""
    outcome = TrueUpOutcome()
    store, campaigns = BillingStore(uow.session), CampaignStore(uow.session)
    plans = _plans(store, campaigns, account_ids, catalog, now, settled_after)
    if not plans:
        return outcome
    ids = sorted(plans)
    bill_within(uow, ids, catalog=catalog, max_flow_m3_per_hour=max_flow_m3_per_hour, now=now)
    bindings = store.bindings(ids)
    starts = store.checkpoints({i: plans[i][2] + ONE_US for i in ids})
    openings = store.meter_openings(ids)
    readings = _readings(store, ids, bindings, starts)
    posted = store.posted_days({i: _day_before(plans[i][2], plans[i][0], catalog) for i in ids})
    transfers: list[Transfer] = []
    day_rows: list[dict[str, Any]] = []
    of_tariff: dict[str, Sequence[Campaign]] = {}  # the campaigns of each tariff, read once
    for account_id in ids:
        account, held, start = plans[account_id]
        if account_id in openings and openings[account_id] is None:
            continue  # not open on the meter: it deducted nothing, nor did the shadow
        rows, opened_at = bindings.get(account_id, []), openings.get(account_id)
        opening = opening_of(opened_at, rows, readings) if opened_at is not None else None
        tariff, checkpoint = catalog.get(account.tariff_id), _fresh(starts.get(account_id))
        rater = catalog.rater(tariff.id)
        official = rate_account(
            account, rows, checkpoint, readings, rater, max_flow_m3_per_hour, now, opening=opening
        )
        if official is None:
            continue
        outcome.accounts += 1
        first_day = start.astimezone(ZoneInfo(tariff.zone)).date()
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
    outcome.transfers = uow.ledger.record_many(transfers) if transfers else []
    return outcome


def _readings(
    store: BillingStore,
    ids: Sequence[int],
    bindings: dict[int, list[tuple[MeterBinding, Meter]]],
    starts: dict[int, ChargeDay],
) -> Readings:
    """The accounts' meters' frozen readings from the earliest checkpoint (all of them when
    an account has none)."""
    earliest = min((c.state_at for c in starts.values() if c.state_at), default=EPOCH)
    if len(starts) < len(ids):
        earliest = EPOCH
    meters = [(m.company_no, m.comm_no) for i in ids for _, m in bindings.get(i, [])]
    return store.frozen_readings(meters, earliest, with_real_time=meters)


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
    store: BillingStore,
    campaigns: CampaignStore,
    account_ids: Sequence[int],
    catalog: TariffBook,
    now: datetime,
    settled_after: timedelta,
) -> dict[int, tuple[Account, dict[str, datetime], datetime]]:
    """The meter-mode accounts (locked) with a divergence still open, and where it starts."""
    accounts = [
        a
        for a in store.accounts(sorted(set(account_ids)), lock=True)
        if a.billing_mode == BillingMode.METER and a.id is not None
    ]
    confirmed = campaigns.confirmations([a.id for a in accounts if a.id is not None])
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


def _day_before(start: datetime, account: Account, catalog: TariffBook) -> date:
    zone = ZoneInfo(catalog.get(account.tariff_id).zone)
    return start.astimezone(zone).date() - timedelta(days=1)


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
