"""Billing into the ledger: exactly once per day, whatever order readings arrive in."""

import random
from datetime import date

import pytest

from gasbill.adapters.db.repositories.billing import BillingStore
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import AccountCode
from gasbill.domain.rating import FrozenReading, Rater, RatingContext
from gasbill.service.billing import bill_accounts, bill_within
from tests.integration.billing_helpers import (
    daily_series,
    make_account,
    midnight,
    store_readings,
)

METER = "12345678901234"
NOW = midnight(date(2026, 6, 1))


def bill(uow, catalog, *ids, since=None):
    return bill_accounts(uow, list(ids), catalog=catalog, since=since, now=NOW)


def posted_by_day(uow, account_id):
    with uow:
        return {
            (d.cycle_key, d.day): d.posted_fen
            for d in BillingStore(uow.session).charge_days(account_id)
            if d.posted_fen
        }


def prepaid_fen(uow, account_id):
    with uow:
        balances = uow.ledger.balances_of(account_id)
    return balances[AccountCode.prepaid(str(account_id))].posted


def expected(catalog, series, tariff="beijing-residential", whole_m3=False):
    rater = Rater(catalog.get(tariff))
    readings = [FrozenReading(at, litres, litres) for at, litres in series]
    return rater.rate(
        readings, RatingContext(persons=3, opened_on=date(2025, 1, 1), whole_m3=whole_m3)
    ).amounts_by_day()


USE = [random.Random(7).randint(500, 4000) for _ in range(60)]


def test_a_month_of_readings_is_charged_day_by_day_once(uow, catalog):
    account = make_account(uow, catalog)
    series = daily_series(date(2025, 1, 1), USE[:31])
    store_readings(uow, METER, series)
    first = bill(uow, catalog, account)
    assert first.days_changed == 31
    assert posted_by_day(uow, account) == {k: v for k, v in expected(catalog, series).items() if v}
    assert prepaid_fen(uow, account) == -first.charged_fen
    again = bill(uow, catalog, account)
    assert (again.charged_fen, again.credited_fen, again.transfers) == (0, 0, [])


def test_a_late_reading_moves_money_only_between_the_days_it_touches(uow, catalog):
    account = make_account(uow, catalog)
    series = daily_series(date(2025, 1, 1), USE[:20])
    store_readings(uow, METER, series[:8] + series[11:])  # Jan 9..11 missing
    bill(uow, catalog, account)
    before = prepaid_fen(uow, account)
    store_readings(uow, METER, series[8:11])
    late = bill(uow, catalog, account, since={account: series[8][0]})
    assert posted_by_day(uow, account) == {k: v for k, v in expected(catalog, series).items() if v}
    assert late.charged_fen - late.credited_fen == before - prepaid_fen(uow, account)
    assert late.days_changed <= 4


@pytest.mark.parametrize("seed", [1, 2])
def test_any_arrival_order_ends_with_each_day_charged_exactly_once(uow, catalog, seed):
    account = make_account(uow, catalog)
    series = daily_series(date(2025, 1, 1), USE[:25])
    arrival = series[1:]
    random.Random(seed).shuffle(arrival)
    store_readings(uow, METER, series[:1])
    total = 0
    for reading in arrival:
        store_readings(uow, METER, [reading])
        outcome = bill(uow, catalog, account, since={account: reading[0]})
        total += outcome.charged_fen - outcome.credited_fen
    target = {k: v for k, v in expected(catalog, series).items() if v}
    assert posted_by_day(uow, account) == target
    assert total == sum(target.values()) == -prepaid_fen(uow, account)


def test_meter_mode_posts_the_shadow_of_the_meters_deduction(uow, catalog):
    account = make_account(uow, catalog, mode=BillingMode.METER)
    series = daily_series(date(2025, 1, 1), USE[:10])
    store_readings(uow, METER, series)
    outcome = bill(uow, catalog, account)
    with uow:
        balances = uow.ledger.balances_of(account)
    assert balances[AccountCode.meter_credit(str(account))].posted == -outcome.charged_fen
    assert balances[AccountCode.prepaid(str(account))].posted == 0


def test_anomalous_readings_become_exceptions_once(uow, catalog):
    account = make_account(uow, catalog)
    series = daily_series(date(2025, 1, 1), [1000, 1000, 1000])
    series[2] = (series[2][0], 500)  # backwards
    store_readings(uow, METER, series)
    first = bill(uow, catalog, account)
    bill(uow, catalog, account, since={account: series[0][0]})
    assert first.exceptions == 1
    with uow:
        from sqlmodel import select

        from gasbill.adapters.db.tables.billing import BillingException

        rows = uow.session.exec(select(BillingException)).all()
    assert [(r.kind, r.meter_comm_no, r.status) for r in rows] == [("backwards", METER, "open")]


def test_many_accounts_are_billed_in_one_batch(uow, catalog):
    ids = [
        make_account(uow, catalog, number=f"A{i}", comm_no=f"1234567890{i:04d}") for i in range(5)
    ]
    for i in range(5):
        store_readings(uow, f"1234567890{i:04d}", daily_series(date(2025, 1, 1), USE[i : i + 5]))
    outcome = bill(uow, catalog, *ids)
    assert outcome.accounts == 5
    assert len(outcome.transfers) == 5


def test_billing_twice_in_one_transaction_writes_each_day_once(uow, catalog):
    # on PostgreSQL days go through a session-temporary table: the second billing must not
    # find the first one's days still there (they would be upserted twice, or again)
    account = make_account(uow, catalog)
    series = daily_series(date(2025, 1, 1), USE[:10])
    store_readings(uow, METER, series)
    with uow:
        first = bill_within(uow, [account], catalog=catalog, now=NOW)
        again = bill_within(uow, [account], catalog=catalog, since={account: series[0][0]}, now=NOW)
        uow.commit()
    assert first.days_changed == 10
    assert (again.charged_fen, again.credited_fen) == (0, 0)
    assert posted_by_day(uow, account) == {k: v for k, v in expected(catalog, series).items() if v}
    assert prepaid_fen(uow, account) == -first.charged_fen


def test_billing_resumes_from_the_latest_checkpoint_before_what_changed(uow, catalog):
    accounts = [
        make_account(uow, catalog, number=f"A{i}", comm_no=f"1234567890{i:04d}") for i in range(2)
    ]
    series = daily_series(date(2025, 1, 1), USE[:10])
    for i in range(2):
        store_readings(uow, f"1234567890{i:04d}", series[:6])
    bill(uow, catalog, *accounts)  # a checkpoint where each run ended: Jan 6, then Jan 11
    for i in range(2):
        store_readings(uow, f"1234567890{i:04d}", series[6:])
    bill(uow, catalog, *accounts)
    first, second = accounts
    with uow:
        found = BillingStore(uow.session).checkpoints({first: series[8][0], second: series[5][0]})
        latest = BillingStore(uow.session).checkpoints({first: None})
    assert found[first].state_at == series[5][0]
    assert second not in found  # strictly before: the Jan 6 checkpoint is not
    assert latest[first].state_at == series[-1][0]


def test_billing_continues_across_a_meter_replacement_without_gap_or_double_charge(uow, catalog):
    from datetime import timedelta

    from gasbill.domain.money import Volume
    from gasbill.service.accounts import Replacement, replace_meter

    account = make_account(uow, catalog)
    old = daily_series(date(2025, 1, 1), USE[:9])  # Jan 1 .. Jan 10 00:00
    store_readings(uow, METER, old)
    bill(uow, catalog, account)
    swap_at = old[-1][0] + timedelta(hours=12)
    final = old[-1][1] + 800
    replace_meter(
        uow,
        Replacement(account, swap_at, Volume.of_litres(final), "98765432109876", Volume("0.5")),
        actor="clerk",
        last_billed_litres=old[-1][1],
    )
    new = [(midnight(date(2025, 1, 11)), 1500), (midnight(date(2025, 1, 12)), 4000)]
    store_readings(uow, "98765432109876", new)
    bill(uow, catalog, account)

    rater = Rater(catalog.get("beijing-residential"))
    context = RatingContext(persons=3, opened_on=date(2025, 1, 1))
    first = rater.rate(
        [FrozenReading(at, v, v) for at, v in old] + [FrozenReading(swap_at, final, final)], context
    )
    rest = rater.rate(
        [FrozenReading(at, v, v) for at, v in new],
        context,
        first.state.rebased(FrozenReading(swap_at, 500, 500)),
    )
    target = first.amounts_by_day()
    for key, fen in rest.amounts_by_day().items():
        target[key] = target.get(key, 0) + fen
    assert posted_by_day(uow, account) == {k: v for k, v in target.items() if v}
    total_litres = final + (4000 - 500)
    assert sum(d for d in posted_by_day(uow, account).values()) == -prepaid_fen(uow, account)
    assert total_litres == sum(USE[:9]) + 800 + 3500
