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

import bisect
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.adapters.db.repositories.billing import BillingStore
from gasbill.adapters.db.repositories.campaigns import CampaignStore
from gasbill.adapters.db.tables.accounts import Account
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.tables.campaigns import Campaign
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.accounts import BillingMode
from gasbill.domain.cycles import local_midnight
from gasbill.domain.ledger import AccountCode, Transfer, TransferKind
from gasbill.domain.rating import DayKey, charge_difference
from gasbill.domain.true_up import owed, true_up_start
from gasbill.service.billing import bill_within, opening_of, rate_account
from gasbill.service.meter_tariffs import meter_confirmations
from gasbill.service.postings import posting

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
    catalog: TariffCatalog,
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
    catalog: TariffCatalog,
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
    catalog: TariffCatalog,
    now: datetime,
    settled_after: timedelta = timedelta(days=31),
    max_flow_m3_per_hour: Decimal | None = None,
) -> TrueUpOutcome:
    """`post_true_ups` inside the caller's unit of work, which commits.

    Billing runs first, in the same transaction, so that what it posted
    covers every reading up to `now`; the tariff in force is then rated over
    those same readings, with the same anomaly rules (`max_flow_m3_per_hour`).
    """
    outcome = TrueUpOutcome()
    store = BillingStore(uow.session)
    campaigns = CampaignStore(uow.session)
    plans = _plans(store, campaigns, account_ids, catalog, now, settled_after)
    if not plans:
        return outcome
    ids = sorted(plans)
    bill_within(uow, ids, catalog=catalog, max_flow_m3_per_hour=max_flow_m3_per_hour, now=now)
    bindings = store.bindings(ids)
    starts = store.checkpoints({i: plans[i][2] + ONE_US for i in ids})
    openings = store.meter_openings(ids)
    earliest = min((c.state_at for c in starts.values() if c.state_at), default=EPOCH)
    if len(starts) < len(ids):
        earliest = EPOCH
    meters = [(m.company_no, m.comm_no) for i in ids for _, m in bindings.get(i, [])]
    readings = store.frozen_readings(meters, earliest, with_real_time=meters)
    posted = store.posted_days({i: _day_before(plans[i][2], plans[i][0], catalog) for i in ids})
    transfers: list[Transfer] = []
    day_rows: list[dict[str, Any]] = []
    of_tariff: dict[str, Sequence[Campaign]] = {}
    for account_id in ids:
        account, held, start = plans[account_id]
        rows = bindings.get(account_id, [])
        opening = None
        if account_id in openings:
            opened_at = openings[account_id]
            if opened_at is None:
                continue  # not open on the meter: it deducted nothing, nor did the shadow
            opening = opening_of(opened_at, rows, readings)
        tariff = catalog.get(account.tariff_id)
        rater = catalog.rater(tariff.id)
        checkpoint = _fresh(starts.get(account_id))
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
        by_campaign = _by_campaign(account_id, difference, trued, owner, now, day_rows)
        for campaign_id, days in by_campaign.items():
            stamp = _stamp(account_id, campaign_id, days, trued)
            transfers.extend(_transfers(account, campaign_id, days, stamp, effective, now, outcome))
    campaigns.save_true_up_days(day_rows)
    outcome.transfers = uow.ledger.record_many(transfers) if transfers else []
    return outcome


def _by_campaign(
    account_id: int,
    difference: dict[DayKey, int],
    trued: dict[DayKey, tuple[int, int]],
    owner: Callable[[date], int | None],
    now: datetime,
    day_rows: list[dict[str, Any]],
) -> dict[int | None, dict[DayKey, int]]:
    """The day differences grouped by the campaign they belong to; their rows appended."""
    by_campaign: dict[int | None, dict[DayKey, int]] = defaultdict(dict)
    for key, fen in difference.items():
        campaign_id = owner(key[1])
        by_campaign[campaign_id][key] = fen
        before, revision = trued.get(key, (0, 0))
        day_rows.append(
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
    return by_campaign


def _plans(
    store: BillingStore,
    campaigns: CampaignStore,
    account_ids: Sequence[int],
    catalog: TariffCatalog,
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


def _day_before(start: datetime, account: Account, catalog: TariffCatalog) -> date:
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
    starts: list[tuple[datetime, int]] = []
    for campaign in campaigns:
        if campaign.id is None:
            continue
        begun = min(campaign.effective_at, campaign.created_at, held.get(campaign.label, NEVER))
        starts.append((begun, campaign.id))
    starts.sort()
    instants = [at for at, _ in starts]
    tz = ZoneInfo(zone)

    def owner(day: date) -> int | None:
        k = bisect.bisect_left(instants, local_midnight(day + timedelta(days=1), tz)) - 1
        return starts[k][1] if k >= 0 else None

    return owner


def _stamp(
    account_id: int,
    campaign_id: int | None,
    days: dict[DayKey, int],
    posted: dict[DayKey, tuple[int, int]],
) -> str:
    """Deterministic for one state of the days: a repeated run cannot post twice."""
    state = sorted((k[0], str(k[1]), fen, *posted.get(k, (0, 0))) for k, fen in days.items())
    digest = hashlib.sha256(json.dumps(state).encode()).hexdigest()[:16]
    first, last = min(k[1] for k in days), max(k[1] for k in days)
    return f"{account_id}:{campaign_id or 0}:{first}..{last}:{digest}"


def _transfers(
    account: Account,
    campaign_id: int | None,
    days: dict[DayKey, int],
    stamp: str,
    effective: datetime,
    now: datetime,
    outcome: TrueUpOutcome,
) -> list[Transfer]:
    """One ledger line for the net of the days: a charge, or a refund if it is negative.

    Day by day the two ratings' cumulative rounding can differ by a fen either
    way even where the prices agree; only the net is owed or due back.
    """
    net = sum(days.values())
    if net == 0:
        return []
    prepaid = AccountCode.prepaid(str(account.id))
    revenue = AccountCode.revenue("gas")
    span = f"{min(k[1] for k in days)}..{max(k[1] for k in days)}"
    what = f"campaign #{campaign_id}" if campaign_id else "tariff change"
    if net > 0:
        outcome.charged_fen += net
        key, debit, credit, reason = f"true-up:{stamp}", prepaid, revenue, "price-change true-up"
    else:
        outcome.refunded_fen += -net
        key, debit, credit = f"true-up-refund:{stamp}", revenue, prepaid
        reason = "price-change true-up refund"
    return [
        _true_up_posting(key, debit, credit, abs(net), effective, now, f"{reason} ({what}) {span}")
    ]


def _true_up_posting(
    key: str,
    debit: AccountCode,
    credit: AccountCode,
    amount: int,
    effective: datetime,
    now: datetime,
    reason: str,
) -> Transfer:
    return posting(
        key,
        debit,
        credit,
        amount,
        effective,
        now,
        reason,
        kind=TransferKind.TRUE_UP,
        actor="true-up",
    )
