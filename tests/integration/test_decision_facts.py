"""What the decisions read for many accounts at once (`facts`) is what they read for one.

The many-account loader is set-based (one statement per kind of fact for a chunk of
accounts); the one-account reads (`recent_use`, `latest_remain`, `balances_of`) are
plain queries written apart. Both are run on the same books and compared."""

from __future__ import annotations

from datetime import date

from gasbill.domain.accounts import BillingMode
from gasbill.service.billing import bill_accounts
from gasbill.service.ledger import record_payment
from tests.integration.billing_helpers import daily_series, make_account, store_readings

WINDOW = 30


def _billed(uow, catalog, account: int, comm_no: str, first: date, litres: list[int]) -> None:
    series = daily_series(first, litres)
    store_readings(uow, comm_no, series)
    bill_accounts(uow, [account], catalog=catalog, now=series[-1][0])


def test_the_facts_of_many_accounts_are_each_accounts_own(uow, catalog):
    # 45 days across the new year (a new annual cycle, so a day may be charged in two),
    # 6 days, none; a meter-mode account beside them; a closed one is left out
    long = make_account(
        uow, catalog, number="A1", comm_no="00000000000001", opened=date(2024, 12, 1)
    )
    short = make_account(
        uow, catalog, number="A2", comm_no="00000000000002", opened=date(2024, 12, 1)
    )
    idle = make_account(
        uow, catalog, number="A3", comm_no="00000000000003", opened=date(2024, 12, 1)
    )
    meter = make_account(
        uow,
        catalog,
        number="A4",
        comm_no="00000000000004",
        opened=date(2024, 12, 1),
        mode=BillingMode.METER,
    )
    for account in (long, short, idle, meter):
        record_payment(
            uow,
            account_id=account,
            amount_fen=100_000,
            channel="counter",
            idempotency_key=f"p{account}",
            actor="clerk",
        )
    _billed(
        uow,
        catalog,
        long,
        "00000000000001",
        date(2024, 12, 1),
        [900 + 37 * (i % 7) for i in range(45)],
    )
    _billed(
        uow, catalog, short, "00000000000002", date(2024, 12, 20), [1500, 0, 2200, 800, 1000, 5000]
    )
    _billed(uow, catalog, meter, "00000000000004", date(2024, 12, 25), [1200] * 8)

    ids = [long, short, idle, meter, 999_999]
    with uow:
        facts = uow.decision_states.facts(ids, window_days=WINDOW)
        assert sorted(facts) == [long, short, idle, meter]
        for account in (long, short, idle, meter):
            one = facts[account]
            daily, price = uow.decision_states.recent_use(account, window_days=WINDOW)
            assert one.daily == daily, account
            assert one.price == price, account
            assert one.account.id == account and one.account.status == "active"
            assert one.balances == uow.ledger.balances_of(account)
            binding = uow.accounts.active_binding(account)
            assert binding is not None and one.meter is not None
            assert one.meter.id == binding.meter_id
        assert len(facts[long].daily) == WINDOW
        assert [v.litres for v in facts[short].daily[-6:]] == [1500, 0, 2200, 800, 1000, 5000]
        assert facts[long].price.milli > 0 and facts[idle].price.milli == 0
        uow.rollback()
