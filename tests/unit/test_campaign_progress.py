"""Where campaigns stand (service.campaign_progress) on a fake unit of work: the counts,
failures with their reasons, and the true-ups credited to each."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gasbill.service.campaign_progress import campaign_progress, campaigns
from tests.fakes import (
    FakeCampaign,
    FakeCampaignMeter,
    FakeMeter,
    FakeStore,
    FakeUnitOfWork,
)

JAN, JUL = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)


def store() -> FakeStore:
    meters = [
        FakeCampaignMeter(1, 110, 10, "queued"),
        FakeCampaignMeter(1, 111, 11, "sent"),
        FakeCampaignMeter(1, 112, 12, "confirmed"),
        FakeCampaignMeter(1, 113, 13, "verified"),
        FakeCampaignMeter(1, 114, 14, "failed", "setprice refused (state 4)"),
        FakeCampaignMeter(2, 110, 10, "verified"),
    ]
    return FakeStore(
        campaigns=[
            FakeCampaign(2, "beijing", "v2", JUL, "completed"),
            FakeCampaign(1, "beijing", "winter", JAN),
        ],
        campaign_meters=meters,
        meters={i: FakeMeter(i, comm_no=f"A{i - 100}") for i in range(110, 115)},
        true_ups={1: (1_250, 300, 2)},
    )


def test_a_campaigns_progress_counts_its_meters_and_names_each_failure():
    progress = campaign_progress(FakeUnitOfWork(store()), 1)
    assert (progress.total, progress.queued, progress.sent) == (5, 1, 1)
    assert (progress.confirmed, progress.verified, progress.failed) == (2, 1, 1)
    assert progress.summary == "2 of 5 confirmed, 1 verified, 1 failed"
    (failure,) = progress.failures
    assert (failure.account_id, failure.meter_comm_no) == (14, "A14")
    assert failure.reason == "setprice refused (state 4)"
    assert (
        progress.true_up_summary == "true-ups: 2 accounts, 12.50 yuan charged, 3.00 yuan refunded"
    )


def test_failures_shown_are_bounded_and_an_unknown_campaign_is_a_lookup_error():
    assert campaign_progress(FakeUnitOfWork(store()), 1, failures=0).failures == ()
    with pytest.raises(LookupError):
        campaign_progress(FakeUnitOfWork(store()), 3)


def test_every_campaign_oldest_change_first_without_failure_details():
    listed = campaigns(FakeUnitOfWork(store()))
    assert [(p.campaign_id, p.label, p.status) for p in listed] == [
        (1, "winter", "enrolling"),
        (2, "v2", "completed"),
    ]
    assert listed[0].failures == () and listed[0].failed == 1
    assert (listed[1].total, listed[1].true_up_accounts) == (1, 0)
    assert listed[1].true_up_summary.startswith("true-ups: 0 accounts, 0.00 yuan")
