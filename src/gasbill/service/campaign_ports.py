"""Tariff campaigns' ports: what creating, enrolling, following and retrying a campaign
reads and writes (service.campaigns, campaign_follow, campaign_retry, full_ladder), beyond
the reports' part (`ports.CampaignRepository`, which campaign_progress reads).

`adapters/db` implements them (`CampaignStore`), `tests/fakes.py` in memory; the unit of
work carries them as `uow.campaigns`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from gasbill.service.ports import (
    CampaignRecord,
    CampaignRepository,
    CommandRecord,
    MeterRecord,
    UnitOfWork,
)

# per account, its campaigns' setprices on its own tariff: (label, command status, finished)
Pushes = Mapping[int, Sequence[tuple[str, str, datetime]]]


@dataclass(frozen=True, slots=True)
class NewCampaign:
    """A campaign to create: one price change (`label`, effective at `effective_at`) of one
    tariff. Unique by (tariff, label): a second one is refused at commit."""

    tariff_id: str
    label: str
    effective_at: datetime
    created_at: datetime
    status: str  # enrolling | running


class CampaignMeterRow(Protocol):
    """One meter of a campaign, changed in place as its commands end: its setprice, its
    verifying getprice, where it stands, and the status its current command had when last
    looked at (`command_status`)."""

    campaign_id: int
    meter_id: int
    account_id: int
    setprice_id: int | None
    getprice_id: int | None
    status: str  # queued | sent | confirmed | verified | failed
    command_status: str
    last_error: str
    confirmed_at: datetime | None
    verified_at: datetime | None
    updated_at: datetime


class EnrolledAccount(Protocol):
    """What enrolment reads of an account (an `AccountRecord`, or the store's plain row)."""

    @property
    def id(self) -> int | None: ...
    @property
    def persons(self) -> int: ...
    @property
    def opened_on(self) -> date: ...


class CampaignWorkRepository(CampaignRepository, Protocol):
    """Campaigns as the campaign job and a retry work them."""

    def claim_enrolment(self, campaign_id: int) -> bool:
        """Claim this campaign's enrolment for the transaction (False: another worker has
        it)."""

    def claim_full_ladder(self, tariff_id: str) -> bool:
        """Claim this tariff's full-ladder enrolment for the transaction."""

    def by_label(self, tariff_id: str, label: str) -> CampaignRecord | None: ...

    def newest(self, tariff_id: str) -> CampaignRecord | None:
        """The tariff's campaign of the latest change."""

    def add(self, campaign: NewCampaign) -> CampaignRecord:
        """Create it (its id assigned now)."""

    def save(self, row: CampaignRecord | CampaignMeterRow) -> None: ...

    def failures(self, campaign_id: int, limit: int) -> Sequence[tuple[CampaignMeterRow, str]]:
        """The failed meters (with their comm_no), by meter id, at most `limit`."""

    def meter_tariffs(self) -> dict[str, date]:
        """The tariffs of active meter-mode accounts, each with its earliest opening day."""

    def meter_accounts(
        self, tariff_id: str, after_id: int, limit: int
    ) -> Sequence[tuple[EnrolledAccount, MeterRecord]]:
        """Active meter-mode accounts on a tariff, with their active meter, by id after
        `after_id`, at most `limit`."""

    def enrolled(self, campaign_id: int, meter_ids: Sequence[int]) -> set[int]:
        """Of these meters, those in the campaign."""

    def add_meters(self, rows: Sequence[dict[str, Any]]) -> None:
        """Campaign meters (column values) inserted together."""

    def pushes(self, account_ids: Sequence[int]) -> Pushes:
        """Per account, its campaigns' setprices on its own tariff: (label, status,
        finished); `finished` is the setprice's ending time."""

    def needing_work(
        self, limit: int, *, after: tuple[int, int] | None = None
    ) -> Sequence[CampaignMeterRow]:
        """Unverified campaign meters whose current command moved since last looked at,
        locked (skipping those another worker holds), by campaign and meter; only those
        after `after` (campaign, meter) when given."""

    def save_all(self, rows: Sequence[CampaignMeterRow]) -> None:
        """Campaign meters changed in place, saved together."""

    def commands(self, ids: Sequence[int]) -> Mapping[int, CommandRecord]:
        """These commands, by id."""


class CampaignUnitOfWork(UnitOfWork, Protocol):
    """A unit of work whose campaign repository carries the campaign job's part too."""

    @property
    def campaigns(self) -> CampaignWorkRepository: ...
