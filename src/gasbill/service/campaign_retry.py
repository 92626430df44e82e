"""A person's second go at a campaign's failed meters: each gets a fresh `setprice`.

The campaign job gives up on a meter when the outbox does (after its own
retries) or when the meter holds another ladder. Once the cause is dealt
with (the meter back online, say), the clerk retries: each failed meter of
the campaign gets the change's ladder again as a new `setprice`, and the
campaign runs again until each is verified or fails anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gasbill.domain.commands import SetPrice
from gasbill.domain.errors import GasbillError
from gasbill.domain.price_changes import (
    PriceChange,
    full_ladder_at,
    is_full_ladder,
    ladder_for,
    price_changes,
)
from gasbill.domain.tariff import Tariff
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.campaign_ports import CampaignMeterRow, CampaignUnitOfWork
from gasbill.service.commands.queue import CommandPolicy, queue_command
from gasbill.service.ports import TariffBook


@dataclass(slots=True)
class CampaignRetry:
    campaign_id: int
    retried: list[int] = field(default_factory=list)  # meter ids given a new setprice
    still_failed: list[tuple[int, str]] = field(default_factory=list)  # (meter id, why)


def retry_failed_meters(
    uow: CampaignUnitOfWork,
    campaign_id: int,
    *,
    catalog: TariffBook,
    policy: CommandPolicy,
    actor: str,
    now: datetime,
) -> CampaignRetry:
    """Queue the change's ladder again for every failed meter of the campaign; audited."""
    outcome = CampaignRetry(campaign_id)
    with uow:
        store = uow.campaigns
        campaign = store.get(campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}")
        tariff = catalog.get(campaign.tariff_id)
        change = (
            full_ladder_at(tariff, campaign.effective_at)
            if is_full_ladder(campaign.label)
            else next(
                (
                    c
                    for c in price_changes(tariff, max(now, campaign.effective_at))
                    if c.label == campaign.label
                ),
                None,
            )
        )
        if change is None:
            raise Conflict(f"campaign {campaign_id}: {campaign.label!r} is no longer in the tariff")
        failed = [row for row, _ in store.failures(campaign_id, 100_000)]
        for row in failed:
            _again(uow, row, campaign.label, tariff, change, policy, now, outcome)
        if outcome.retried and campaign.status == "completed":
            campaign.status = "running"
            store.save(campaign)
        uow.audit.record(
            actor=actor,
            action="campaign.retry_failed",
            entity="campaign",
            entity_id=campaign_id,
            after={"retried": outcome.retried, "still_failed": len(outcome.still_failed)},
            at=now,
        )
        uow.commit()
    return outcome


def _again(
    uow: CampaignUnitOfWork,
    row: CampaignMeterRow,
    label: str,
    tariff: Tariff,
    change: PriceChange,
    policy: CommandPolicy,
    now: datetime,
    outcome: CampaignRetry,
) -> None:
    account = uow.accounts.get(row.account_id)
    meter = uow.accounts.meter_by_id(row.meter_id)
    if account is None or meter is None or account.status != "active":
        outcome.still_failed.append((row.meter_id, "the account is closed or gone"))
        return
    try:
        ladder = ladder_for(tariff, change, account.persons, account.opened_on)
    except GasbillError as exc:
        outcome.still_failed.append((row.meter_id, str(exc)))
        return
    command = queue_command(
        uow,
        SetPrice(ladder),
        meter=meter,
        now=now,
        policy=policy,
        account_id=account.id,
        campaign_id=row.campaign_id,
        reason=f"campaign #{row.campaign_id}: {label} (retried)",
    )
    row.setprice_id, row.getprice_id = command.id, None
    row.status, row.command_status, row.last_error = "queued", command.status, ""
    row.confirmed_at = row.verified_at = None
    row.updated_at = now
    uow.campaigns.save(row)
    outcome.retried.append(row.meter_id)
