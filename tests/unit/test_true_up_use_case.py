"""The price-change true-up's use case (service.true_up, service.true_up_check) on fakes,
without a database: what a meter that took a price change late (or early) owes, posted
once and credited to the change's campaign; an account with nothing new skipped or
re-rated from its mark; accounts the true-up leaves alone; and the auditor's check.

The tariff is `price-change-example`: 3.00 yuan/m³ on the first tier until 2025-07-01
(local midnight), 3.20 from then. The account uses 1 m³ a day from 2025-06-29, far below
the first threshold (300 m³), so a day costs 300 or 320 fen, with no rounding. Every
amount below is worked out by hand from those prices.

The SQL behind the ports is in tests/integration/test_true_up.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.ledger import AccountCode, TransferKind
from gasbill.domain.meters import RegisterReading
from gasbill.service.billing import bill_accounts
from gasbill.service.true_up import post_true_ups, run_true_ups
from gasbill.service.true_up_check import InForce, check_in_force, in_force_report
from tests.conftest import ROOT
from tests.factories import ZONE_NAME, at
from tests.fakes import (
    FakeAccount,
    FakeBinding,
    FakeCampaign,
    FakeMeter,
    FakeStore,
    FakeUnitOfWork,
)

CATALOG = TariffCatalog(ROOT / "tariffs", ZONE_NAME)
TARIFF, RISE = "price-change-example", "2025-07 increase"
A, M1, CAMPAIGN = 1, 11, 7
METER = ("1001", "M1")
CYCLE = "2025-01-01"  # the tariff's annual cycle
NOW = at(2025, 7, 10)

# 1 m³ a day, 2025-06-29 .. 07-04, with the increase confirmed on the meter on 07-03
# (00:00): the meter deducts 300, 300, 300, 300, 320, 320 (1840 fen); the tariff in force
# is 300, 300, 320, 320, 320, 320 (1880 fen): 07-01 and 07-02 owe 20 fen each.
SHADOW_FEN = 4 * 300 + 2 * 320
IN_FORCE_FEN = 2 * 300 + 4 * 320
OWED_FEN = 2 * (320 - 300)


def world(*, confirmed: datetime | None = at(2025, 7, 3), mode: str = "meter") -> FakeStore:
    """One account on the tariff, its meter read at each local midnight 06-29 .. 07-05, and
    the increase's campaign (created 06-20, ahead of the change)."""
    store = FakeStore()
    store.accounts[A] = FakeAccount(A, billing_mode=mode, tariff_id=TARIFF)
    store.meters[M1] = FakeMeter(M1, comm_no="M1")
    store.bindings.append(FakeBinding(A, M1, bound_at=at(2025, 6, 29)))
    read(store, date(2025, 6, 29), [i * 1000 for i in range(7)])
    store.campaigns.append(
        FakeCampaign(CAMPAIGN, TARIFF, RISE, at(2025, 7, 1), created_at=at(2025, 6, 20))
    )
    if confirmed is not None:
        store.confirmations[A] = {RISE: confirmed}
    return store


def read(store: FakeStore, first: date, registers: list[int]) -> None:
    """A frozen reading at each local midnight from `first`, with these registers (litres)."""
    readings = store.readings.setdefault(METER, [])
    for offset, litres in enumerate(registers):
        day = first + timedelta(days=offset)
        readings.append(RegisterReading(at(day.year, day.month, day.day), litres, litres))


def bill(store: FakeStore, now: datetime = NOW) -> None:
    uow = FakeUnitOfWork(store)
    bill_accounts(uow, [A], catalog=CATALOG, now=now)
    assert uow.committed


def true_up(store: FakeStore, now: datetime = NOW, **kwargs: object):
    uow = FakeUnitOfWork(store)
    outcome = post_true_ups(uow, [A], catalog=CATALOG, now=now, **kwargs)  # type: ignore[arg-type]
    assert uow.committed
    return outcome


def posted(store: FakeStore, code: AccountCode) -> int:
    return store.ledger.balance(code).posted


def trued_days(store: FakeStore) -> dict[date, tuple[int, int | None, int]]:
    """The true-up's day rows: day → (fen posted, campaign, revision)."""
    return {
        day: (row["posted_fen"], row["campaign_id"], row["revision"])
        for (account_id, cycle_key, day), row in store.true_up_days.items()
        if account_id == A and cycle_key == CYCLE
    }


def test_a_change_the_meter_took_late_is_charged_to_prepaid_once_for_its_campaign():
    store = world()
    bill(store)
    assert posted(store, AccountCode.meter_credit(str(A))) == -SHADOW_FEN  # 1840

    outcome = true_up(store)

    assert (outcome.accounts, outcome.skipped, outcome.resumed) == (1, 0, 0)
    assert (outcome.charged_fen, outcome.refunded_fen, outcome.days_changed) == (40, 0, 2)
    [line] = outcome.transfers
    assert (line.kind, line.amount) == (TransferKind.TRUE_UP, 40)
    assert line.debit_account == AccountCode.prepaid(str(A))
    assert line.credit_account == AccountCode.revenue("gas")
    assert line.reason == f"price-change true-up (campaign #{CAMPAIGN}) 2025-07-01..2025-07-02"
    assert line.effective_at == at(2025, 7, 5)  # the last reading rated
    assert line.idempotency_key.startswith("true-up:")
    assert trued_days(store) == {
        date(2025, 7, 1): (20, CAMPAIGN, 1),
        date(2025, 7, 2): (20, CAMPAIGN, 1),
    }
    # prepaid pays the difference; what the meter holds (meter_credit) is never touched
    assert posted(store, AccountCode.prepaid(str(A))) == -OWED_FEN
    assert posted(store, AccountCode.meter_credit(str(A))) == -SHADOW_FEN


def test_the_true_up_bills_first_what_billing_has_not_yet():
    store = world()  # never billed

    outcome = true_up(store)

    assert outcome.charged_fen == OWED_FEN
    assert posted(store, AccountCode.meter_credit(str(A))) == -SHADOW_FEN


def test_running_it_again_posts_nothing_more_and_skips_the_account():
    store = world()
    bill(store)
    true_up(store)

    again = true_up(store)

    assert (again.accounts, again.skipped, again.transfers) == (0, 1, [])
    assert (again.charged_fen, again.refunded_fen, again.days_changed) == (0, 0, 0)
    assert posted(store, AccountCode.prepaid(str(A))) == -OWED_FEN
    assert [t.amount for t in store.ledger.transfers if t.kind == TransferKind.TRUE_UP] == [40]


def test_a_reading_waiting_for_billing_means_a_whole_re_rating_that_still_posts_nothing_more():
    store = world()
    bill(store)
    true_up(store)
    store.inbox.add(METER)  # a frozen reading not billed yet: it may lie before the mark

    again = true_up(store)

    assert (again.accounts, again.skipped, again.resumed, again.transfers) == (1, 0, 0, [])
    assert trued_days(store)[date(2025, 7, 1)] == (20, CAMPAIGN, 1)  # not revised


def test_a_later_day_at_the_price_the_meter_holds_is_re_rated_from_the_mark_and_owes_nothing():
    store = world()
    bill(store)
    true_up(store)
    read(store, date(2025, 7, 6), [7000])  # 1 m³ on 07-05, at 3.20 on both sides

    later = true_up(store, now=at(2025, 7, 11))

    assert (later.accounts, later.skipped, later.resumed, later.transfers) == (1, 0, 1, [])
    assert posted(store, AccountCode.meter_credit(str(A))) == -(SHADOW_FEN + 320)
    assert posted(store, AccountCode.prepaid(str(A))) == -OWED_FEN


def test_a_change_the_meter_took_early_is_refunded_from_revenue_to_prepaid():
    # pushed ahead: the meter deducted 320 on 06-30, a day before the tariff's change
    store = world(confirmed=at(2025, 6, 30))
    bill(store)
    assert posted(store, AccountCode.meter_credit(str(A))) == -(300 + 5 * 320)

    outcome = true_up(store)

    assert (outcome.charged_fen, outcome.refunded_fen, outcome.days_changed) == (0, 20, 1)
    [line] = outcome.transfers
    assert (line.amount, line.debit_account) == (20, AccountCode.revenue("gas"))
    assert line.credit_account == AccountCode.prepaid(str(A))
    assert (
        line.reason == f"price-change true-up refund (campaign #{CAMPAIGN}) 2025-06-30..2025-06-30"
    )
    assert trued_days(store) == {date(2025, 6, 30): (-20, CAMPAIGN, 1)}
    assert posted(store, AccountCode.prepaid(str(A))) == 20


def test_a_change_never_confirmed_owes_the_whole_difference_since_the_tariffs_date():
    store = world(confirmed=None)  # the meter still deducts 3.00
    bill(store)

    outcome = true_up(store)

    # 07-01 .. 07-04 at 3.20 instead of 3.00
    assert (outcome.charged_fen, outcome.days_changed) == (4 * 20, 4)
    assert set(trued_days(store)) == {date(2025, 7, d) for d in (1, 2, 3, 4)}


def test_a_system_mode_account_is_left_to_billing_which_charges_the_tariff_in_force():
    store = world(mode="system")
    bill(store)
    assert posted(store, AccountCode.prepaid(str(A))) == -IN_FORCE_FEN  # 1880: nothing owed

    outcome = true_up(store)

    assert (outcome.accounts, outcome.skipped, outcome.transfers) == (0, 0, [])
    assert store.true_up_days == {} and store.true_up_marks == {}
    assert posted(store, AccountCode.prepaid(str(A))) == -IN_FORCE_FEN


def test_an_account_not_yet_open_on_its_meter_owes_nothing():
    store = world()
    store.meter_openings[A] = None  # its openaccount not confirmed: the meter deducts nothing

    outcome = true_up(store)

    assert (outcome.accounts, outcome.transfers) == (0, [])
    assert not store.ledger.transfers


def test_a_divergence_whose_cycle_ended_long_ago_is_settled():
    store = world()
    bill(store)
    # the 2025 cycle ended 2026-01-01, more than 31 days before
    late = at(2026, 3, 1)

    assert true_up(store, now=late).transfers == []
    assert true_up(store, now=late, settled_after=timedelta(days=90)).charged_fen == OWED_FEN


def test_the_run_trues_up_every_meter_mode_account_in_batches_and_records_a_persons_run():
    store = world()
    store.accounts[2] = FakeAccount(2, number="A2", billing_mode="system", tariff_id=TARIFF)
    bill(store)

    total = run_true_ups(
        lambda: FakeUnitOfWork(store), catalog=CATALOG, now=NOW, batch=1, actor="clerk"
    )

    assert (total.accounts, total.charged_fen, len(total.transfers)) == (1, OWED_FEN, 1)
    [entry] = store.audit
    assert (entry.actor, entry.action, entry.at) == ("clerk", "true_up.run", NOW)
    assert entry.after == {
        "accounts": 1,
        "charged_fen": 40,
        "refunded_fen": 0,
        "days_changed": 2,
        "transfers": [total.transfers[0].id],
    }


def test_the_check_finds_the_books_short_before_the_true_up_and_exact_after():
    store = world()
    bill(store)

    [before] = check_in_force(FakeUnitOfWork(store), [A], catalog=CATALOG, now=NOW)
    true_up(store)
    [after] = check_in_force(FakeUnitOfWork(store), [A], catalog=CATALOG, now=NOW)

    assert before == InForce(A, charged_fen=1840, trued_up_fen=0, in_force_fen=1880)
    assert not before.agrees
    assert after == InForce(A, charged_fen=1840, trued_up_fen=40, in_force_fen=1880)
    assert after.agrees


def test_the_auditors_report_counts_what_differs_and_leaves_other_accounts_out():
    store = world()
    store.accounts[2] = FakeAccount(2, number="A2", billing_mode="system", tariff_id=TARIFF)
    bill(store)

    report = in_force_report(lambda: FakeUnitOfWork(store), None, catalog=CATALOG, now=NOW)

    assert report["totals"] == {
        "accounts": 1,  # the system-mode account is billed at the tariff in force already
        "agreeing": 0,
        "differing": 1,
        "trued_up_accounts": 0,
        "trued_up_fen": 0,
    }
    assert report["accounts"] == [
        {
            "account_id": A,
            "agrees": False,
            "charged_fen": 1840,
            "trued_up_fen": 0,
            "in_force_fen": 1880,
        }
    ]


def test_the_check_passes_over_an_account_not_yet_open_on_its_meter():
    store = world()
    store.meter_openings[A] = None
    assert check_in_force(FakeUnitOfWork(store), [A], catalog=CATALOG, now=NOW) == []
