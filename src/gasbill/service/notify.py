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
from typing import Protocol

from gasbill.config import NotifySettings
from gasbill.service.ports import UnitOfWork, WarningNotice

log = logging.getLogger("gasbill.notify")


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
                outcome.delivered += uow.warnings.stamp_delivered(notice.id, at=now)
                continue
            outcome.errors.append((notice.id, error))
            give_up = not retryable or notice.attempt >= policy.max_attempts
            # only this claim's own row: a later claim (our lease ran out) decides for itself
            changed = uow.warnings.stamp_failed(
                notice.id,
                attempt=notice.attempt,
                error=error,
                at=now,
                retry_at=None if give_up else now + policy.retry_after(notice.attempt),
            )
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
        notices = uow.warnings.claim_due(now=now, batch=batch, lease_until=now + policy.lease)
        if notices:
            uow.commit()
        return notices
