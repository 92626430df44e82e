"""`gasbill serve`: the API and the scheduler in one process, on a database at the code's revision.

`--no-scheduler` (or `[jobs] scheduler = false`) makes an API-only node. With
the scheduler, several nodes may serve one PostgreSQL database: only the
leader runs jobs (DESIGN §11); on SQLite a second process on the same file
serves the API and leaves the jobs to the first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from gasbill.adapters.db.migrations import DatabaseBehind, ensure_current
from gasbill.api.app import create_app
from gasbill.bootstrap import Services, bootstrap
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.config import ConfigError, Settings
from gasbill.jobs import JobContext, JobScheduler, leadership_for
from gasbill.jobs.wakeup import BillingListener


@dataclass(eq=False)
class Runtime:
    """What `gasbill serve` runs: the app, and the scheduler unless it is an API-only node."""

    app: FastAPI
    services: Services
    scheduler: JobScheduler | None
    listener: BillingListener | None = None

    @property
    def engine(self) -> Engine:
        return self.services.engine

    def start(self) -> None:
        if self.scheduler is not None:
            self.scheduler.start()
        if self.listener is not None:
            self.listener.start()

    def close(self) -> None:
        try:
            if self.listener is not None:
                self.listener.stop()
            if self.scheduler is not None:
                self.scheduler.shutdown(wait=True)
        finally:
            self.services.close()


def build_runtime(
    settings: Settings,
    *,
    scheduler: bool = True,
    engine: Engine | None = None,
    services: Services | None = None,
) -> Runtime:
    """The app and (unless `scheduler` is False or [jobs] says so) its scheduler, not started.

    Raises ConfigError (a placeholder secret outside the demo, a bad setting),
    DatabaseBehind, or OperationalError (no database); what it built is
    closed then.
    """
    problem = settings.app.insecure_secret()
    if problem:
        raise ConfigError(problem)
    world = services or bootstrap(settings, engine=engine)
    try:
        ensure_current(world.engine)
        jobs: JobScheduler | None = None
        if scheduler and settings.jobs.scheduler:
            jobs = JobScheduler(
                JobContext.of(world),
                leadership_for(settings.database.url, settings.jobs.advisory_lock_key),
            )
            woken = jobs
            world.wakers.append(lambda: woken.wake("inbox"))
        app = create_app(settings, services=world)
    except BaseException:
        world.close()
        raise
    app.state.jobs = jobs  # the scheduler's status() for a status endpoint, or None
    listener = None
    if jobs is not None:  # readings stored by other processes wake billing here (PostgreSQL)
        scheduled = jobs
        listener = BillingListener(settings.database.url, lambda: scheduled.wake("inbox"))
    return Runtime(app=app, services=world, scheduler=jobs, listener=listener)


def log_gasbill() -> None:
    """gasbill's own log lines (jobs, leadership) on stderr beside uvicorn's, unless set up."""
    logger = logging.getLogger("gasbill")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    no_scheduler: Annotated[
        bool,
        typer.Option("--no-scheduler", help="Serve the API only: run no scheduled jobs here."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Serve the staff API (docs at /docs) and run the scheduled jobs; refuses a stale
    database or a placeholder secret."""
    settings = settings_from(config)
    log_gasbill()
    try:
        runtime = build_runtime(settings, scheduler=not no_scheduler)
    except (DatabaseBehind, ConfigError) as exc:
        fail(str(exc))
    except OperationalError as exc:
        fail(f"cannot reach the database: {exc.orig}")
    try:
        runtime.start()
        uvicorn.run(runtime.app, host=host, port=port, log_level="info", proxy_headers=False)
    finally:
        runtime.close()
