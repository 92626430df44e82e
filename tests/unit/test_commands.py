"""Command intents and results (spec §5.4): values, flags, and ladder_price from a tariff."""

from dataclasses import replace
from datetime import date

import pytest

from gasbill.domain.commands import (
    CtrlState,
    CtrlType,
    GetChargeState,
    LadderPrice,
    OpenAccount,
    OpenAccountReturn,
    Outcome,
    RemoteCharge,
    RemoteChargeReturn,
    SetCumulant,
    SetPrice,
    SetRemain,
    SetValveOff,
    ladder_price_for,
)
from gasbill.domain.errors import InvalidAmount, TariffNotEncodable
from gasbill.domain.money import Money, Price, Volume
from gasbill.domain.tariff import HouseholdMode, HouseholdPolicy, Season
from tests.factories import version


def prices(*values: str) -> tuple[Price, ...]:
    return tuple(Price(v) for v in values)


def volumes(*values: str) -> tuple[Volume, ...]:
    return tuple(Volume(v) for v in values)


LADDER = LadderPrice(
    prices("2.61", "2.83", "4.23", "4.23", "4.23"),
    volumes("350", "500", "500", "500"),
    date(2019, 1, 1),
    12,
)


# -- types and flags -----------------------------------------------------------------


def test_ctrl_type_strings_and_prepay():
    assert SetPrice.ctrl_type == "iotmeterv1.prepay.setprice"
    assert GetChargeState.ctrl_type == "iotmeterv1.prepay.getchargestate"
    assert SetValveOff.ctrl_type == "iotmeterv1.common.setvalveoff"
    assert CtrlType.RELEASE_FORCE.value == "iotmeterv1.common.releaseforce"
    prepay = {t for t in CtrlType if t.is_prepay}
    assert len(prepay) == 6
    assert CtrlType.SET_CUMULANT not in prepay


def test_ctrl_state_final():
    assert [s.value for s in CtrlState if not s.is_final] == [0, 1, 2]
    assert {s.value for s in CtrlState if s.is_final} == {3, 4, 5, 6, 7, 99}


@pytest.mark.parametrize(
    ("flag", "outcome"), [(0xAA, Outcome.APPLIED), (0xBB, Outcome.REFUSED), (0, Outcome.UNKNOWN)]
)
def test_remote_charge_flag(flag, outcome):
    result = RemoteChargeReturn(success=flag, remain=Money("12.5"))
    assert result.outcome is outcome
    assert result.applied == (outcome is Outcome.APPLIED)
    assert result.refused == (outcome is Outcome.REFUSED)


@pytest.mark.parametrize(
    ("flag", "outcome"), [(0, Outcome.APPLIED), (1, Outcome.REFUSED), (0xAA, Outcome.UNKNOWN)]
)
def test_open_account_flag_is_not_the_0xaa_convention(flag, outcome):
    assert OpenAccountReturn(success=flag).outcome is outcome


# -- intents refuse what the wire cannot carry -----------------------------------------


def test_remote_charge_values():
    charge = RemoteCharge(Money("50"), Money("150.5"), 3)
    assert charge.times == 3
    with pytest.raises(InvalidAmount):
        RemoteCharge(Money("0"), Money("0"), 1)
    with pytest.raises(InvalidAmount):
        RemoteCharge(Money("50"), Money("40"), 1)
    with pytest.raises(InvalidAmount):
        RemoteCharge(Money("50"), Money("50"), 0)
    with pytest.raises(InvalidAmount):
        RemoteCharge(Money("50"), Money("50"), True)
    with pytest.raises(InvalidAmount):
        RemoteCharge(Money("0.0001"), Money("50"), 1)  # finer than decimal(18,3)
    with pytest.raises(InvalidAmount):
        RemoteCharge(Money("1"), Money("1000000000000000"), 1)  # 16 digits


def test_set_remain_and_cumulant_limits():
    assert SetRemain(Money("-3.5")).value == Money("-3.5")
    assert SetCumulant(Volume("123456789012345.678"), Volume("0")).std_sum.litres
    with pytest.raises(InvalidAmount):
        SetRemain(Money("1.2345"))


def test_ladder_price_shape():
    with pytest.raises(InvalidAmount):
        LadderPrice(prices("1", "2"), volumes("10"), date(2019, 1, 1), 12)
    with pytest.raises(InvalidAmount):
        LadderPrice(prices("-1", "2", "2", "2", "2"), LADDER.ladders, date(2019, 1, 1), 12)
    assert LADDER.is_whole()
    assert not replace(LADDER, ladders=volumes("350.5", "500", "500", "500")).is_whole()


def test_set_price_refuses_descending_ladders_and_no_cycle():
    with pytest.raises(TariffNotEncodable):
        SetPrice(replace(LADDER, ladders=volumes("500", "350", "500", "500")))
    with pytest.raises(InvalidAmount):
        SetPrice(replace(LADDER, cycle_months=0))
    assert SetPrice(replace(LADDER, ladders=volumes("350.5", "500", "500", "500")))


def test_open_account_whole_ladders_only():
    opened = OpenAccount.of(Money("100"), Money("100"), LADDER)
    assert opened.ladder == LADDER
    with pytest.raises(TariffNotEncodable, match="whole"):
        OpenAccount.of(
            Money("100"),
            Money("100"),
            replace(LADDER, ladders=volumes("350.5", "500", "500", "500")),
        )
    with pytest.raises(InvalidAmount):
        OpenAccount.of(Money("100"), Money("50"), LADDER)
    assert OpenAccount.of(Money("0"), Money("0"), LADDER).charge == Money("0")


# -- ladder_price_for -----------------------------------------------------------------


def test_unused_tiers_repeat_the_last_price_and_threshold():
    ladder = ladder_price_for(version(), None, month=6)
    assert ladder == LADDER
    assert ladder.cycle_start == date(2019, 1, 1)
    assert ladder.cycle_months == 12


def test_single_price_tariff():
    ladder = ladder_price_for(version(prices=("3.1",), thresholds=()), None, month=1)
    assert ladder.prices == prices(*["3.1"] * 5)
    assert ladder.ladders == volumes("0", "0", "0", "0")


def test_five_prices_fill_every_slot():
    v = version(prices=("1", "2", "3", "4", "5"), thresholds=("10", "20", "30", "40"))
    ladder = ladder_price_for(v, None, month=1)
    assert ladder.prices == prices("1", "2", "3", "4", "5")
    assert ladder.ladders == volumes("10", "20", "30", "40")


def test_more_than_five_prices_refused():
    v = version(prices=("1", "2", "3", "4", "5", "6"), thresholds=("10", "20", "30", "40", "50"))
    with pytest.raises(TariffNotEncodable, match="at most 5"):
        ladder_price_for(v, None, month=1)


def test_non_whole_thresholds_refused():
    with pytest.raises(TariffNotEncodable, match="whole"):
        ladder_price_for(version(thresholds=("350.5", "500")), None, month=1)


def test_season_prices_by_month():
    winter = Season("heating", frozenset({11, 12, 1, 2, 3}), prices("3", "3.5", "5"))
    v = replace(version(), seasons=(winter,))
    assert ladder_price_for(v, None, month=12).prices == prices("3", "3.5", "5", "5", "5")
    assert ladder_price_for(v, None, month=7).prices[0] == Price("2.61")


def test_household_bonus_rounded_down():
    shift = HouseholdPolicy(HouseholdMode.SHIFT, ((5, Volume("12.5")),))
    ladder = ladder_price_for(version(household=shift), 5, month=1)
    assert ladder.ladders == volumes("362", "512", "512", "512")
    widen = HouseholdPolicy(HouseholdMode.WIDEN, ((5, Volume("0.6")),))
    ladder = ladder_price_for(version(household=widen), 6, month=1)
    assert ladder.ladders == volumes("350", "501", "501", "501")  # 350.6, 501.2
    assert ladder_price_for(version(household=shift), 2, month=1).ladders[0] == Volume("350")


def test_proration_share_rounded_down_like_rating():
    # 7 of 12 months left: 350·7/12 = 204.166…, 500·7/12 = 291.666…
    ladder = ladder_price_for(version(), None, month=6, share=(7, 12))
    assert ladder.ladders == volumes("204", "291", "291", "291")
    with pytest.raises(InvalidAmount):
        ladder_price_for(version(), None, month=6, share=(13, 12))


def test_cycle_start_override():
    ladder = ladder_price_for(version(), None, month=6, cycle_start=date(2025, 1, 1))
    assert ladder.cycle_start == date(2025, 1, 1)
