"""A live gasbill for the browser: the app on a free port, a simulated fleet, jobs ticking.

The world is the in-process loop harness (`tests/loop_world.py`): our app, the in-process
platform simulator and its meters on one simulated clock, on a SQLite file.
A few households are opened and billed for some days before the server
starts; one meter is left free for the clerk to open in the browser. While
the server runs, a ticker thread moves the simulated clock on and runs the
scheduled jobs, so a payment's top-up reaches its meter as it would live.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import uvicorn

from gasbill.api.security import Argon2Passwords
from gasbill.config import DatabaseSettings, Settings
from gasbill.domain.accounts import BillingMode
from gasbill.service.accounts import create_customer
from gasbill.service.staff import add_user
from iotsim.settings import SimulatorSettings
from tests.loop_world import World, build_world

START = datetime.fromisoformat("2025-06-01T09:00:00+08:00")
TARIFF = "price-change-example"
PASSWORD = "browser-test-pw-1"
STEP = timedelta(hours=6)  # simulated time per tick: meters wake up about daily
TICK = 0.15  # seconds between ticks
DIFFERENCE = Decimal("12.34")  # yuan on a meter that the books do not have


@dataclass
class Live:
    world: World
    url: str
    free_meter: str
    differing_account: int
    new_customer: str
    server: uvicorn.Server
    stop: threading.Event = field(default_factory=threading.Event)
    # the simulated clock moves only while a test waits on the meters (sessions age with it)
    running: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        self.stop.set()
        self.server.should_exit = True
        for thread in self.threads:
            thread.join(timeout=10)
        self.world.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _populate(world: World) -> tuple[str, int]:
    comm_nos = world.sim.comm_nos()
    names = ["张伟", "王芳", "刘洋"]
    modes = [BillingMode.METER, BillingMode.METER, BillingMode.SYSTEM]
    accounts = []
    for i, (comm_no, name, mode) in enumerate(zip(comm_nos[:-1], names, modes, strict=False)):
        opened = world.open_account(
            comm_no,
            number=f"B{i + 1:04d}",
            tariff_id=TARIFF,
            mode=mode,
            initial_fen=10_000,
            name=name,
        )
        accounts.append(opened.account.id)
    # a difference for the auditor: 12.34 yuan loaded on the first meter by an IC card at the
    # meter (the simulator's public control), which the books know nothing of
    world.advance(START + timedelta(days=3))
    world.sim.card_top_up(comm_nos[0], DIFFERENCE)
    world.advance(START + timedelta(days=5))
    assert accounts[0] is not None
    return comm_nos[-1], accounts[0]


def start(tmp: Path) -> Live:
    url = f"sqlite:///{tmp / 'browser.db'}"
    settings = Settings().model_copy(update={"database": DatabaseSettings(url=url)})
    # sessions age on the simulated clock, which runs fast while the meters work
    # and a user is locked out after two failed logins (fewer slow password checks to test it)
    staff = settings.staff.model_copy(
        update={"token_ttl_minutes": 30 * 24 * 60, "login_max_failures": 2}
    )
    settings = settings.model_copy(update={"staff": staff})
    world = build_world(
        settings,
        db_url=url,
        sim_settings=SimulatorSettings(seed=3, meters=4, start=START, realtime_readings=True),
    )
    free, differing = _populate(world)
    customer = "李娜"
    create_customer(
        world.uow(),
        name=customer,
        phone="13800138000",
        address="北京市朝阳区幸福路 8 号",
        actor="seed",
    )
    passwords = Argon2Passwords()
    for role in ("clerk", "auditor", "admin"):
        add_user(
            world.uow(),
            username=role,
            password=PASSWORD,
            role=role,
            passwords=passwords,
            actor="seed",
        )
    add_user(
        world.uow(),
        username="locked",
        password=PASSWORD,
        role="clerk",
        passwords=passwords,
        actor="seed",
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning")
    )
    live = Live(world, f"http://127.0.0.1:{port}", free, differing, customer, server)
    serving = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    ticking = threading.Thread(target=_tick, args=(live,), daemon=True, name="ticker")
    live.threads += [serving, ticking]
    serving.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    ticking.start()
    return live


def _tick(live: Live) -> None:
    while not live.stop.wait(TICK):
        if not live.running.is_set():
            continue
        with live.lock:
            try:
                live.world.advance(live.world.now + STEP, step=STEP)
            except Exception:
                import logging

                logging.getLogger(__name__).exception("tick failed")
