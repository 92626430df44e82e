"""The whole loop in one process: our server, the simulated platform and its meters.

The simulator pushes readings, alarms, events and command reports to our app
(in-process, over ASGI); our jobs send commands to the simulator's
remote-control API (in-process too); one simulated clock drives both, so
sixty days run in seconds. A test harness for end-to-end tests that need the
services' internals (it lives with the tests: no door of the product uses it);
`gasbill demo` itself goes through the doors (`gasbill.demo.stage`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.platform.settings import PlatformSettings
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.api.app import create_app
from gasbill.bootstrap import Services, bootstrap
from gasbill.config import Settings
from gasbill.domain.accounts import BillingMode
from gasbill.domain.money import Volume
from gasbill.jobs.registry import JobContext
from gasbill.jobs.tick import TickRunner
from gasbill.service.accounts import NewAccount, create_customer
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.opening import Opened, open_with_payment
from gasbill.service.payments import PaymentOutcome, take_payment
from gasbill.service.ports import CommandPlatform
from iotsim.fleet import Simulator
from iotsim.settings import SimulatorSettings
from iotsim.transport import AsgiTransport, SimulatorTransport

SIM_LOGIN = "admin"
SIM_PASSWORD = "123456"


@dataclass
class World:
    settings: Settings
    sim: Simulator
    engine: Engine
    app: FastAPI
    platform: CommandPlatform
    catalog: TariffCatalog
    codec: Codec
    policy: CommandPolicy
    jobs: list[tuple[str, Callable[[datetime], object]]] = field(default_factory=list)
    services: Services | None = None

    @property
    def now(self) -> datetime:
        return self.sim.now

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    # -- what a clerk does ------------------------------------------------------------
    def open_account(
        self,
        comm_no: str,
        *,
        number: str,
        tariff_id: str,
        mode: BillingMode,
        initial_fen: int,
        persons: int = 3,
        name: str = "",
        cutoff_fen: int = 0,
        reopen_fen: int = 0,
        warning_fen: int = 2000,
    ) -> Opened:
        meter = self.sim.meter(comm_no)
        customer = create_customer(self.uow(), name=name or f"household {number}", actor="clerk")
        assert customer.id is not None
        zone = ZoneInfo(self.settings.app.timezone)
        opened_on: date = self.now.astimezone(zone).date()
        return open_with_payment(
            self.uow(),
            NewAccount(
                customer_id=customer.id,
                number=number,
                company_no=self.sim.settings.company_no,
                billing_mode=mode,
                tariff_id=tariff_id,
                opened_on=opened_on,
                meter_comm_no=comm_no,
                opening_register=Volume(meter.std_sum),
                bound_at=self.now,
                persons=persons,
                warning_fen=warning_fen,
                cutoff_fen=cutoff_fen,
                reopen_fen=reopen_fen,
            ),
            initial_fen=initial_fen,
            channel="counter",
            idempotency_key=f"open-{number}",
            actor="clerk",
            now=self.now,
            catalog=self.catalog,
            policy=self.policy,
        )

    def pay(self, account_id: int, fen: int, key: str) -> PaymentOutcome:
        return take_payment(
            self.uow(),
            account_id=account_id,
            amount_fen=fen,
            channel="counter",
            idempotency_key=key,
            actor="clerk",
            now=self.now,
            policy=self.policy,
        )

    # -- time ---------------------------------------------------------------------------
    def run_jobs(self) -> None:
        now = self.now
        for _, job in self.jobs:
            job(now)

    def advance(
        self,
        until: datetime,
        *,
        step: timedelta = timedelta(hours=2),
        on_step: Callable[[datetime], None] | None = None,
    ) -> None:
        while self.now < until:
            self.sim.advance(min(self.now + step, until))
            self.run_jobs()
            if on_step is not None:
                on_step(self.now)

    def close(self) -> None:
        if self.services is not None:
            self.services.close()


def tick_jobs(world: World) -> list[tuple[str, Callable[[datetime], object]]]:
    """Every scheduled job, run once per step in the scheduler's order, on the simulated clock."""
    assert world.services is not None
    runner = TickRunner(JobContext.of(world.services))
    return [("tick", lambda now: runner.run_due(now))]


# In accelerated time the periodic sweep need not run every simulated hour: every balance
# change already runs the decisions; the sweep catches grace periods and quiet hours.
DEMO_JOBS = {"decisions": 24 * 3600, "poll_silent": 6 * 3600, "campaigns": 6 * 3600}


def demo_settings(settings: Settings) -> Settings:
    jobs = settings.jobs.model_copy(
        update={
            name: getattr(settings.jobs, name).model_copy(update={"interval_seconds": seconds})
            for name, seconds in DEMO_JOBS.items()
        }
    )
    return settings.model_copy(update={"jobs": jobs})


def build_world(
    settings: Settings,
    *,
    db_url: str,
    sim_settings: SimulatorSettings,
    catalog: TariffCatalog | None = None,
    policy: CommandPolicy | None = None,
) -> World:
    settings = demo_settings(settings).model_copy(
        update={
            "database": settings.database.model_copy(update={"url": db_url}),
            "platform": PlatformSettings(
                base_url="http://platform/",
                company_no=sim_settings.company_no,
                login_name=SIM_LOGIN,
                password=SecretStr(SIM_PASSWORD),
                read_timeout_seconds=Decimal(30),
            ),
        }
    )
    upgrade(db_url)
    sim = Simulator(sim_settings)
    services = bootstrap(
        settings,
        catalog=catalog,
        clock=sim.clock,
        command_policy=policy,
        platform_transport=SimulatorTransport(sim),
    )
    app = create_app(settings, services=services)
    sim.connect(httpx.Client(transport=AsgiTransport(app), base_url="http://gasbill/"))
    world = World(
        settings,
        sim,
        services.engine,
        app,
        services.platform(),
        services.catalog,
        services.codec,
        services.command_policy,
        services=services,
    )
    world.jobs = tick_jobs(world)
    return world
