"""The demo's world lives on while it serves: a payment taken then reaches its meter.

The demo's stage is the real thing: the app on a socket, `gasbill simulate` in
a process of its own, the clerk over HTTP. `LiveClock` moves both clocks at
the wall clock's pace while nothing waits for a meter, and hurries while a
command does (meters take commands at their daily wake-up; the product's
/metrics says what is in flight), so a top-up paid at the counter is
confirmed within a few ticks, and no time jumps when there is nothing to
wait for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gasbill.config import Settings
from gasbill.demo.live import LiveClock, commands_in_flight
from gasbill.demo.scenario import TARIFF, THRESHOLDS
from gasbill.demo.staff import payment_key
from gasbill.demo.stage import COMPANY_NO, Stage, free_port
from iotsim.faults import FaultSettings
from tests.conftest import ROOT

START = datetime(2025, 3, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def stage(db_url, tmp_path):
    stage = Stage.build(
        Settings(tariffs={"dir": ROOT / "tariffs"}),
        db_url=db_url,
        work_dir=tmp_path / "demo",
        host="127.0.0.1",
        port=free_port(),
        seed=5,
        meters=1,
        start=START,
        faults=FaultSettings(),
        tariff_id=TARIFF,
    )
    yield stage
    stage.close()


def _settle(live: LiveClock, ticks: int) -> int:
    for tick in range(1, ticks + 1):
        live.tick(timedelta(seconds=1))
        if not live.waiting_on_meters():
            return tick
    raise AssertionError(f"still waiting on meters after {ticks} ticks")


def test_a_payment_while_serving_reaches_its_meter_within_a_simulated_day(stage):
    comm_no, meter = next(iter(stage.simulator.meters().items()))
    account_id = stage.clerk.open_account(
        customer_id=stage.clerk.new_customer("L1"),
        number="L1",
        company_no=COMPANY_NO,
        mode="meter",
        tariff_id=TARIFF,
        opened_on=START.date(),
        bound_at=START,
        comm_no=comm_no,
        register=str(meter["std_sum"]),
        persons=3,
        initial_fen=10_000,
        thresholds=THRESHOLDS,
    )
    live = LiveClock(stage)
    try:
        _settle(live, ticks=40)  # the opening and its baseline read
        before = stage.now
        stage.clerk.pay(account_id, 5_000, key=payment_key())
        assert live.waiting_on_meters()

        _settle(live, ticks=40)

        assert stage.now - before <= timedelta(days=2)  # hurried, but only while waiting
        assert stage.simulator.meters()[comm_no]["remote_charge_times"] == 2  # opening + payment
    finally:
        live.stop()


def test_with_nothing_waiting_the_clock_keeps_the_wall_clocks_pace(stage):
    live = LiveClock(stage)
    try:
        before = stage.now
        live.tick(timedelta(seconds=3))
        assert stage.now - before == timedelta(seconds=3)
        assert stage.simulator.now() == stage.now
    finally:
        live.stop()


def test_commands_in_flight_sums_the_gauge_over_its_statuses():
    text = (
        "# HELP gasbill_commands_in_flight Commands …\n"
        "# TYPE gasbill_commands_in_flight gauge\n"
        'gasbill_commands_in_flight{status="queued"} 2\n'
        'gasbill_commands_in_flight{status="sent"} 1\n'
        "gasbill_commands_in_flight_total 9\n"
    )
    assert commands_in_flight(text) == 3
