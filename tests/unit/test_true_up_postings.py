"""What a price-change true-up posts (domain.true_up_postings, used by service.true_up):
which campaign owns a day, one line per campaign for the net of its days, and keys that
make a repeated run post nothing twice.

The whole use case over the database (billing first, the tariff in force re-rated) is in
tests/integration/test_true_up.py; the ratings' difference in tests/unit/test_true_up.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gasbill.domain.ledger import AccountCode, TransferKind
from gasbill.domain.true_up_postings import (
    attribution,
    by_campaign,
    push_begun,
    stamp,
    true_up_transfer,
)
from tests.factories import at

ZONE = "Asia/Shanghai"
NOW = datetime(2025, 8, 1, 2, tzinfo=UTC)
CYCLE = "2025-01-01"


def day(m: int, d: int) -> tuple[str, date]:
    return (CYCLE, date(2025, m, d))


def test_a_push_begins_at_the_earliest_of_the_change_the_campaign_and_the_confirmation():
    effective, created = at(2025, 7, 1), at(2025, 6, 28)
    assert push_begun(effective, created, None) == created
    assert push_begun(effective, created, at(2025, 6, 20)) == at(2025, 6, 20)


def test_a_day_belongs_to_the_newest_campaign_begun_by_its_end_and_none_before_the_first():
    owner = attribution([(at(2025, 7, 1, 12), 2), (at(2025, 3, 1), 1)], ZONE)

    assert owner(date(2025, 2, 28)) is None
    assert owner(date(2025, 3, 1)) == 1
    assert owner(date(2025, 6, 30)) == 1
    assert owner(date(2025, 7, 1)) == 2  # begun at noon: the whole day is the new change's
    assert owner(date(2025, 12, 31)) == 2


def test_the_end_of_a_day_is_local_midnight_not_utc():
    # 2025-07-01 23:30 in Shanghai is 15:30 UTC: still July 1st there
    owner = attribution([(datetime(2025, 7, 1, 15, 30, tzinfo=UTC), 5)], ZONE)
    assert owner(date(2025, 7, 1)) == 5
    assert owner(date(2025, 6, 30)) is None


def test_days_are_grouped_by_their_owner():
    owner = attribution([(at(2025, 7, 1), 2)], ZONE)
    grouped = by_campaign({day(6, 30): 3, day(7, 1): 40, day(7, 2): -1}, owner)
    assert grouped == {None: {day(6, 30): 3}, 2: {day(7, 1): 40, day(7, 2): -1}}


def test_more_owed_is_one_charge_from_prepaid_to_revenue_for_the_net():
    days = {day(7, 1): 40, day(7, 2): 35, day(7, 3): -1}
    line = true_up_transfer(7, 2, days, "s", effective=at(2025, 7, 3), now=NOW)

    assert line is not None
    assert (line.debit_account, line.credit_account) == (
        AccountCode.prepaid("7"),
        AccountCode.revenue("gas"),
    )
    assert (line.amount, line.kind, line.idempotency_key) == (74, TransferKind.TRUE_UP, "true-up:s")
    assert "campaign #2" in line.reason and "2025-07-01..2025-07-03" in line.reason


def test_less_owed_is_one_refund_from_revenue_to_prepaid():
    line = true_up_transfer(7, None, {day(7, 1): -30}, "s", effective=NOW, now=NOW)

    assert line is not None
    assert (line.debit_account, line.credit_account, line.amount) == (
        AccountCode.revenue("gas"),
        AccountCode.prepaid("7"),
        30,
    )
    assert line.idempotency_key == "true-up-refund:s" and "tariff change" in line.reason


def test_days_that_net_to_zero_post_nothing():
    assert (
        true_up_transfer(7, 2, {day(7, 1): 1, day(7, 2): -1}, "s", effective=NOW, now=NOW) is None
    )


def test_the_key_is_the_same_for_the_same_days_and_changes_with_what_was_posted_before():
    days = {day(7, 1): 40, day(7, 2): 35}
    first = stamp(7, 2, days, {})
    assert stamp(7, 2, dict(reversed(days.items())), {}) == first  # order does not matter
    assert stamp(7, 2, days, {day(7, 1): (40, 1)}) != first  # a revision is a new posting
    assert stamp(7, 3, days, {}) != first and stamp(8, 2, days, {}) != first
    assert first.startswith("7:2:2025-07-01..2025-07-02:")


@given(
    st.dictionaries(
        st.integers(0, 200).map(lambda n: (CYCLE, date(2025, 1, 1) + timedelta(days=n))),
        st.integers(-500, 500),
        min_size=1,
    )
)
def test_a_line_moves_exactly_the_net_of_its_days_in_the_right_direction(days):
    line = true_up_transfer(7, 1, days, "s", effective=NOW, now=NOW)
    net = sum(days.values())
    if net == 0:
        assert line is None
        return
    assert line is not None and line.amount == abs(net)
    assert (line.debit_account == AccountCode.prepaid("7")) == (net > 0)
