"""Tariff campaigns, step 3 and the end (see service/campaigns.py): each campaign meter's
commands followed as the outbox ends them (a done setprice confirmed and a getprice queued;
a getprice answering the ladder sent verified; a command given up on, or another ladder,
failed with the reason), and a campaign with no meter waiting completed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from gasbill.domain.commands import CtrlType, GetPrice, SetPrice
from gasbill.domain.outbox import CommandStatus
from gasbill.service.campaign_ports import CampaignMeterRow, CampaignUnitOfWork
from gasbill.service.campaign_reasons import command_failure, ladder_text
from gasbill.service.commands.queue import CommandPolicy, queue_command
from gasbill.service.ports import CommandCodec, CommandRecord

FAILED_ENDINGS = frozenset(
    {CommandStatus.ATTENTION, CommandStatus.CANCELLED, CommandStatus.REFUSED}
)


@dataclass(slots=True)
class CampaignOutcome:
    created: list[int] = field(default_factory=list)
    enrolled: int = 0
    confirmed: int = 0
    verified: int = 0
    failed: int = 0
    completed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# -- 3. following the outbox -------------------------------------------------------------


def advance(
    uow_factory: Callable[[], CampaignUnitOfWork],
    codec: CommandCodec,
    policy: CommandPolicy,
    now: datetime,
    outcome: CampaignOutcome,
) -> None:
    after: tuple[int, int] | None = None  # one walk over the campaign meters a run
    while True:
        uow = uow_factory()
        with uow:
            store = uow.campaigns
            rows = list(store.needing_work(policy.batch_size * 4, after=after))
            if not rows:
                return
            after = (rows[-1].campaign_id, rows[-1].meter_id)
            commands = store.commands(
                [i for r in rows for i in (r.setprice_id, r.getprice_id) if i is not None]
            )
            for row in rows:
                _follow(uow, row, commands, codec, policy, now, outcome)
                row.updated_at = now
            store.save_all(rows)  # one flush a page, not one a row
            uow.commit()


def _follow(
    uow: CampaignUnitOfWork,
    row: CampaignMeterRow,
    commands: Mapping[int, CommandRecord],
    codec: CommandCodec,
    policy: CommandPolicy,
    now: datetime,
    outcome: CampaignOutcome,
) -> None:
    setprice = commands[row.setprice_id or 0]
    if row.getprice_id is None:
        status = CommandStatus(setprice.status)
        row.command_status = setprice.status
        if status is CommandStatus.DONE:
            row.status, row.confirmed_at = "confirmed", setprice.finished_at or now
            row.last_error = ""
            meter = uow.accounts.meter_by_id(row.meter_id)
            assert meter is not None
            getprice = queue_command(
                uow,
                GetPrice(),
                meter=meter,
                now=now,
                policy=policy,
                account_id=row.account_id,
                campaign_id=row.campaign_id,
                reason=f"campaign #{row.campaign_id}: verify the ladder of #{setprice.id}",
            )
            row.getprice_id, row.command_status = getprice.id, getprice.status
            outcome.confirmed += 1
        elif status in FAILED_ENDINGS:
            _fail(row, command_failure("setprice", setprice), outcome)
        else:
            row.status = "sent" if status is CommandStatus.SENT else "queued"
        return
    getprice = commands[row.getprice_id]
    status = CommandStatus(getprice.status)
    row.command_status = getprice.status
    if status is CommandStatus.DONE:
        sent = setprice.intent
        held = codec.decode_result(CtrlType.GET_PRICE, getprice.return_data)
        assert isinstance(sent, SetPrice)
        if held == sent.ladder:
            row.status, row.verified_at, row.last_error = (
                "verified",
                getprice.finished_at or now,
                "",
            )
            outcome.verified += 1
        else:
            _fail(row, f"the meter holds {ladder_text(held)}, not the ladder sent", outcome)
    elif status in FAILED_ENDINGS:
        _fail(row, command_failure("getprice", getprice), outcome)
    else:
        row.status = "confirmed"


def _fail(row: CampaignMeterRow, reason: str, outcome: CampaignOutcome) -> None:
    row.status, row.last_error = "failed", reason[:1000]
    outcome.failed += 1


def complete(uow_factory: Callable[[], CampaignUnitOfWork], outcome: CampaignOutcome) -> None:
    """A running campaign with no meter waiting is completed; one waiting again runs again."""
    uow = uow_factory()
    with uow:
        store = uow.campaigns
        campaigns = [c for c in store.all() if c.status != "enrolling"]
        counts = store.counts([c.id for c in campaigns if c.id is not None])
        for campaign in campaigns:
            assert campaign.id is not None
            waiting = sum(counts[campaign.id].get(s, 0) for s in ("queued", "sent", "confirmed"))
            status = "running" if waiting else "completed"
            if status != campaign.status:
                campaign.status = status
                store.save(campaign)
                if status == "completed":
                    outcome.completed.append(campaign.id)
        uow.commit()
