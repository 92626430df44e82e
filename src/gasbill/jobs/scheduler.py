"""The wall-clock scheduler of `gasbill serve`: APScheduler 3, one per process.

Each process has its own BackgroundScheduler and its own MemoryJobStore
(a job store is never shared). Every job runs at its interval with
`max_instances=1` (a run still going when the next is due is skipped, not
doubled), `coalesce=True` (runs missed while the process slept become one)
and a misfire grace (a run later than that is dropped; the next one does its
work). Before each run a timer checks leadership: only the leader runs timers.

APScheduler retries nothing, and we do not either: a failing run is logged
with its traceback and counted (`status()`), and since the work functions
claim their rows and commit per batch, the next run picks its work up again.

On PostgreSQL the queues (`Job.queue`: billing inbox, campaigns, dispatch,
result polling, notifications) run in every process whether it leads or not:
their rows are claimed (`FOR UPDATE SKIP LOCKED`, per-meter advisory locks),
so any number of `gasbill worker` and `gasbill serve` processes share them.
Only the timers (sweeps, nightly reconciliation, anchors, polling in query
mode) wait for leadership. On SQLite the leader runs everything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from gasbill.jobs.leader import Leadership
from gasbill.jobs.registry import (
    JOBS,
    Job,
    JobBoard,
    JobContext,
    JobStats,
    enabled_jobs,
    execute,
    schedule_of,
)

log = logging.getLogger("gasbill.jobs.scheduler")

# A job woken while it runs goes again right after, up to this many times in a row.
MAX_WAKE_ROUNDS = 10


class JobScheduler:
    """The enabled jobs of `context.settings`, on the wall clock, run by the leader only."""

    def __init__(
        self, context: JobContext, leadership: Leadership, *, jobs: tuple[Job, ...] = JOBS
    ) -> None:
        self.context = context
        self.leadership = leadership
        self.jobs = {job.name: job for job in enabled_jobs(context.settings, jobs)}
        self.board = JobBoard(list(self.jobs))
        self._wakes = {name: threading.Event() for name in self.jobs}
        self._running: set[str] = set()
        self._state = threading.Lock()
        self._leader: bool | None = None
        self._started = False
        settings = context.settings.jobs
        self._scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(self.jobs)))},
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": settings.misfire_grace_seconds,
            },
            timezone=UTC,
        )
        self._scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Schedule every enabled job, each due at once, then at its interval."""
        if self._started:
            return
        now = datetime.now(UTC)
        for name, job in self.jobs.items():
            every = schedule_of(self.context.settings, job).interval_seconds
            self._scheduler.add_job(
                self._run,
                IntervalTrigger(seconds=every, timezone=UTC),
                args=[name],
                id=name,
                name=f"gasbill {name}",
                next_run_time=now,
                replace_existing=True,
            )
        self._scheduler.start()
        self._started = True
        log.info(
            "scheduler started: %s; leadership by %s",
            ", ".join(self.jobs) or "no jobs",
            self.leadership.describe(),
        )

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop scheduling, let running jobs finish (if `wait`), give leadership up."""
        if self._started:
            self._scheduler.shutdown(wait=wait)
            self._started = False
            log.info("scheduler stopped")
        self.leadership.release()
        self.context.close()

    @property
    def running(self) -> bool:
        return self._started and bool(self._scheduler.running)

    # -- running one job ------------------------------------------------------------------
    def _is_leader(self) -> bool:
        try:
            leader = self.leadership.is_leader()
        except Exception:
            log.exception("the leadership check failed: not running jobs this time")
            leader = False
        self._leader = leader
        return leader

    def _shared(self, job: Job) -> bool:
        """A queue on PostgreSQL: worked here whoever leads (its rows are claimed)."""
        return job.queue and self.context.engine.dialect.name == "postgresql"

    @contextmanager
    def _marked_running(self, name: str) -> Iterator[None]:
        with self._state:
            self._running.add(name)
        try:
            yield
        finally:
            with self._state:
                self._running.discard(name)

    def _run(self, name: str) -> None:
        job = self.jobs[name]
        with self._marked_running(name):
            for _ in range(MAX_WAKE_ROUNDS):
                self._wakes[name].clear()
                if not self._shared(job) and not self._is_leader():
                    self.board.update(name, _not_leader)
                    return
                execute(job, self.context, self.context.clock(), self.board)
                if not self._wakes[name].is_set():
                    return

    def run_now(self, name: str) -> None:
        """Run one job in the calling thread, as the scheduler would (leadership first)."""
        self._run(name)

    def wake(self, name: str) -> None:
        """Have a job run as soon as it can (e.g. the inbox when a frozen reading arrives)."""
        event = self._wakes.get(name)
        if event is None or event.is_set():
            return  # not scheduled here, or a run is already asked for
        event.set()
        with self._state:
            busy = name in self._running
        if busy or not self.running:
            return  # the running one goes again when it ends
        with suppress(JobLookupError):
            self._scheduler.modify_job(name, next_run_time=datetime.now(UTC))

    def _on_missed(self, event: JobExecutionEvent) -> None:
        self.board.update(event.job_id, _missed)

    # -- for /metrics or a status endpoint ---------------------------------------------------
    def stats(self, name: str) -> JobStats:
        return self.board.get(name)

    def status(self) -> dict[str, Any]:
        jobs: dict[str, Any] = self.board.snapshot()
        for name, job in self.jobs.items():
            scheduled = self._scheduler.get_job(name) if self._started else None
            next_run = getattr(scheduled, "next_run_time", None)
            jobs[name] |= {
                "interval_seconds": schedule_of(self.context.settings, job).interval_seconds,
                "next_run_at": next_run.isoformat() if next_run else None,
            }
        return {
            "running": self.running,
            "leadership": self.leadership.describe(),
            "leader": self._leader,
            "jobs": jobs,
        }


def _not_leader(stats: JobStats) -> None:
    stats.skipped += 1
    stats.last_skip_reason = "not the leader"


def _missed(stats: JobStats) -> None:
    stats.missed += 1
