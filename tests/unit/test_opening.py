"""An account's opening on its meter (service.opening) without a database: the ladder the
`openaccount` carries (season, household bonus, opening proration rounded down to whole
m³), its first charge, and where the opening and its baseline read stand.

Opening with its payment in one transaction is in tests/integration/test_accounts.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.commands import GetChargeState, SetValveOff
from gasbill.domain.money import Volume
from gasbill.service.commands.queue import CommandPolicy, queue_command
from gasbill.service.opening import meter_opening, opening_progress
from tests.conftest import ROOT
from tests.fakes import FakeAccount, FakeMeter, FakeStore, FakeUnitOfWork

ZONE = "Asia/Shanghai"
CATALOG = TariffCatalog(ROOT / "tariffs", ZONE)
HEATING = CATALOG.get("heating-season-example")  # 600/1200 m³, +100 m³ per tier for 4 persons


def local(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def opening(persons: int, opened: date, charge_fen: int = 5_000):
    account = FakeAccount(7, persons=persons, opened_on=opened, tariff_id=HEATING.id)
    at = local(opened.year, opened.month, opened.day)
    version = HEATING.version_at(at)
    return meter_opening(account, version, HEATING.id, charge_fen, at, ZONE)


def m3(*values: int) -> tuple[Volume, ...]:
    return tuple(Volume.of_litres(v * 1000) for v in values)


def test_opened_on_the_cycles_first_day_the_meter_gets_the_whole_ladder_and_the_charge():
    intent = opening(1, date(2025, 1, 1))

    assert intent.ladders[:2] == m3(600, 1200)
    assert intent.charge.fen == intent.total.fen == 5_000
    assert intent.prices[0].value == Decimal("2.80")  # January: the heating season's prices
    assert (intent.cycle_start, intent.cycle_months) == (date(2025, 1, 1), 12)


def test_opened_in_october_the_thresholds_are_the_three_months_left_out_of_twelve():
    intent = opening(1, date(2025, 10, 15))

    assert intent.ladders[:2] == m3(150, 300)
    assert intent.prices[0].value == Decimal("2.50")  # October: outside the heating season


def test_the_household_bonus_widens_the_ladder_before_the_proration_rounded_down_to_whole_m3():
    assert opening(4, date(2025, 1, 1)).ladders[:2] == m3(700, 1400)
    # opened in February: 11/12 of 700 and 1,400 m³ is 641.67 and 1,283.33, down to whole m³
    assert opening(4, date(2025, 2, 10)).ladders[:2] == m3(641, 1283)


def test_an_opening_with_no_first_payment_charges_nothing():
    intent = opening(1, date(2025, 1, 1), charge_fen=0)
    assert intent.charge.fen == intent.total.fen == 0


def test_opening_progress_shows_the_opening_and_its_baseline_read_not_other_commands():
    store = FakeStore(accounts={7: FakeAccount(7, billing_mode="meter")}, meters={3: FakeMeter(3)})
    uow = FakeUnitOfWork(store)
    at = local(2025, 1, 1)
    with uow:
        for intent, reason, settles in (
            (opening(1, date(2025, 1, 1)), "open account A1", None),
            (GetChargeState(), "baseline after account opening #1", None),
            (GetChargeState(), "settle #9", 9),
            (SetValveOff(), "cut off", None),
        ):
            queue_command(
                uow,
                intent,
                meter=store.meters[3],
                now=at,
                policy=CommandPolicy(),
                account_id=7,
                reason=reason,
                settles_id=settles,
            )
        uow.commit()

    views = opening_progress(FakeUnitOfWork(store), 7)

    assert [(v["kind"], v["stage"]) for v in views] == [
        ("account opening", "queued"),
        ("top-up counter read", "queued"),
    ]
