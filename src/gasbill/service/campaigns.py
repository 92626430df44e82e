"""Tariff campaigns (DESIGN §7, §8): a price change pushed to every meter-mode meter, proven.

`run_campaigns` is the scheduled job. Each run:

1. for each tariff of a meter-mode account, creates the campaign of the
   price change now due (a version or a season becoming effective, within
   the lead time) — once: a campaign is unique by (tariff, change label);
   Then, past a cycle boundary, the meters opened prorated in the cycle
   that ended get the full ladder (`full_ladder`), as a campaign of its own;
2. enrols every active meter-mode meter on that tariff that lacks the
   change: a `setprice` with its own ladder (household size, opening
   proration, whole-m³ thresholds, the cycle) goes into the outbox, tagged
   with the campaign;
3. follows each campaign meter's commands as the outbox ends them: a done
   setprice is *confirmed* and a `getprice` is queued; a getprice answering
   the ladder sent is *verified*; a command the outbox gave up on (after its
   own retries) or a different ladder is *failed*, with the reason.

Endings are read from the command table; nothing here changes results.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from gasbill.domain.commands import SetPrice
from gasbill.domain.decisions.tariff_push import TariffChange, tariff_change_due
from gasbill.domain.errors import GasbillError
from gasbill.domain.outbox import OPEN_STATUSES, CommandStatus
from gasbill.domain.price_changes import (
    PriceChange,
    change_in_force,
    ladder_for,
    opening_instant,
    price_changes,
)
from gasbill.domain.tariff import Tariff
from gasbill.service.campaign_follow import CampaignOutcome as CampaignOutcome
from gasbill.service.campaign_follow import advance, complete
from gasbill.service.campaign_ports import CampaignUnitOfWork, EnrolledAccount, NewCampaign
from gasbill.service.commands.queue import CommandPolicy, new_command
from gasbill.service.full_ladder import PAGE_BATCHES, full_ladders_due
from gasbill.service.meter_tariffs import meter_confirmations
from gasbill.service.ports import (
    CampaignRecord,
    CommandCodec,
    CommitConflict,
    MeterRecord,
    TariffBook,
)

log = logging.getLogger("gasbill.campaigns")


def run_campaigns(
    uow_factory: Callable[[], CampaignUnitOfWork],
    *,
    catalog: TariffBook,
    codec: CommandCodec,
    policy: CommandPolicy,
    now: datetime,
    lead: timedelta = timedelta(0),
) -> CampaignOutcome:
    outcome = CampaignOutcome()
    with uow_factory() as uow:
        tariffs = uow.campaigns.meter_tariffs()
    for tariff_id, first_opened in sorted(tariffs.items()):
        try:
            tariff = catalog.get(tariff_id)
        except GasbillError as exc:
            outcome.errors.append(f"tariff {tariff_id}: {exc}")
            continue
        _create_due(uow_factory, tariff, first_opened, now, lead, outcome)
        enrolled = full_ladders_due(uow_factory, tariff, policy=policy, now=now, push=_push)
        outcome.enrolled += enrolled
    with uow_factory() as uow:
        enrolling = list(uow.campaigns.all(status="enrolling"))
    for campaign in enrolling:
        try:
            tariff = catalog.get(campaign.tariff_id)
        except GasbillError as exc:
            outcome.errors.append(f"campaign {campaign.id}: {exc}")
            continue
        _enrol(uow_factory, campaign, tariff, policy, now, lead, outcome)
    advance(uow_factory, codec, policy, now, outcome)
    complete(uow_factory, outcome)
    return outcome


# -- 1. campaigns -----------------------------------------------------------------------


def _create_due(
    uow_factory: Callable[[], CampaignUnitOfWork],
    tariff: Tariff,
    first_opened: date,
    now: datetime,
    lead: timedelta,
    outcome: CampaignOutcome,
) -> None:
    changes = price_changes(tariff, now + lead)
    uow = uow_factory()
    with uow:
        store = uow.campaigns
        newest = store.newest(tariff.id)
        # every meter was opened with the prices in force then: those it had already
        opened = change_in_force(changes, opening_instant(tariff, first_opened))
        had = [c.at for c in (opened,) if c is not None]
        if newest is not None:
            had.append(newest.effective_at)
        due = tariff_change_due(
            [TariffChange(c.at, c.label) for c in changes], max(had, default=None), now, lead=lead
        )
        if due is None or store.by_label(tariff.id, due.label) is not None:
            return
        campaign = store.add(
            NewCampaign(
                tariff_id=tariff.id,
                label=due.label,
                effective_at=due.at,
                created_at=now,
                status="enrolling",
            )
        )
        try:
            uow.commit()
        except CommitConflict:  # another node created it meanwhile
            return
    assert campaign.id is not None
    outcome.created.append(campaign.id)
    log.info("campaign %s: %s %s effective %s", campaign.id, tariff.id, due.label, due.at)


# -- 2. enrolment -----------------------------------------------------------------------


def _enrol(
    uow_factory: Callable[[], CampaignUnitOfWork],
    campaign: CampaignRecord,
    tariff: Tariff,
    policy: CommandPolicy,
    now: datetime,
    lead: timedelta,
    outcome: CampaignOutcome,
) -> None:
    """Queue a setprice for each meter that lacks the change, a page of accounts at a time.

    Enrolling again skips the meters already in: a run cut short resumes.
    Each page is enrolled under a claim on the campaign, so two workers never
    enrol one meter twice.
    """
    assert campaign.id is not None
    changes = price_changes(tariff, max(now + lead, campaign.effective_at))
    change = next((c for c in changes if c.label == campaign.label), None)
    if change is None:
        outcome.errors.append(f"campaign {campaign.id}: {campaign.label!r} is not in the tariff")
        return
    at_of = {c.label: c.at for c in changes}
    candidates = [TariffChange(c.at, c.label) for c in changes]
    wanted = _Wanted(tariff, campaign.label, at_of, candidates, now, lead)
    after = 0
    while True:
        uow = uow_factory()
        with uow:
            store = uow.campaigns
            if not store.claim_enrolment(campaign.id):
                return  # another worker enrols this page; this one follows the outbox
            page = store.meter_accounts(tariff.id, after, policy.batch_size * PAGE_BATCHES)
            if not page:
                current = store.get(campaign.id)
                if current is not None and current.status == "enrolling":
                    current.status = "running"
                    store.save(current)
                uow.commit()
                return
            after = page[-1][0].id or after
            ids = [a.id for a, _ in page if a.id is not None]
            enrolled = store.enrolled(campaign.id, [m.id for _, m in page if m.id is not None])
            pushes = store.pushes(ids)
            chosen = [
                (account, meter)
                for account, meter in page
                if meter.id not in enrolled
                and account.id is not None
                and wanted.lacks(account.opened_on, pushes.get(account.id, []))
            ]
            _push_page(uow, campaign, tariff, change, chosen, policy, now)
            outcome.enrolled += len(chosen)
            uow.commit()


@dataclass(frozen=True, slots=True)
class _Wanted:
    """Whether a meter lacks the campaign's change: the change due to it, by what it has
    confirmed and what is queued for it, is this campaign's."""

    tariff: Tariff
    label: str
    at_of: dict[str, datetime]  # each change of the tariff by its label
    candidates: list[TariffChange]
    now: datetime
    lead: timedelta
    # answers by (opening day, pushes): a page's meters mostly share both
    known: dict[tuple[date, tuple[tuple[str, str, datetime | None], ...]], bool] = field(
        default_factory=dict
    )

    def lacks(self, opened_on: date, pushes: Sequence[tuple[str, str, datetime | None]]) -> bool:
        key = (opened_on, tuple(pushes))
        found = self.known.get(key)
        if found is None:
            if len(self.known) >= 4096:  # meters that confirmed earlier changes differ in when
                self.known.clear()
            found = self.known[key] = self._lacks(opened_on, pushes)
        return found

    def _lacks(self, opened_on: date, pushes: Sequence[tuple[str, str, datetime | None]]) -> bool:
        at_of = self.at_of
        done = {
            label: finished
            for label, status, finished in pushes
            if status == CommandStatus.DONE and finished is not None
        }
        held = meter_confirmations(self.tariff, done, opened_on)
        queued = [
            at_of[label]
            for label, status, _ in pushes
            if status in OPEN_STATUSES and label in at_of
        ]
        due = tariff_change_due(
            self.candidates,
            max((at_of[label] for label in held if label in at_of), default=None),
            self.now,
            lead=self.lead,
            queued_at=max(queued, default=None),
        )
        return due is not None and due.label == self.label


def _push(
    uow: CampaignUnitOfWork,
    campaign: CampaignRecord,
    tariff: Tariff,
    change: PriceChange,
    account: EnrolledAccount,
    meter: MeterRecord,
    policy: CommandPolicy,
    now: datetime,
) -> None:
    _push_page(uow, campaign, tariff, change, [(account, meter)], policy, now)


def _push_page(
    uow: CampaignUnitOfWork,
    campaign: CampaignRecord,
    tariff: Tariff,
    change: PriceChange,
    pairs: Sequence[tuple[EnrolledAccount, MeterRecord]],
    policy: CommandPolicy,
    now: datetime,
) -> None:
    """A setprice queued for each meter, and its campaign row: the page's commands inserted
    in one flush, then its rows in another (not two round trips per meter)."""
    assert campaign.id is not None
    rows: list[dict[str, object]] = []
    news, queued = [], []
    ladders: dict[tuple[int, date], SetPrice | str] = {}
    for account, meter in pairs:
        assert account.id is not None and meter.id is not None
        row: dict[str, object] = {
            "campaign_id": campaign.id,
            "meter_id": meter.id,
            "account_id": account.id,
            "setprice_id": None,
            "getprice_id": None,
            "status": "queued",
            "command_status": "",
            "last_error": "",
            "created_at": now,
            "updated_at": now,
        }
        rows.append(row)
        key = (account.persons, account.opened_on)
        if key not in ladders:  # a city's accounts share a handful of ladders
            try:
                ladder = ladder_for(tariff, change, account.persons, account.opened_on)
            except GasbillError as exc:  # a ladder the meter cannot hold: refused, not cut
                ladders[key] = str(exc)
            else:
                ladders[key] = SetPrice(ladder)
        setprice = ladders[key]
        if isinstance(setprice, str):
            row["status"], row["last_error"] = "failed", setprice[:1000]
            continue
        news.append(
            new_command(
                setprice,
                meter=meter,
                now=now,
                policy=policy,
                account_id=account.id,
                campaign_id=campaign.id,
                reason=f"campaign #{campaign.id}: {campaign.label}",
            )
        )
        queued.append(row)
    for row, command_id in zip(queued, uow.commands.add_many(news), strict=True):
        row["setprice_id"], row["command_status"] = command_id, str(CommandStatus.QUEUED)
    uow.campaigns.add_meters(rows)
