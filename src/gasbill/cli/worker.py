"""`gasbill worker`: a process that works the jobs and serves nothing.

Start as many as the load needs, on one machine or several, beside the API
processes (`gasbill serve --no-scheduler`, or uvicorn's workers on
`gasbill.api.asgi`). On PostgreSQL every worker works the queues at once —
billing inbox, campaigns, dispatch, result polling, notifications — through
row claims, and the one holding the advisory lock also runs the timers
(decisions sweep, nightly reconciliation, audit anchor, true-up, query
polling). Readings stored by any process wake every worker's inbox
(LISTEN/NOTIFY). On SQLite one process works the jobs (the lock file's
holder); a second worker waits as a standby.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from types import FrameType

from sqlalchemy.exc import OperationalError

from gasbill.adapters.db.migrations import DatabaseBehind, ensure_current
from gasbill.bootstrap import Services, bootstrap
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.serve import log_gasbill
from gasbill.config import ConfigError, Settings
from gasbill.jobs import JobContext, JobScheduler, leadership_for
from gasbill.jobs.wakeup import BillingListener

log = logging.getLogger("gasbill.worker")


@dataclass(eq=False)
class Worker:
    """The scheduler and the billing listener of one worker process, not started."""

    services: Services
    scheduler: JobScheduler
    listener: BillingListener

    def start(self) -> None:
        self.scheduler.start()
        self.listener.start()

    def close(self) -> None:
        try:
            self.listener.stop()
            self.scheduler.shutdown(wait=True)
        finally:
            self.services.close()


def build_worker(settings: Settings, *, services: Services | None = None) -> Worker:
    """A worker on a database at the code's revision; raises DatabaseBehind, ConfigError or
    OperationalError (what it built is closed then)."""
    problem = settings.app.insecure_secret()
    if problem:
        raise ConfigError(problem)
    world = services or bootstrap(settings)
    try:
        ensure_current(world.engine)
        scheduler = JobScheduler(
            JobContext.of(world),
            leadership_for(settings.database.url, settings.jobs.advisory_lock_key),
        )
    except BaseException:
        world.close()
        raise
    world.wakers.append(lambda: scheduler.wake("inbox"))
    listener = BillingListener(settings.database.url, lambda: scheduler.wake("inbox"))
    return Worker(services=world, scheduler=scheduler, listener=listener)


def worker_command(config: ConfigOption = None) -> None:
    """Work the scheduled jobs (no API): any number at once on PostgreSQL; stops on
    SIGTERM or Ctrl-C after the running jobs end."""
    settings = settings_from(config)
    log_gasbill()
    try:
        worker = build_worker(settings)
    except (DatabaseBehind, ConfigError) as exc:
        fail(str(exc))
    except OperationalError as exc:
        fail(f"cannot reach the database: {exc.orig}")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.start()
        log.info("worker started: %s", ", ".join(worker.scheduler.jobs) or "no jobs")
        while not stop.wait(1.0):
            pass
        log.info("worker stopping")
    finally:
        worker.close()
