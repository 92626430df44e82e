"""Meters back on the full ladder after a prorated opening (issue 10 §4).

A meter opened mid-cycle on a tariff with opening proration gets prorated
thresholds, and keeps them: it knows no cycles of ours. At the next cycle
boundary it needs the full ladder. The campaigns job pushes it as a
*campaign* per (tariff, boundary), labelled `"<change> full ladder
<YYYY-MM-DD>"`: every account opened in one cycle of one tariff shares that
boundary, and as a campaign the push gets what price changes get — one
setprice per meter, tagged, confirmed, verified by a getprice, failures with
their reason, retry, progress — and billing reads its confirmation like any
other (`uow.campaigns.confirmations`), so the shadow follows the meter.

It is due once the boundary has passed (never ahead: the opening cycle's
thresholds are prorated), for the accounts opened inside the cycle that
ended there, unless their meter holds or awaits a price change on or after
the boundary (whose push is full already).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from gasbill.domain.cycles import local_midnight
from gasbill.domain.outbox import OPEN_STATUSES, CommandStatus
from gasbill.domain.price_changes import (
    PriceChange,
    full_ladder_change,
    price_changes,
)
from gasbill.domain.tariff import Proration, Tariff
from gasbill.service.campaign_ports import CampaignUnitOfWork, NewCampaign
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.ports import CampaignRecord, CommitConflict, MeterRecord

LATER = timedelta(days=366)  # how far ahead price changes already pushed are looked for
# accounts read a page (one transaction) when enrolling: 20 AddMulti batches' worth, 1,000 at
# 50. Each page costs a few statements whatever its size; pages of 200 cost 40 % more of the
# process's CPU over 100,000 meters, and twice as many pages to read each run here
PAGE_BATCHES = 20


def full_ladders_due(
    uow_factory: Callable[[], CampaignUnitOfWork],
    tariff: Tariff,
    *,
    policy: CommandPolicy,
    now: datetime,
    push: Callable[..., None],
) -> int:
    """Queue the full ladder for each meter opened prorated in the cycle that ended last.

    `push(uow, campaign, tariff, change, account, meter, policy, now)`
    queues one setprice (the campaigns' own). Returns the meters enrolled.
    Idempotent: a meter already in the campaign is skipped. Every account's
    page is read each run (a dictionary look-up per opening day, two queries
    a page), as the campaigns' own enrolment does.
    """
    if all(v.opening_proration is Proration.NONE for v in tariff.versions):
        return 0
    changes: dict[date, PriceChange | None] = {}
    later = {
        c.label for c in price_changes(tariff, now + LATER) if c.at >= _cycle_start(tariff, now)
    }
    enrolled, after = 0, 0
    while True:
        uow = uow_factory()
        with uow:
            store = uow.campaigns
            if not store.claim_full_ladder(tariff.id):
                return enrolled  # another worker enrols this tariff's page
            page = store.meter_accounts(tariff.id, after, policy.batch_size * PAGE_BATCHES)
            if not page:
                return enrolled
            after = page[-1][0].id or after
            wanted = _wanted(page, tariff, now, changes)
            pushes = store.pushes([a.id for a, _, _ in wanted if a.id is not None])
            labels = {change.label for _, _, change in wanted}  # one: this cycle's boundary
            existing = {label: store.by_label(tariff.id, label) for label in labels}
            done = {
                meter_id
                for campaign in existing.values()
                if campaign is not None and campaign.id is not None
                for meter_id in store.enrolled(campaign.id, [m.id for _, m, _ in wanted if m.id])
            }
            for account, meter, change in wanted:
                assert account.id is not None and meter.id is not None
                if meter.id in done or _has_later(later, pushes.get(account.id, [])):
                    continue
                campaign = existing.get(change.label) or _campaign(uow, tariff, change, now)
                existing[change.label] = campaign
                push(uow, campaign, tariff, change, account, meter, policy, now)
                enrolled += 1
            try:
                uow.commit()
            except CommitConflict:  # another node created the campaign meanwhile: next run
                return enrolled


class _Opened(Protocol):
    """What the full ladder reads of an account (the campaign store's plain row)."""

    @property
    def id(self) -> int | None: ...
    @property
    def opened_on(self) -> date: ...


def _wanted(
    page: Sequence[tuple[_Opened, MeterRecord]],
    tariff: Tariff,
    now: datetime,
    changes: dict[date, PriceChange | None],
) -> list[tuple[_Opened, MeterRecord, PriceChange]]:
    """The page's accounts whose full ladder is due, each with it (`changes` caches them by
    opening day, across pages)."""
    wanted = []
    for account, meter in page:
        if account.opened_on not in changes:
            changes[account.opened_on] = _due(tariff, account.opened_on, now)
        change = changes[account.opened_on]
        if change is not None and account.id is not None:
            wanted.append((account, meter, change))
    return wanted


def _due(tariff: Tariff, opened_on: date, now: datetime) -> PriceChange | None:
    """The full-ladder push of an opening, if its boundary is the last one passed."""
    change = full_ladder_change(tariff, opened_on)
    if change is None or change.at > now:
        return None
    return change if change.at == _cycle_start(tariff, now) else None


def _cycle_start(tariff: Tariff, now: datetime) -> datetime:
    zone = ZoneInfo(tariff.zone)
    first = tariff.version_at(now).cycle.bounds(now.astimezone(zone).date())[0]
    return local_midnight(first, zone)


def _has_later(later: set[str], pushes: Sequence[tuple[str, str, datetime]]) -> bool:
    """Whether the meter holds or awaits one of the price changes `later` (full ladders)."""
    return any(
        (status == CommandStatus.DONE or status in OPEN_STATUSES)
        and not later.isdisjoint(label.split(" + "))
        for label, status, _ in pushes
    )


def _campaign(
    uow: CampaignUnitOfWork, tariff: Tariff, change: PriceChange, now: datetime
) -> CampaignRecord:
    store = uow.campaigns
    found = store.by_label(tariff.id, change.label)
    if found is not None:
        return found
    return store.add(
        NewCampaign(
            tariff_id=tariff.id,
            label=change.label,
            effective_at=change.at,
            created_at=now,
            status="running",
        )
    )
