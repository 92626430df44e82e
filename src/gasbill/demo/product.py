"""The demo's product: the real app (`gasbill serve`'s) on a real socket, on simulated time.

The app is built by the one composition root with one change: its clock is
the demo's, which the demo moves together with the simulator's. Its jobs run
on that clock too (`TickRunner`, the scheduler's jobs in the scheduler's
order), since APScheduler knows only the wall clock. Everything else — every
clerk's and admin's action, every push from the platform, every command to
it — goes over HTTP.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import uvicorn
from pydantic import SecretStr

from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.platform.settings import PlatformSettings
from gasbill.api.app import create_app
from gasbill.bootstrap import Services, bootstrap
from gasbill.config import Settings
from gasbill.demo import platform as sim_process
from gasbill.jobs.registry import JOBS, JobContext
from gasbill.jobs.tick import TickRunner

# In accelerated time the periodic jobs need not run every simulated minute: billing and
# every balance change already run the decisions (the sweep catches grace periods and quiet
# hours), and the summary reads the reconciliation report itself.
WEEK = 7 * 24 * 3600
# staff sessions age on the simulated clock, which hurries while commands wait for meters
SESSION_MINUTES = 90 * 24 * 60
DEMO_JOBS = {
    "decisions": WEEK,
    "reconcile": WEEK,
    "poll_silent": 6 * 3600,
    "campaigns": 6 * 3600,
}


# the queues worked off until the product says they are drained: readings to bill, commands
# to send (billing's and a top-up's decisions queue commands as they go)
QUEUES = ("inbox", "dispatch")
# what the product's /metrics says is left in them
QUEUE_GAUGES = ("gasbill_inbox_pending", "gasbill_commands_in_flight")
MAX_DRAIN_ROUNDS = 50


def queue_state(metrics: str) -> dict[str, int]:
    """The queue gauges' samples in a Prometheus exposition, by sample name and labels."""
    found: dict[str, int] = {}
    for line in metrics.splitlines():
        if line.startswith(QUEUE_GAUGES):
            sample, _, value = line.rpartition(" ")
            found[sample] = int(Decimal(value))  # counts, read exactly
    return found


class DemoClock:
    """The product's clock: where the demo has moved simulated time to."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def move_to(self, instant: datetime) -> None:
        with self._lock:
            self._now = max(self._now, instant)


def demo_settings(
    settings: Settings, *, db_url: str, platform_url: str, company_no: str
) -> Settings:
    jobs = settings.jobs.model_copy(
        update={
            name: getattr(settings.jobs, name).model_copy(update={"interval_seconds": seconds})
            for name, seconds in DEMO_JOBS.items()
        }
    )
    staff = settings.staff.model_copy(
        update={"token_ttl_minutes": max(settings.staff.token_ttl_minutes, SESSION_MINUTES)}
    )
    return settings.model_copy(
        update={
            "jobs": jobs,
            "staff": staff,
            "database": settings.database.model_copy(update={"url": db_url}),
            "platform": PlatformSettings(
                base_url=platform_url,
                company_no=company_no,
                login_name=sim_process.LOGIN,
                password=SecretStr(sim_process.PASSWORD),
                read_timeout_seconds=Decimal(30),
            ),
        }
    )


@dataclass(eq=False)
class Product:
    """The app served by uvicorn in a thread, its services, and its jobs on the demo's clock."""

    settings: Settings
    services: Services
    clock: DemoClock
    server: uvicorn.Server
    url: str
    runner: TickRunner
    queues: TickRunner
    _thread: threading.Thread = field(init=False, repr=False)
    _http: httpx.Client = field(init=False, repr=False)

    @classmethod
    def start(cls, settings: Settings, *, clock: DemoClock, host: str, port: int) -> Product:
        upgrade(settings.database.url)
        services = bootstrap(settings, clock=clock)
        app = create_app(settings, services=services)
        # log_config=None: uvicorn's own dictConfig would close the handlers set up already
        # (the demo's file of the customers' warnings)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            log_config=None,
            proxy_headers=False,
            access_log=False,
        )
        context = JobContext.of(services)
        product = cls(
            settings,
            services,
            clock,
            uvicorn.Server(config),
            f"http://{host}:{port}",
            TickRunner(context),
            TickRunner(context, jobs=tuple(job for job in JOBS if job.name in QUEUES)),
        )
        product._http = httpx.Client(base_url=product.url, timeout=60)
        product._thread = threading.Thread(target=product.server.run, name="demo-app", daemon=True)
        product._thread.start()
        deadline = time.monotonic() + 60
        while not product.server.started:
            if not product._thread.is_alive() or time.monotonic() > deadline:
                product.services.close()
                raise RuntimeError(f"the app did not start on {host}:{port}")
            time.sleep(0.02)
        return product

    def run_jobs(self, now: datetime) -> None:
        """The jobs due at `now`, in the scheduler's order; then the queues, until drained."""
        self.runner.run_due(now)
        self.drain(now)

    def queue_state(self) -> dict[str, int]:
        """What the product's /metrics says is left to bill and in flight to meters."""
        answer = self._http.get("/metrics")
        answer.raise_for_status()
        return queue_state(answer.text)

    def drain(self, now: datetime) -> None:
        """Run the queues at `now` until nothing is left to bill and a run of them changes
        nothing the product's /metrics shows (no command left to send now).

        Simulated time moves on only then: a job's run cut short by its time slice on a
        loaded machine would otherwise leave its work for the next step, a simulated day
        later, and the same seed would not give the same run.
        """
        before = self.queue_state()
        for _ in range(MAX_DRAIN_ROUNDS):
            self.queues.run_once(now)
            after = self.queue_state()
            if after == before and not after.get("gasbill_inbox_pending"):
                return
            before = after
        raise RuntimeError(f"the product's queues did not drain at {now.isoformat()}")

    def serving(self) -> bool:
        return self._thread.is_alive()

    def wait(self, seconds: float) -> None:
        self._thread.join(seconds)

    def close(self) -> None:
        self._http.close()
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self.services.close()


def advance(
    product: Product,
    simulator: sim_process.SimulatorProcess,
    until: datetime,
    *,
    step: timedelta,
    now: datetime,
    first: timedelta | None = None,
) -> datetime:
    """Move both worlds to `until` in steps (the first one `first` long): the product's
    clock first (so what the meters push during the step is not from its future), then the
    platform's, then the jobs. A short first step lets the jobs send what the staff just
    queued before the meters' wake-ups, as the dispatcher would within seconds."""
    span = first or step
    while now < until:
        now, span = min(now + span, until), step
        product.clock.move_to(now)
        simulator.advance(now)
        product.run_jobs(now)
    return now
