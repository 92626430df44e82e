"""Delivering recorded low-balance warnings through a notifier port.

Warnings are recorded in the decision's transaction; delivery happens
afterwards, outside any transaction, in three steps:

1. claim a batch of due warnings (locked, skipping rows another worker
   holds) and move each one's `next_attempt_at` ahead by a lease, commit;
2. deliver each claimed warning with no transaction open;
3. stamp the results: `delivered_at` only where it is still empty, so a
   stamp is never lost (a crash before step 3 leaves the warning due again
   when the lease runs out) nor written twice.

Delivery is therefore at least once: the notice carries the warning's id
for the receiver to drop a repeat. A failure is retried with a backoff, up
to `max_attempts`; a final failure (the receiver refused it) is not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import col, select

from gasbill.adapters.db.tables.accounts import Account, Customer
from gasbill.adapters.db.tables.decisions import BalanceWarning
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.config import NotifySettings

log = logging.getLogger("gasbill.notify")


@dataclass(frozen=True, slots=True)
class WarningNotice:
    """What a notifier is given: one warning, and who it is for."""

    id: int
    account_id: int
    account_number: str
    customer_name: str
    customer_phone: str
    level: str  # low | below_zero
    reason: str  # by_amount | by_days | below_zero
    balance_fen: int
    balance_source: str
    days_left: str | None
    message: str
    at: datetime
    attempt: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "low_balance_warning",
            "account_id": self.account_id,
            "account_number": self.account_number,
            "customer_name": self.customer_name,
            "customer_phone": self.customer_phone,
            "level": self.level,
            "reason": self.reason,
            "balance_fen": self.balance_fen,
            "balance_source": self.balance_source,
            "days_left": self.days_left,
            "message": self.message,
            "at": self.at.isoformat(),
            "attempt": self.attempt,
        }


class DeliveryFailed(Exception):
    """A notifier could not deliver; `retryable` False when trying again cannot help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    def deliver(self, warning: WarningNotice) -> None:
        """Deliver or raise (DeliveryFailed, or anything else: retried)."""


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    max_attempts: int = 10
    retry_base: timedelta = timedelta(seconds=60)
    retry_cap: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=5)  # a claim older than this is anyone's again

    @classmethod
    def from_settings(cls, settings: NotifySettings) -> DeliveryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            retry_base=timedelta(seconds=settings.retry_base_seconds),
            retry_cap=timedelta(seconds=settings.retry_cap_seconds),
            # never shorter than a webhook's wait, or a slow delivery could be doubled
            lease=max(timedelta(minutes=5), timedelta(seconds=int(settings.timeout_seconds) * 4)),
        )

    def retry_after(self, attempts: int) -> timedelta:
        delay: timedelta = self.retry_base * 2 ** max(attempts - 1, 0)
        return min(self.retry_cap, delay)


@dataclass(slots=True)
class DeliveryOutcome:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    given_up: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def deliver_pending(
    uow_factory: Callable[[], UnitOfWork],
    notifier: Notifier,
    *,
    now: datetime,
    batch: int = 100,
    policy: DeliveryPolicy | None = None,
) -> DeliveryOutcome:
    """Deliver the warnings due at `now` (at most `batch`), then stamp each result."""
    policy = policy or DeliveryPolicy()
    notices = _claim(uow_factory, now=now, batch=batch, policy=policy)
    outcome = DeliveryOutcome(claimed=len(notices))
    results: list[tuple[WarningNotice, str | None, bool]] = []
    for notice in notices:
        try:
            notifier.deliver(notice)
        except DeliveryFailed as exc:
            log.warning("warning %s: delivery failed: %s", notice.id, exc)
            results.append((notice, str(exc) or type(exc).__name__, exc.retryable))
        except Exception as exc:  # a notifier's bug must not lose the batch's stamps
            log.exception("warning %s: notifier error", notice.id)
            results.append((notice, f"{type(exc).__name__}: {exc}", True))
        else:
            results.append((notice, None, True))
    with uow_factory() as uow:
        for notice, error, retryable in results:
            if error is None:
                outcome.delivered += _stamp_delivered(uow, notice, now)
                continue
            outcome.errors.append((notice.id, error))
            give_up = not retryable or notice.attempt >= policy.max_attempts
            values: dict[str, Any] = {"last_error": error[:1000]}
            if give_up:
                values.update(next_attempt_at=None, given_up_at=now)
            else:
                values["next_attempt_at"] = now + policy.retry_after(notice.attempt)
            # only this claim's own row: a later claim (our lease ran out) decides for itself
            changed = _update(uow, notice, values, attempts=notice.attempt)
            if changed and give_up:
                outcome.given_up += 1
            elif changed:
                outcome.retried += 1
        uow.commit()
    return outcome


def _claim(
    uow_factory: Callable[[], UnitOfWork], *, now: datetime, batch: int, policy: DeliveryPolicy
) -> list[WarningNotice]:
    with uow_factory() as uow:
        rows = uow.session.exec(
            select(BalanceWarning)
            .where(
                col(BalanceWarning.delivered_at).is_(None),
                col(BalanceWarning.next_attempt_at).is_not(None),
                col(BalanceWarning.next_attempt_at) <= now,
            )
            .order_by(col(BalanceWarning.next_attempt_at), col(BalanceWarning.id))
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        people = {
            account.id: (account, customer)
            for account, customer in uow.session.exec(
                select(Account, Customer)
                .join(Customer, col(Customer.id) == col(Account.customer_id))
                .where(col(Account.id).in_({row.account_id for row in rows}))
            ).all()
        }
        notices = []
        for row in rows:
            assert row.id is not None
            row.attempts += 1
            row.next_attempt_at = now + policy.lease
            uow.session.add(row)
            account, customer = people[row.account_id]
            notices.append(
                WarningNotice(
                    id=row.id,
                    account_id=row.account_id,
                    account_number=account.number,
                    customer_name=customer.name,
                    customer_phone=customer.phone,
                    level=row.level,
                    reason=row.reason,
                    balance_fen=row.balance_fen,
                    balance_source=row.balance_source,
                    days_left=row.days_left,
                    message=row.message,
                    at=row.at,
                    attempt=row.attempts,
                )
            )
        uow.commit()
        return notices


def _stamp_delivered(uow: UnitOfWork, notice: WarningNotice, now: datetime) -> int:
    """Stamp once: a warning already stamped (by another worker) keeps its first stamp."""
    return _update(uow, notice, {"delivered_at": now, "next_attempt_at": None, "given_up_at": None})


def _update(
    uow: UnitOfWork, notice: WarningNotice, values: dict[str, Any], *, attempts: int | None = None
) -> int:
    table = BalanceWarning.__table__  # type: ignore[attr-defined]
    where = [table.c.id == notice.id, table.c.delivered_at.is_(None)]
    if attempts is not None:
        where.append(table.c.attempts == attempts)
    result = uow.session.execute(sa.update(table).where(*where).values(**values))
    return int(getattr(result, "rowcount", 0) or 0)
