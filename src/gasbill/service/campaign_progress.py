"""Where tariff campaigns stand: n of m confirmed, verified, failed (and why), true-ups.

What the staff API, the CLI and the admin page show of `service.campaigns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gasbill.domain.money import Money
from gasbill.service.ports import CampaignRecord, UnitOfWork


@dataclass(frozen=True, slots=True)
class Failure:
    account_id: int
    meter_comm_no: str
    reason: str


@dataclass(frozen=True, slots=True)
class Progress:
    campaign_id: int
    tariff_id: str
    label: str
    effective_at: datetime
    status: str
    total: int
    queued: int
    sent: int
    confirmed: int  # confirmed on the meter, verified or not
    verified: int
    failed: int
    failures: tuple[Failure, ...] = ()
    # the price-change true-ups credited to this campaign (days netted), in fen
    true_up_charged_fen: int = 0  # prepaid → revenue: meters that held the cheaper prices
    true_up_refunded_fen: int = 0  # revenue → prepaid
    true_up_accounts: int = 0

    @property
    def summary(self) -> str:
        return (
            f"{self.confirmed} of {self.total} confirmed, {self.verified} verified, "
            f"{self.failed} failed"
        )

    @property
    def true_up_summary(self) -> str:
        return (
            f"true-ups: {self.true_up_accounts} "
            f"account{'' if self.true_up_accounts == 1 else 's'}, "
            f"{Money.of_fen(self.true_up_charged_fen).fixed()} yuan charged, "
            f"{Money.of_fen(self.true_up_refunded_fen).fixed()} yuan refunded"
        )


def campaign_progress(uow: UnitOfWork, campaign_id: int, *, failures: int = 200) -> Progress:
    """Where a campaign stands: n of m confirmed, verified, and each failure with its reason."""
    with uow:
        store = uow.campaigns
        campaign = store.get(campaign_id)
        if campaign is None:
            raise LookupError(f"no campaign {campaign_id}")
        counts = store.counts([campaign_id]).get(campaign_id, {})
        failed = tuple(
            Failure(row.account_id, comm_no, row.last_error)
            for row, comm_no in store.failures(campaign_id, failures)
        )
        totals = store.true_up_totals([campaign_id]).get(campaign_id, (0, 0, 0))
        return _progress(campaign, counts, failed, totals)


def campaigns(uow: UnitOfWork) -> list[Progress]:
    """Every campaign, oldest change first, with its counts (no failure details)."""
    with uow:
        store = uow.campaigns
        rows = list(store.all())
        counts = store.counts()
        totals = store.true_up_totals()
        return [
            _progress(c, counts.get(c.id or 0, {}), (), totals.get(c.id or 0, (0, 0, 0)))
            for c in rows
        ]


def _progress(
    campaign: CampaignRecord,
    counts: dict[str, int],
    failures: tuple[Failure, ...],
    true_ups: tuple[int, int, int],
) -> Progress:
    assert campaign.id is not None
    return Progress(
        campaign_id=campaign.id,
        tariff_id=campaign.tariff_id,
        label=campaign.label,
        effective_at=campaign.effective_at,
        status=campaign.status,
        total=sum(counts.values()),
        queued=counts.get("queued", 0),
        sent=counts.get("sent", 0),
        confirmed=counts.get("confirmed", 0) + counts.get("verified", 0),
        verified=counts.get("verified", 0),
        failed=counts.get("failed", 0),
        failures=failures,
        true_up_charged_fen=true_ups[0],
        true_up_refunded_fen=true_ups[1],
        true_up_accounts=true_ups[2],
    )
