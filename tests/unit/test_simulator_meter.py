"""One simulated meter: ladder deduction on its own cycle, valve, replay guard, readings."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gasbill.adapters.platform.push_models import AlarmIn, EventIn, MeterDataIn
from iotsim import vendor
from iotsim.faults import FaultSettings
from iotsim.firmware import (
    REASON_NOT_OPENED,
    REASON_SEQUENCE,
    REASON_TOTAL,
    Nak,
    execute,
)
from iotsim.fleet import Simulator
from iotsim.meter import AlarmCode, EventCode, Meter, MeterSpec
from iotsim.profile import SUMMER, WINTER
from iotsim.settings import SimulatorSettings
from iotsim.vendor import (
    CHARGE_FAILURE,
    CHARGE_SUCCESS,
    CumulantParam,
    Empty,
    LadderPrice,
    OpenAccountParam,
    OpenAccountReturn,
    RemainParam,
    RemoteChargeParam,
    RemoteChargeReturn,
    RemoteChargeState,
)

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 3, 10, 12, tzinfo=ZONE)
COMM = "88600000000042"


def ladder(
    prices=("3.000", "3.600", "4.500", "4.500", "4.500"),
    ladders=(10, 20, 30, 30),
    start=date(2025, 1, 1),
    months=12,
) -> LadderPrice:
    return LadderPrice(
        tuple(Decimal(p) for p in prices), tuple(Decimal(v) for v in ladders), start, months
    )


def make_meter(**changes) -> Meter:
    spec = MeterSpec(
        comm_no=COMM,
        scale_percent=100,
        wake_seconds=3 * 3600,
        factor_permille=1_020,
        start_litres=1_000_000,
        battery_mv=3_600,
        rssi=-80,
        low_balance_micro=20_000_000,
        magnetic_attack_ppm=0,
    )
    spec = MeterSpec(**{**spec.__dict__, **changes}) if changes else spec
    return Meter(spec, ZONE, random.Random(7), START)


def opened(balance: str = "100", the_ladder: LadderPrice | None = None) -> Meter:
    meter = make_meter()
    command = OpenAccountParam(Decimal(balance), Decimal(balance), the_ladder or ladder())
    assert execute(meter, vendor.OPEN_ACCOUNT, command, START) == OpenAccountReturn(
        0, 0, "", Decimal(balance)
    )
    meter.take_uplinks()
    return meter


def charge(meter: Meter, value: str, total: str, times: int) -> RemoteChargeReturn:
    result = execute(
        meter, vendor.REMOTE_CHARGE, RemoteChargeParam(Decimal(value), Decimal(total), times), START
    )
    assert isinstance(result, RemoteChargeReturn)
    return result


# -- the day's profile ------------------------------------------------------------------


@pytest.mark.parametrize("shape", [SUMMER, WINTER])
@pytest.mark.parametrize("step", [1, 7, 600, 3600, 86_400])
def test_a_day_adds_up_to_its_litres_whatever_the_step(shape, step):
    used, last = 0, 0
    for seconds in range(0, 86_400 + step, step):
        now = shape.used_by(12_345, min(seconds, 86_400), 86_400)
        assert now >= last
        used += now - last
        last = now
    assert used == 12_345


def test_more_gas_in_the_evening_than_at_night():
    assert SUMMER.litres_per_hour(2400, 19) > 5 * SUMMER.litres_per_hour(2400, 3)


# -- deduction ---------------------------------------------------------------------------


def test_deduction_follows_the_meters_ladder_across_a_threshold():
    meter = opened("1000")
    meter.cycle_litres = 9_500  # 9.5 m³ into the cycle: 0.5 m³ left in tier 1
    assert meter.draw(1_000, START, START + timedelta(hours=1)) == 1_000
    # 500 l at 3.000 + 500 l at 3.600 = 1.500 + 1.800
    assert meter.status().balance == Decimal("996.700")
    assert meter.status().cycle_used == Decimal("10.5")
    assert meter.current_price == 3_600


def test_above_the_last_threshold_costs_price5():
    meter = opened("1000", ladder(prices=("1", "2", "3", "4", "5.123")))
    meter.cycle_litres = 30_000
    meter.draw(1_000, START, START)
    assert meter.status().balance == Decimal("994.877")


def test_money_is_exact_to_the_millionth_and_reported_floored_to_0_001():
    meter = opened("10", ladder(prices=("2.613",) * 5))
    for _ in range(7):
        meter.draw(1, START, START)
    assert meter.status().balance == Decimal("9.981709")  # 10 - 7 × 0.002613
    assert meter.status().remain == Decimal("9.981")


def test_the_valve_closes_when_money_runs_out_and_opens_on_a_top_up():
    meter = opened("1.000", ladder(prices=("3.000",) * 5))
    delivered = meter.draw(1_000, START, START + timedelta(hours=1))
    assert delivered == 333  # 333 l × 0.003 = 0.999
    status = meter.status()
    assert (status.valve_open, status.exhausted, status.remain) == (False, True, Decimal("0.001"))
    uplinks = meter.take_uplinks()
    codes = [(u.kind, u.body.get("alarm_code", u.body.get("event_code"))) for u in uplinks]
    assert ("event", EventCode.VALVE_CLOSED) in codes
    closed = next(u for u in uplinks if u.body.get("event_code") == EventCode.VALVE_CLOSED)
    assert START < closed.at < START + timedelta(hours=1)  # when the money ran out
    assert meter.draw(500, START, START) == 0  # no gas through a closed valve

    assert charge(meter, "50", "51", 2).success == CHARGE_SUCCESS
    assert meter.status().valve_open
    assert [u.body.get("event_code") for u in meter.take_uplinks()] == [
        EventCode.TOP_UP,
        EventCode.VALVE_OPENED,
    ]


def test_low_balance_alarm_once_per_crossing():
    meter = opened("25", ladder(prices=("1.000",) * 5))
    meter.draw(4_000, START, START)  # 21 left
    assert meter.take_uplinks() == []
    meter.draw(2_000, START, START)  # 19 left: below 20
    meter.draw(2_000, START, START)
    alarms = [u for u in meter.take_uplinks() if u.kind == "alarm"]
    assert [a.body["alarm_code"] for a in alarms] == [AlarmCode.LOW_BALANCE]
    assert alarms[0].body["alarm_data"] == {"remain_money": Decimal("19.000")}
    charge(meter, "10", "35", 2)  # 27: re-armed
    meter.draw(8_000, START, START)
    assert [u.body.get("alarm_code") for u in meter.take_uplinks() if u.kind == "alarm"] == [1]


def test_a_meter_not_opened_meters_without_deducting():
    meter = make_meter()
    meter.balance_micro = 5_000_000
    assert meter.draw(10_000, START, START) == 10_000
    assert meter.status().balance == Decimal("5") and meter.status().valve_open


# -- commands -------------------------------------------------------------------------------


def test_openaccount_sets_ladder_credit_and_counts_the_first_top_up():
    meter = opened("100")
    status = meter.status()
    assert (status.opened, status.remain, status.ladder) == (True, Decimal("100.000"), ladder())
    assert (status.remote_charge_times, status.remote_total_value) == (1, Decimal("100"))
    again = execute(
        meter, vendor.OPEN_ACCOUNT, OpenAccountParam(Decimal(5), Decimal(5), ladder()), START
    )
    assert isinstance(again, OpenAccountReturn) and (again.success, again.reason) == (1, 1)
    assert meter.status().remain == Decimal("100.000")


def test_top_up_replay_guard():
    meter = opened("100")  # remote count 1, total 100
    assert charge(meter, "30", "130", 2) == RemoteChargeReturn(
        CHARGE_SUCCESS, 0, 0, Decimal("130.000")
    )
    repeated = charge(meter, "30", "130", 2)
    skipped = charge(meter, "30", "160", 4)
    wrong_total = charge(meter, "30", "170", 3)
    assert (repeated.success, repeated.reason) == (CHARGE_FAILURE, REASON_SEQUENCE)
    assert (skipped.success, skipped.reason) == (CHARGE_FAILURE, REASON_SEQUENCE)
    assert (wrong_total.success, wrong_total.reason) == (CHARGE_FAILURE, REASON_TOTAL)
    assert meter.status().remain == Decimal("130.000")
    state = execute(meter, vendor.GET_CHARGE_STATE, Empty(), START)
    assert state == RemoteChargeState(0, Decimal(0), Decimal(0), 2, Decimal(30), Decimal(130))


def test_top_up_refused_before_opening_and_by_fault():
    meter = make_meter()
    refused = charge(meter, "10", "10", 1)
    assert (refused.success, refused.reason) == (CHARGE_FAILURE, REASON_NOT_OPENED)
    meter = opened("10")
    by_fault = execute(
        meter,
        vendor.REMOTE_CHARGE,
        RemoteChargeParam(Decimal(5), Decimal(15), 2),
        START,
        refuse_charge=True,
    )
    assert isinstance(by_fault, RemoteChargeReturn) and by_fault.success == CHARGE_FAILURE
    assert meter.status().remote_charge_times == 1


def test_getprice_returns_the_pushed_ladder():
    meter = make_meter()
    empty = execute(meter, vendor.GET_PRICE, Empty(), START)
    assert isinstance(empty, LadderPrice) and empty.cycle_month == 0
    meter = opened()
    assert execute(meter, vendor.GET_PRICE, Empty(), START) == ladder()


def test_setprice_keeps_the_cycle_count_unless_the_cycle_changes():
    meter = opened()
    meter.cycle_litres = 12_000
    new_prices = ladder(prices=("2", "3", "4", "5", "6"))
    assert execute(meter, vendor.SET_PRICE, new_prices, START) == Empty()
    assert meter.status().cycle_used == Decimal(12) and meter.current_price == 3_000
    execute(meter, vendor.SET_PRICE, ladder(start=date(2025, 3, 1), months=1), START)
    status = meter.status()
    assert status.cycle_used == Decimal(0) and meter.last_cycle_litres == 12_000


def test_setremain_sets_the_balance_and_the_valve_follows():
    meter = opened("0.002", ladder(prices=("3",) * 5))
    assert meter.status().exhausted
    result = execute(meter, vendor.SET_REMAIN, RemainParam(Decimal("12.5")), START)
    assert result == RemainParam(Decimal("12.500"))
    assert meter.status().valve_open


def test_valve_commands():
    meter = opened("100")
    assert execute(meter, vendor.SET_VALVE_OFF, Empty(), START) == Empty()
    assert not meter.status().valve_open and meter.status().remote_valve_off
    charge(meter, "10", "110", 2)
    assert not meter.status().valve_open  # a remote close holds through a top-up
    assert execute(meter, vendor.SET_VALVE_ON, Empty(), START) == Empty()
    assert meter.status().valve_open

    dry = opened("0.001", ladder(prices=("3",) * 5))
    assert isinstance(execute(dry, vendor.SET_VALVE_ON, Empty(), START), Nak)
    execute(dry, vendor.SET_VALVE_OFF, Empty(), START)
    assert execute(dry, vendor.RELEASE_FORCE, Empty(), START) == Empty()
    assert not dry.status().remote_valve_off and not dry.status().valve_open  # still no money


def test_setcumulant_sets_the_registers():
    meter = opened()
    execute(meter, vendor.SET_CUMULANT, CumulantParam(Decimal("5.5"), Decimal("5.6")), START)
    meter.draw(1_000, START, START)
    status = meter.status()
    assert (status.std_sum, status.work_sum) == (Decimal("6.5"), Decimal("6.62"))


# -- the fleet: days, cycles, readings ---------------------------------------------------------


def small_sim(**changes) -> Simulator:
    settings = SimulatorSettings(meters=0, start=START, seed=5, **changes)
    return Simulator(settings)


def test_the_meters_own_cycle_restarts_its_count_at_the_cycle_start():
    sim = small_sim()
    monthly = ladder(start=date(2025, 2, 15), months=1)
    sim.add_meter(COMM, opened=True, balance=Decimal(1000), ladder=monthly, wake=time(0, 10))
    sim.advance(datetime(2025, 3, 14, 23, tzinfo=ZONE))
    before = sim.meter(COMM).cycle_used
    assert before > Decimal(0)
    sim.advance(datetime(2025, 3, 15, 0, 30, tzinfo=ZONE))
    assert sim.meter(COMM).cycle_used < before
    (frozen,) = (r.body for r in sim.data.readings if r.when == datetime(2025, 3, 15, tzinfo=ZONE))
    assert frozen["this_cycle_sum"] == Decimal("0.000")
    assert frozen["last_cycle_sum"] >= before


def test_daily_freeze_is_sent_at_the_wake_up_with_every_field():
    sim = small_sim(realtime_readings=True)
    sim.add_meter(COMM, opened=True, balance=Decimal(80), wake=time(6, 30))
    sim.advance(datetime(2025, 3, 11, 6, 0, tzinfo=ZONE))
    assert sim.data.readings == []  # frozen at midnight, not yet sent
    sim.advance(datetime(2025, 3, 11, 7, 0, tzinfo=ZONE))
    frozen, realtime = (r.body for r in sim.data.readings)
    assert frozen["acquisition_time"] == "2025-03-11T00:00:00"
    assert frozen["receive_time"] == "2025-03-11T06:30:00"
    assert (frozen["data_type"], realtime["data_type"]) == (1, 0)
    stored = MeterDataIn.model_validate(frozen)  # what our push endpoint takes
    assert all(getattr(stored, name) is not None for name in MeterDataIn.model_fields)
    ext = frozen["ext_data"]
    assert ext["valve_open"] is True and ext["open_state"] is True and ext["calc_type"] == 0
    assert ext["total_buy_value"] == Decimal("0.000")  # installed opened: nothing bought here
    assert frozen["remain_money"] < Decimal(80) and frozen["curr_price"] == Decimal("3.000")
    assert Decimal(3) < frozen["battery_voltage"] < Decimal("3.7") and frozen["rssi"] < 0


def test_alarms_and_events_go_out_as_they_happen():
    sim = small_sim(magnetic_attack_per_day=Decimal(1))
    sim.add_meter(COMM, opened=True, balance=Decimal("0.5"))
    sim.advance(START + timedelta(days=2))
    alarms = [AlarmIn.model_validate(r.body) for r in sim.data.alarms]
    events = [EventIn.model_validate(r.body) for r in sim.data.events]
    assert {a.alarm_code for a in alarms} == {AlarmCode.LOW_BALANCE, AlarmCode.MAGNETIC_ATTACK}
    assert [e.event_code for e in events] == [EventCode.VALVE_CLOSED]
    attacks = [a for a in alarms if a.alarm_code == AlarmCode.MAGNETIC_ATTACK]
    assert sim.meter(COMM).magatt_times == len(attacks) >= 2  # one a day


def test_the_world_is_the_same_for_the_same_seed():
    def run(seed: int) -> tuple:
        sim = Simulator(SimulatorSettings(meters=5, start=START, seed=seed))
        sim.advance(START + timedelta(days=9, hours=5))
        return tuple(sim.meter(c) for c in sim.comm_nos()), len(sim.data.readings)

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_fault_settings_from_text():
    settings = FaultSettings().with_text("lost_reply=0.25, applied_timeout=0.1,slow_reply_ms=20")
    assert settings.lost_reply == Decimal("0.25") and settings.ppm("applied_timeout") == 100_000
    assert settings.slow_reply_ms == 20
    with pytest.raises(ValueError, match="unknown fault"):
        FaultSettings().with_text("gremlins=1")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FaultSettings().with_text("lost_reply=2")
