"""The demo's world lives on while it serves: a payment taken then reaches its meter.

`LiveClock` moves the simulated clock at the wall clock's pace while nothing
waits for a meter, and hurries while a command does (meters take commands at
their daily wake-up), so a top-up paid at the counter is confirmed within a
few ticks, and no time jumps when there is nothing to wait for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.config import Settings
from gasbill.demo.live import LiveClock
from gasbill.demo.world import build_world
from gasbill.domain.accounts import BillingMode
from iotsim.settings import SimulatorSettings
from tests.conftest import ROOT

START = datetime(2025, 3, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def world(db_url):
    world = build_world(
        Settings(tariffs={"dir": ROOT / "tariffs"}),
        db_url=db_url,
        sim_settings=SimulatorSettings(seed=5, meters=1, start=START),
    )
    yield world
    world.close()


def _settle(world, live: LiveClock, ticks: int) -> int:
    for tick in range(1, ticks + 1):
        live.tick(timedelta(seconds=1))
        if not live.waiting_on_meters():
            return tick
    raise AssertionError(f"still waiting on meters after {ticks} ticks")


def test_a_payment_while_serving_reaches_its_meter_within_a_simulated_day(world):
    comm_no = world.sim.comm_nos()[0]
    opened = world.open_account(
        comm_no,
        number="L1",
        tariff_id="beijing-residential",
        mode=BillingMode.METER,
        initial_fen=10_000,
    )
    live = LiveClock(world)
    _settle(world, live, ticks=40)  # the opening and its baseline read
    before = world.now
    world.pay(opened.account.id, 5_000, key="live-pay")
    assert live.waiting_on_meters()

    _settle(world, live, ticks=40)

    assert world.now - before <= timedelta(days=2)  # hurried, but only while waiting
    with world.uow() as uow:
        assert CommandStore(uow.session).count_open() == 0
    assert world.sim.meter(comm_no).remote_charge_times == 2  # the opening and the payment


def test_with_nothing_waiting_the_clock_keeps_the_wall_clocks_pace(world):
    live = LiveClock(world)
    before = world.now
    live.tick(timedelta(seconds=3))
    assert world.now - before == timedelta(seconds=3)
