"""Delivering warnings (service.notify) on a fake unit of work: claims, stamps, retries.

The SQL adapter's side (SKIP LOCKED, stamping under a lease) is in
tests/integration/test_decisions_flow.py; here only the use case's logic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.config import NotifySettings
from gasbill.service.notify import DeliveryFailed, DeliveryPolicy, deliver_pending
from gasbill.service.ports import NewWarning, WarningNotice
from tests.fakes import FakeStore, FakeUnitOfWork

NOW = datetime(2025, 1, 2, 3, tzinfo=UTC)
POLICY = DeliveryPolicy(max_attempts=3, retry_base=timedelta(minutes=1), lease=timedelta(minutes=5))


class Notifier:
    def __init__(self, fail: dict[int, list[Exception]] | None = None) -> None:
        self.fail = fail or {}
        self.seen: list[WarningNotice] = []

    def deliver(self, warning: WarningNotice) -> None:
        self.seen.append(warning)
        errors = self.fail.get(warning.id)
        if errors:
            raise errors.pop(0)


def store_with(count: int) -> FakeStore:
    store = FakeStore(people={1: ("A1", "王芳", "13800000000")})
    uow = FakeUnitOfWork(store)
    with uow:
        for n in range(count):
            uow.warnings.add(
                NewWarning(
                    account_id=1,
                    level="low",
                    reason="by_amount",
                    balance_fen=1000 - n,
                    balance_source="prepaid",
                    days_left="3.5",
                    message="x" * 600,
                    at=NOW - timedelta(minutes=count - n),
                )
            )
        uow.commit()
    return store


def run(store: FakeStore, notifier: Notifier, at: datetime = NOW, batch: int = 100):
    return deliver_pending(
        lambda: FakeUnitOfWork(store), notifier, now=at, batch=batch, policy=POLICY
    )


def test_due_warnings_are_delivered_oldest_first_with_who_they_are_for_and_stamped():
    store = store_with(3)
    notifier = Notifier()
    outcome = run(store, notifier)
    assert (outcome.claimed, outcome.delivered, outcome.retried) == (3, 3, 0)
    assert [n.id for n in notifier.seen] == [1, 2, 3]
    first = notifier.seen[0]
    assert (first.account_number, first.customer_name, first.attempt) == ("A1", "王芳", 1)
    assert len(first.message) == 500  # cut to the column's length when recorded
    assert all(w.delivered_at == NOW and w.next_attempt_at is None for w in store.warnings.values())
    assert run(store, notifier, NOW + timedelta(days=1)).claimed == 0


def test_a_batch_claims_only_that_many():
    store = store_with(3)
    assert run(store, Notifier(), batch=2).claimed == 2
    assert run(store, Notifier(), batch=2).claimed == 1


def test_a_failure_is_retried_with_a_doubling_backoff_and_its_error_kept():
    store = store_with(1)
    notifier = Notifier({1: [DeliveryFailed("gateway down"), DeliveryFailed("still down")]})
    outcome = run(store, notifier)
    assert (outcome.retried, outcome.errors) == (1, [(1, "gateway down")])
    warning = store.warnings[1]
    assert warning.next_attempt_at == NOW + timedelta(minutes=1)
    assert (warning.attempts, warning.last_error) == (1, "gateway down")
    assert run(store, notifier, NOW + timedelta(seconds=59)).claimed == 0  # not yet due
    run(store, notifier, NOW + timedelta(minutes=1))
    assert store.warnings[1].next_attempt_at == NOW + timedelta(minutes=1 + 2)
    later = run(store, notifier, NOW + timedelta(minutes=3))
    assert later.delivered == 1 and store.warnings[1].attempts == 3


def test_a_notifiers_bug_is_retried_like_a_failure():
    store = store_with(1)
    outcome = run(store, Notifier({1: [RuntimeError("boom")]}))
    assert outcome.retried == 1 and outcome.errors == [(1, "RuntimeError: boom")]


@pytest.mark.parametrize(
    ("errors", "attempts"),
    [([DeliveryFailed("400 bad phone", retryable=False)], 1), ([DeliveryFailed("503")] * 3, 3)],
)
def test_a_final_refusal_or_the_last_attempt_gives_up(errors, attempts):
    store = store_with(1)
    notifier = Notifier({1: list(errors)})
    given_up = 0
    for minutes in range(0, 60, 5):
        given_up += run(store, notifier, NOW + timedelta(minutes=minutes)).given_up
    warning = store.warnings[1]
    assert given_up == 1 and warning.attempts == attempts
    assert warning.given_up_at is not None and warning.next_attempt_at is None
    assert warning.delivered_at is None


def test_a_claim_holds_the_warning_for_the_lease_then_it_is_anyones_again():
    store = store_with(1)
    uow = FakeUnitOfWork(store)
    with uow:  # a worker claims it, then dies before delivering
        uow.warnings.claim_due(now=NOW, batch=10, lease_until=NOW + POLICY.lease)
        uow.commit()
    assert run(store, Notifier(), NOW + timedelta(minutes=4)).claimed == 0
    again = run(store, Notifier(), NOW + timedelta(minutes=5))
    assert again.delivered == 1 and store.warnings[1].attempts == 2


def test_a_late_stamp_from_an_expired_claim_changes_nothing():
    store = store_with(1)
    uow = FakeUnitOfWork(store)
    with uow:
        (old,) = uow.warnings.claim_due(now=NOW, batch=1, lease_until=NOW)
        (new,) = uow.warnings.claim_due(now=NOW, batch=1, lease_until=NOW + POLICY.lease)
        assert not uow.warnings.stamp_failed(
            old.id, attempt=old.attempt, error="late", at=NOW, retry_at=None
        )
        assert uow.warnings.stamp_delivered(new.id, at=NOW)
        assert not uow.warnings.stamp_delivered(old.id, at=NOW)
        uow.commit()
    assert store.warnings[1].last_error == "" and store.warnings[1].delivered_at == NOW


def test_nothing_due_commits_nothing():
    uow = FakeUnitOfWork(store_with(0))
    outcome = deliver_pending(lambda: uow, Notifier(), now=NOW, policy=POLICY)
    assert outcome.claimed == 0 and uow.commits == 1  # only the (empty) stamping


def test_the_lease_is_never_shorter_than_four_webhook_timeouts():
    settings = NotifySettings(timeout_seconds=120)
    assert DeliveryPolicy.from_settings(settings).lease == timedelta(minutes=8)
    assert DeliveryPolicy.from_settings(NotifySettings()).lease >= timedelta(minutes=5)
    assert POLICY.retry_after(1) == timedelta(minutes=1)
    assert POLICY.retry_after(4) == timedelta(minutes=8)
    assert DeliveryPolicy(retry_cap=timedelta(minutes=5)).retry_after(10) == timedelta(minutes=5)
