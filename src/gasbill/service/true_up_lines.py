"""What one account's true-up posts: a ledger line per campaign for the net of its days,
and the days' rows (`true_up_day`: what each day has now been posted, and its revision)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from gasbill.domain.ledger import AccountKind, Transfer
from gasbill.domain.rating import DayKey
from gasbill.domain.true_up_postings import (
    attribution,
    by_campaign,
    push_begun,
    stamp,
    true_up_transfer,
)


class CampaignStart(Protocol):
    """A price change's campaign, as far as owning days goes."""

    id: int | None
    label: str
    effective_at: datetime
    created_at: datetime


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

    def add(self, other: TrueUpOutcome) -> None:
        self.accounts += other.accounts
        self.charged_fen += other.charged_fen
        self.refunded_fen += other.refunded_fen
        self.days_changed += other.days_changed
        self.skipped += other.skipped
        self.resumed += other.resumed
        self.transfers.extend(other.transfers)

    def count(self, lines: Sequence[Transfer]) -> None:
        for line in lines:
            if line.debit_account.kind == AccountKind.PREPAID:
                self.charged_fen += line.amount
            else:
                self.refunded_fen += line.amount


def owner_of(
    campaigns: Sequence[CampaignStart], held: Mapping[str, datetime], zone: str
) -> Callable[[date], int | None]:
    """day → the campaign of the newest change whose push had begun by the end of that day."""
    starts = [
        (push_begun(c.effective_at, c.created_at, held.get(c.label)), c.id)
        for c in campaigns
        if c.id is not None
    ]
    return attribution(starts, zone)


def lines_of(
    account_id: int,
    difference: dict[DayKey, int],
    owner: Callable[[date], int | None],
    trued: Mapping[DayKey, tuple[int, int]],
    effective: datetime,
    now: datetime,
) -> tuple[list[Transfer], list[dict[str, Any]]]:
    """A ledger line per campaign for the net of its days, and the days' rows."""
    lines: list[Transfer] = []
    rows: list[dict[str, Any]] = []
    for campaign_id, days in by_campaign(difference, owner).items():
        rows.extend(day_rows(account_id, days, campaign_id, trued, now))
        key_stamp = stamp(account_id, campaign_id, days, trued)
        line = true_up_transfer(
            account_id, campaign_id, days, key_stamp, effective=effective, now=now
        )
        if line is not None:
            lines.append(line)
    return lines, rows


def day_rows(
    account_id: int,
    days: dict[DayKey, int],
    campaign_id: int | None,
    trued: Mapping[DayKey, tuple[int, int]],
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
