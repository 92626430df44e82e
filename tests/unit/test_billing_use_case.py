"""Billing's use case (service.billing) on fakes, without a database: a day charged once,
a cycle boundary, a meter switch, anomalies as exceptions, an account not yet open on
its meter, and a meter-mode price change taking effect from its confirmation.

The SQL behind the port (batched reads, the upsert, concurrency) is in
tests/integration/test_billing.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.ledger import AccountCode
from gasbill.domain.meters import RegisterReading
from gasbill.service.billing import bill_accounts, bill_within
from tests.conftest import ROOT
from tests.factories import ZONE_NAME, at
from tests.fakes import FakeAccount, FakeBinding, FakeMeter, FakeStore, FakeUnitOfWork

CATALOG = TariffCatalog(ROOT / "tariffs", ZONE_NAME)
A, M1, M2 = 1, 11, 12
NOW = at(2026, 6, 1)


def world(*, mode: str = "system", tariff: str = "beijing-residential") -> FakeStore:
    store = FakeStore()
    store.accounts[A] = FakeAccount(A, billing_mode=mode, tariff_id=tariff)
    store.meters[M1] = FakeMeter(M1, comm_no="M1")
    store.meters[M2] = FakeMeter(M2, comm_no="M2")
    return store


def bind(store: FakeStore, meter: int, start: datetime, opening: int = 0) -> FakeBinding:
    binding = FakeBinding(A, meter, bound_at=start, opening_litres=opening)
    store.bindings.append(binding)
    return binding


def daily(store: FakeStore, comm_no: str, first: date, registers: list[int]) -> None:
    """A frozen reading at each local midnight from `first`, with these registers (litres)."""
    readings = store.readings.setdefault(("1001", comm_no), [])
    for offset, litres in enumerate(registers):
        day = first + timedelta(days=offset)
        readings.append(RegisterReading(at(day.year, day.month, day.day), litres, litres))


def bill(store: FakeStore, **kwargs: object):
    uow = FakeUnitOfWork(store)
    outcome = bill_accounts(uow, [A], catalog=CATALOG, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert uow.committed
    return outcome


def posted(store: FakeStore) -> dict[date, int]:
    return {d.day: d.posted_fen for d in store.charge_days.values() if d.posted_fen}


def prepaid(store: FakeStore) -> int:
    return store.ledger.balance(AccountCode.prepaid(str(A))).posted


def test_each_day_is_charged_once_however_often_billing_runs():
    store = world()
    bind(store, M1, at(2025, 1, 1))
    daily(store, "M1", date(2025, 1, 1), [0, 1000, 3000, 3500])  # 1, 2 and 0.5 m³

    first = bill(store)
    after_first = prepaid(store)
    again = bill(store)

    # 2.61 yuan/m³ (tier 1): 261, 522 and 130.5 -> 131 fen
    assert posted(store) == {date(2025, 1, 1): 261, date(2025, 1, 2): 522, date(2025, 1, 3): 131}
    assert (first.days_changed, first.charged_fen, len(first.transfers)) == (3, 914, 1)
    assert after_first == -914
    assert (again.days_changed, again.charged_fen, again.transfers) == (0, 0, [])
    assert prepaid(store) == after_first


def test_a_late_reading_moves_money_between_the_days_it_touches_only():
    store = world()
    bind(store, M1, at(2025, 1, 1))
    daily(store, "M1", date(2025, 1, 1), [0, 1000])
    daily(store, "M1", date(2025, 1, 4), [5000])  # 4 m³ over the 2nd and the 3rd
    bill(store)
    assert posted(store) == {date(2025, 1, 1): 261, date(2025, 1, 2): 522, date(2025, 1, 3): 522}

    daily(store, "M1", date(2025, 1, 3), [4000])  # the 3rd's reading, late: 3 m³ on the 2nd
    late = bill(store, since={A: at(2025, 1, 3)})

    assert posted(store) == {date(2025, 1, 1): 261, date(2025, 1, 2): 783, date(2025, 1, 3): 261}
    assert (late.charged_fen, late.credited_fen) == (261, 261)
    assert prepaid(store) == -1305


def test_a_new_cycle_starts_back_on_the_first_tier():
    store = world()
    bind(store, M1, at(2025, 1, 1))
    daily(store, "M1", date(2025, 1, 1), [0])
    # 400 m³ by the end of 2025: past the 350 m³ threshold, on the second tier (2.83)
    daily(store, "M1", date(2025, 12, 30), [400_000, 410_000, 420_000, 430_000])

    bill(store)

    days = {d.day: d for d in store.charge_days.values()}
    assert days[date(2025, 12, 31)].posted_fen == 2830  # 10 m³ at 2.83
    assert days[date(2026, 1, 1)].posted_fen == 2610  # 10 m³ at 2.61: the ladder starts again
    assert days[date(2025, 12, 31)].cycle_key != days[date(2026, 1, 1)].cycle_key


def test_a_meter_switch_charges_what_each_meter_measured_never_the_jump_between_them():
    store = world()
    old = bind(store, M1, at(2025, 1, 1))
    old.unbound_at, old.final_litres = at(2025, 1, 3), 2000
    bind(store, M2, at(2025, 1, 3), opening=5000)  # the new meter's register starts at 5 m³
    daily(store, "M1", date(2025, 1, 1), [0, 1000, 2000])
    daily(store, "M2", date(2025, 1, 3), [5000, 6000, 7000])

    outcome = bill(store)

    assert posted(store) == {date(2025, 1, d): 261 for d in (1, 2, 3, 4)}
    assert outcome.charged_fen == 4 * 261


def test_a_register_going_backwards_is_one_exception_for_a_clerk_however_often_billed():
    store = world()
    bind(store, M1, at(2025, 1, 1))
    daily(store, "M1", date(2025, 1, 1), [0, 2000, 1500, 3000])

    first = bill(store)
    bill(store, since={A: at(2025, 1, 1)})

    assert first.exceptions == 1
    [exception] = store.exceptions
    assert (exception.kind, exception.meter_comm_no, exception.account_id) == ("backwards", "M1", A)
    assert exception.reading_at == at(2025, 1, 3)


def test_an_account_not_yet_open_on_its_meter_is_not_charged():
    store = world(mode="meter")
    bind(store, M1, at(2025, 1, 1))
    daily(store, "M1", date(2025, 1, 1), [0, 1000, 2000])
    store.meter_openings[A] = None  # its openaccount not confirmed yet

    outcome = bill(store)

    assert (outcome.accounts, outcome.days_changed, store.charge_days) == (0, 0, {})
    assert not store.ledger.transfers


def test_an_account_without_a_meter_or_unknown_is_passed_over():
    store = world()  # no binding
    outcome = bill(store)
    assert (outcome.accounts, store.charge_days) == (0, {})

    uow = FakeUnitOfWork(store)
    assert bill_accounts(uow, [99], catalog=CATALOG, now=NOW).accounts == 0


def price_change_world(confirmed: datetime | None) -> FakeStore:
    """A meter-mode account on a tariff whose prices rise from 2025-07-01 (3.00 -> 3.20)."""
    store = world(mode="meter", tariff="price-change-example")
    bind(store, M1, at(2025, 6, 29))
    daily(store, "M1", date(2025, 6, 29), [i * 1000 for i in range(7)])  # 1 m³ a day
    if confirmed is not None:
        store.confirmations[A] = {"2025-07 increase": confirmed}
    return store


def test_meter_mode_the_new_price_counts_from_the_meters_confirmation_not_the_tariffs_date():
    store = price_change_world(confirmed=at(2025, 7, 3))

    bill(store)

    assert posted(store) == {
        date(2025, 6, 29): 300,
        date(2025, 6, 30): 300,
        date(2025, 7, 1): 300,  # in force on the tariff, not yet on the meter
        date(2025, 7, 2): 300,
        date(2025, 7, 3): 320,
        date(2025, 7, 4): 320,
    }
    # the shadow of the meter's deduction: charged to the meter's credit, not prepaid
    assert store.ledger.balance(AccountCode.meter_credit(str(A))).posted == -1840


def test_meter_mode_a_price_change_never_confirmed_leaves_the_old_price():
    store = price_change_world(confirmed=None)

    bill(store)

    assert set(posted(store).values()) == {300}


def test_system_mode_the_tariffs_own_date_counts():
    store = price_change_world(confirmed=None)
    store.accounts[A].billing_mode = "system"

    bill(store)

    assert posted(store)[date(2025, 6, 30)] == 300
    assert posted(store)[date(2025, 7, 1)] == 320


def test_a_decision_that_set_billing_off_leads_each_line_and_signs_it():
    store = world()
    bind(store, M1, at(2025, 1, 1))
    daily(store, "M1", date(2025, 1, 1), [0, 1000])

    uow = FakeUnitOfWork(store)
    with uow:
        outcome = bill_within(
            uow, [A], catalog=CATALOG, now=NOW, cause="conflict #7 accepted", actor="clerk-li"
        )
        uow.commit()

    [line] = outcome.transfers
    assert line.reason.startswith("conflict #7 accepted: ")
    assert line.actor == "clerk-li"
    assert store.ledger.transfers[0].actor == "clerk-li"


def test_nothing_is_kept_unless_the_callers_unit_of_work_commits():
    store = world()
    bind(store, M1, at(2025, 1, 1))
    daily(store, "M1", date(2025, 1, 1), [0, 1000])

    uow = FakeUnitOfWork(store)
    with uow:
        bill_within(uow, [A], catalog=CATALOG, now=NOW)  # the caller's transaction: no commit

    assert (store.charge_days, store.ledger.transfers, uow.committed) == ({}, (), False)
