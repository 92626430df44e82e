"""The price-change true-up's ports: its own rows (marks, days), the campaigns its days
are credited to, and the two reads of billing's store it needs beyond billing's own.

`adapters/db` implements them (`TrueUpStore`, and `BillingStore` for the reads of the
inbox and the readings), `tests/fakes.py` in memory; the unit of work carries them as
`uow.true_ups` and `uow.billing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from gasbill.service.billing_ports import BillingRepository, BillingUnitOfWork
from gasbill.service.true_up_lines import CampaignStart
from gasbill.service.true_up_marks import MarkRecord

# per account, what the true-up posted per (cycle, day): (fen, revision)
TruedDays = dict[int, dict[tuple[str, date], tuple[int, int]]]


class TrueUpRepository(Protocol):
    """The true-up's rows, read and written for a batch of accounts."""

    def meter_account_ids(self, after_id: int, limit: int) -> list[int]:
        """Active meter-mode accounts, by id after `after_id`, at most `limit`."""

    def of_tariff(self, tariff_id: str) -> Sequence[CampaignStart]:
        """The tariff's campaigns, the earliest change first."""

    def true_up_marks(self, account_ids: Sequence[int]) -> Mapping[int, MarkRecord]:
        """Where each account's true-up stands (accounts without a mark absent)."""

    def true_up_days(self, from_days: Mapping[int, date]) -> TruedDays:
        """Per account, what the true-up posted per (cycle, day) from its day in `from_days`
        on: (fen, revision)."""

    def save_true_up_marks(self, rows: list[dict[str, Any]], *, drop: Sequence[int]) -> None:
        """Insert or replace these marks (keyed by account); delete those of `drop`."""

    def save_true_up_days(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace these days (keyed by account, cycle and day)."""


class TrueUpBillingRepository(BillingRepository, Protocol):
    """Billing's store, with what the true-up asks it besides what billing does."""

    def unbilled_meters(self, meters: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of these meters, those with a stored frozen reading not billed yet (inbox)."""

    def latest_readings(
        self, meters: Iterable[tuple[str, str]], until: datetime
    ) -> dict[tuple[str, str], datetime]:
        """Of these meters, the time of each one's latest frozen or real-time reading up to
        `until`."""


class TrueUpUnitOfWork(BillingUnitOfWork, Protocol):
    """A unit of work that carries the true-up's repository, and billing's as it needs it."""

    @property
    def billing(self) -> TrueUpBillingRepository: ...

    @property
    def true_ups(self) -> TrueUpRepository: ...
