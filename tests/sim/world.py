"""One simulated world for one seed: the simulator, and gasbill as a process that can die.

The simulator (a foreign system) lives for the whole seed. gasbill lives in
a `Process`: its services, app and jobs, built by `gasbill.bootstrap` on the
seed's database. Everything reaches gasbill through a `Door` (the pusher's
HTTP, the clerk's staff API): while the process is down a door refuses
connections; a simulated crash inside a request is a dropped connection.
A crash kills the process; `restart` builds a new one on the same database
and runs start-up recovery (every job once), as `gasbill serve` would.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import sqlalchemy as sa
from pydantic import SecretStr

from gasbill import crashpoints
from gasbill.adapters.platform.settings import PlatformSettings
from gasbill.api.app import create_app
from gasbill.bootstrap import Services, bootstrap
from gasbill.config import Settings, StaffSettings
from gasbill.jobs.registry import JOBS, JobContext
from gasbill.jobs.tick import TickRunner
from gasbill.service.staff import add_user
from iotsim.fleet import Simulator
from iotsim.settings import SimulatorSettings
from iotsim.transport import AsgiTransport, SimulatorTransport
from tests.conftest import ROOT
from tests.e2e.staff_helpers import fast_passwords
from tests.loop_world import SIM_LOGIN, SIM_PASSWORD, demo_settings

STAFF = "sim"
ROLES = ("clerk", "auditor")  # a clerk takes money, an auditor reverses it
STAFF_PASSWORD = "a long enough password"
MAX_RECOVERY_CRASHES = 5
READ_ONLY_JOBS = frozenset({"reconcile"})  # writes nothing: reconciliation_nightly


class Crash(BaseException):
    """The process dies here. A BaseException, so no `except Exception` in gasbill eats it."""

    def __init__(self, site: str) -> None:
        super().__init__(f"simulated crash at {site}")
        self.site = site


def crash_in(exc: BaseException) -> Crash | None:
    """The simulated crash inside `exc` (an ASGI stack may wrap it in exception groups)."""
    if isinstance(exc, Crash):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = crash_in(inner)
            if found is not None:
                return found
    cause = exc.__cause__ or exc.__context__
    return crash_in(cause) if cause is not None and cause is not exc else None


@dataclass
class CrashPlan:
    """Crash at `site`, each time it is reached with probability `chance`, at most `limit` times."""

    site: str | None
    rng: random.Random
    chance: float = 0.5
    limit: int = 3
    crashes: int = 0
    reached: int = 0

    def hook(self, site: str) -> None:
        if site != self.site:
            return
        self.reached += 1
        if self.crashes < self.limit and self.rng.random() < self.chance:
            self.crashes += 1
            raise Crash(site)


class Process:
    """One life of gasbill: built by bootstrap on the database, dropped whole by a crash."""

    def __init__(self, settings: Settings, sim: Simulator) -> None:
        self.services: Services = bootstrap(
            settings, clock=sim.clock, platform_transport=SimulatorTransport(sim)
        )
        self.app = create_app(settings, services=self.services, passwords=fast_passwords())
        self.transport = AsgiTransport(self.app)
        self.runner = TickRunner(JobContext.of(self.services))
        # the jobs a clerk's "run now" reaches out of turn: those that write (the nightly
        # reconciliation only reads, so out of turn it could change nothing judged; it
        # still runs on its schedule and in every start-up recovery)
        self.out_of_turn = TickRunner(
            self.runner.context,
            jobs=tuple(job for job in JOBS if job.name not in READ_ONLY_JOBS),
            board=self.runner.board,
        )
        self.commits = 0  # every commit on the process's engine (the checks' change counter)
        sa.event.listen(self.services.engine, "commit", self._committed)

    def _committed(self, _connection: sa.Connection) -> None:
        self.commits += 1

    def close(self) -> None:
        self.services.close()


class Door(httpx.BaseTransport):
    """A way into the process; `lose()` says whether a reply is lost after the work is done."""

    def __init__(self, world: World, lose: Callable[[], bool]) -> None:
        self.world = world
        self.lose = lose

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        process = self.world.process
        if process is None:
            raise httpx.ConnectError("gasbill is down", request=request)
        try:
            response = process.transport.handle_request(request)
        except BaseException as exc:
            crash = crash_in(exc)
            if crash is None:
                raise
            self.world.died(crash)
            raise httpx.RemoteProtocolError("gasbill died mid-request", request=request) from None
        if self.lose():
            raise httpx.ReadError("the reply was lost", request=request)
        return response


@dataclass
class World:
    settings: Settings
    sim: Simulator
    plan: CrashPlan
    lost_push_reply: Callable[[], bool]
    lost_staff_reply: Callable[[], bool]
    process: Process | None = None
    restarts: int = 0
    step: timedelta = timedelta(hours=3)  # the jobs run after each step of simulated time
    crash_sites: list[str] = field(default_factory=list)
    staff: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        crashpoints.install(self.plan.hook)
        self.start()
        self.sim.connect(
            httpx.Client(transport=Door(self, self.lost_push_reply), base_url="http://gasbill/")
        )
        self.staff = httpx.Client(
            transport=Door(self, self.lost_staff_reply), base_url="http://gasbill/"
        )
        assert self.process is not None
        for role in ROLES:
            add_user(
                self.process.services.uow(),
                username=f"{STAFF}-{role}",
                password=STAFF_PASSWORD,
                role=role,
                passwords=fast_passwords(),
                actor="setup",
            )
        self.tokens: dict[str, str] = {}

    @property
    def now(self) -> datetime:
        return self.sim.now

    def start(self) -> None:
        self.process = Process(self.settings, self.sim)

    def died(self, crash: Crash) -> None:
        """The process crashed: everything it held in memory is gone."""
        self.crash_sites.append(crash.site)
        if self.process is not None:
            self.process.close()
        self.process = None

    def restart(self) -> None:
        """A new process on the same database; start-up recovery runs every job once."""
        for _ in range(MAX_RECOVERY_CRASHES):
            if self.process is None:
                self.restarts += 1
                self.start()
            try:
                self.jobs(all_jobs=True, recovering=True)
                return
            except Crash:
                continue  # `jobs` has counted it and dropped the process: start again
        raise AssertionError("start-up recovery kept crashing")

    def jobs(
        self, *, all_jobs: bool = False, recovering: bool = False, out_of_turn: bool = False
    ) -> None:
        """The scheduler's jobs at the simulated now; a crash in one kills the process.
        `out_of_turn`: every job that writes, now, as an operator's "run now" would."""
        if self.process is None:
            self.restart()
        assert self.process is not None
        try:
            if out_of_turn:
                self.process.out_of_turn.run_once(self.now)
            elif all_jobs:
                self.process.runner.run_once(self.now)
            else:
                self.process.runner.run_due(self.now)
        except BaseException as exc:
            crash = crash_in(exc)
            if crash is None:
                raise
            self.died(crash)
            if recovering:
                raise crash from None
            self.restart()

    def advance(self, until: datetime) -> None:
        """The world moves on; pushes go in as they fall due; the jobs run after each step."""
        while self.now < until:
            step = min(until, self.now + self.step)
            self.sim.advance(step)
            if self.process is None:
                self.restart()
            self.jobs()

    def ensure_up(self) -> None:
        if self.process is None:
            self.restart()

    def close(self) -> None:
        crashpoints.install(None)
        if self.process is not None:
            self.process.close()
        self.staff.close()


def world_settings(db_url: str, sim_settings: SimulatorSettings) -> Settings:
    base = Settings(
        tariffs={"dir": ROOT / "tariffs"}, staff=StaffSettings(token_ttl_minutes=43_200)
    )
    settings = demo_settings(base)
    # the nightly reconciliation only reads; every third day keeps a seed quick
    jobs = settings.jobs.model_copy(
        update={
            "reconcile": settings.jobs.reconcile.model_copy(update={"interval_seconds": 3 * 86_400})
        }
    )
    return settings.model_copy(
        update={
            "jobs": jobs,
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
