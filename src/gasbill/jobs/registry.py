"""The scheduled jobs: what each runs, in which order, and how each run is recorded.

Every job is a function of a `JobContext` (the ports it works with) and the
time `now`, so the scheduler runs it on the wall clock and the demo's
`TickRunner` in accelerated time. The work functions already claim their rows
and commit per batch: a run that fails leaves its work for the next run, and
`execute` logs the failure with its traceback and counts it. Nothing is
retried here and nothing is swallowed.

Each job imports its work: a renamed or missing work function is an import
error at start, never a job silently switched off. A run is skipped only when
a part it needs is not configured (query mode without a base URL, no anchor
file).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.adapters.audit_anchor import AnchorFile, anchor_path
from gasbill.adapters.db.uow import retried
from gasbill.adapters.notify import build_notifier
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.config import JobSchedule, Settings
from gasbill.jobs.context import JobContext as JobContext  # re-exported for tick, scheduler
from gasbill.jobs.context import Skipped as Skipped
from gasbill.service.audit import anchor_head
from gasbill.service.campaigns import run_campaigns as run_campaigns_due
from gasbill.service.commands.dispatch import dispatch
from gasbill.service.commands.reports import poll_silent
from gasbill.service.decisions import sweep
from gasbill.service.inbox import work_inbox
from gasbill.service.ingest import IngestPolicy
from gasbill.service.notify import DeliveryPolicy, deliver_pending
from gasbill.service.poller import poll_once
from gasbill.service.reconciliation_nightly import reconcile_nightly
from gasbill.service.true_up import run_true_ups

log = logging.getLogger("gasbill.jobs")

# -- the jobs -----------------------------------------------------------------------------
JobFunction = Callable[[JobContext, datetime], object]


def run_query_poll(context: JobContext, now: datetime) -> object:
    source = context.data_source()
    if source is None:
        return Skipped("query mode has no base_url")
    settings = context.settings
    policy = IngestPolicy(
        ZoneInfo(settings.app.platform_timezone),
        timedelta(minutes=settings.push.max_future_minutes),
        parse_time=parse_platform_time,
    )
    return poll_once(
        context.uow_factory(),
        source,
        settings.platform.company_no,
        policy,
        lookback=timedelta(hours=settings.jobs.query_poll.lookback_hours),
        page_size=settings.jobs.query_poll.page_size,
        now=now,
        # wake billing as a push does (gasbill.bootstrap.Services.frozen_stored)
        on_frozen_stored=context.services.frozen_stored if context.services else None,
    )


def run_inbox(context: JobContext, now: datetime) -> object:
    """Bill batch after batch until the inbox is empty or the run's time slice is spent."""
    jobs = context.settings.jobs
    return drain(
        lambda at: retried(  # a batch that met a lock conflict is billed again, whole
            lambda: work_inbox(
                context.uow_factory(),
                catalog=context.catalog,
                limit=jobs.inbox_batch,
                max_flow_m3_per_hour=context.settings.rating.max_flow_m3_per_hour,
                now=at,
                decide=context.decide,
            )
        ),
        now=now,
        more=lambda outcome: outcome.claimed >= jobs.inbox_batch,
        seconds=jobs.slice_seconds,
        clock=context.clock,
    )


@dataclass(frozen=True, slots=True)
class Drained:
    """What a draining run did: its batches, and the last batch's outcome."""

    batches: int
    items: int
    last: object
    emptied: bool


def drain(
    batch: Callable[[datetime], Any],
    *,
    now: datetime,
    more: Callable[[Any], bool],
    seconds: float,
    clock: Callable[[], datetime] | None = None,
) -> Drained:
    """Run `batch` until `more` says the queue is empty or `seconds` have passed.

    Each batch gets its own time: the run's `now` moved on by the time spent
    since on `clock` (the jobs' clock; without one, the wall's), so a batch is
    stamped when it ran (what billed readings wait is measured by it), not
    when the run began. On the demo's simulated clock, which stands still
    while the jobs run, every batch is stamped `now`: how long a batch took on
    a loaded machine must not move what happens in simulated time (a command
    queued by billing "after" the dispatcher's time would wait a day).
    """
    started = time.monotonic()
    deadline = started + seconds
    began = clock() if clock is not None else None
    batches = items = 0
    while True:
        if clock is not None and began is not None:
            at = now + (clock() - began)
        else:
            at = now + timedelta(seconds=time.monotonic() - started)
        outcome = batch(at)
        batches += 1
        items += int(getattr(outcome, "claimed", 0) or 0)
        if not more(outcome):
            return Drained(batches, items, outcome, True)
        if time.monotonic() >= deadline:
            return Drained(batches, items, outcome, False)


def run_decisions(context: JobContext, now: datetime) -> object:
    return sweep(
        context.uow_factory,
        settings=context.settings.decisions,
        command_policy=context.command_policy,
        now=now,
        zone=context.settings.app.timezone,
    )


def run_campaigns(context: JobContext, now: datetime) -> object:
    return run_campaigns_due(
        context.uow_factory,
        catalog=context.catalog,
        codec=context.codec,
        policy=context.command_policy,
        now=now,
    )


def run_dispatch(context: JobContext, now: datetime) -> object:
    """Send due commands, round after round, until none is due or the time slice is spent."""
    return drain(
        lambda at: dispatch(
            context.uow_factory,
            context.platform(),
            context.codec,
            policy=context.command_policy,
            now=at,
        ),
        now=now,
        more=lambda outcome: outcome.claimed > 0 and outcome.sent > 0,
        seconds=context.settings.jobs.slice_seconds,
        clock=context.clock,
    )


def run_poll_silent(context: JobContext, now: datetime) -> object:
    return poll_silent(
        context.uow_factory,
        context.platform(),
        context.codec,
        policy=context.command_policy,
        now=now,
    )


def run_notify(context: JobContext, now: datetime) -> object:
    settings = context.settings.notify
    notifier = context.notifier
    if notifier is None:
        notifier = context._once("notifier", lambda: build_notifier(settings))
    return deliver_pending(
        context.uow_factory,
        notifier,
        now=now,
        batch=context.settings.jobs.notify_batch,
        policy=DeliveryPolicy.from_settings(settings),
    )


def run_reconcile(context: JobContext, now: datetime) -> object:
    settings = context.settings
    return reconcile_nightly(
        context.uow_factory(),
        context.catalog,
        codec=context.codec,
        now=now,
        decisions=settings.decisions,
        report_dir=settings.jobs.reconcile.report_dir,
        connections=settings.reconcile.connections,
    )


def run_audit_anchor(context: JobContext, now: datetime) -> object:
    settings = context.settings
    path = anchor_path(settings.database.url, settings.audit.anchor_file)
    if path is None:
        return Skipped("no anchor file: set [audit] anchor_file")
    return anchor_head(context.uow_factory(), AnchorFile(path), now=now)


def run_true_up(context: JobContext, now: datetime) -> object:
    settings = context.settings.jobs.true_up
    return run_true_ups(
        context.uow_factory,
        catalog=context.catalog,
        now=now,
        batch=settings.batch,
        settled_after=timedelta(days=settings.settled_after_days),
        max_flow_m3_per_hour=context.settings.rating.max_flow_m3_per_hour,
    )


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # also its section in [jobs]
    run: JobFunction
    summary: str
    # a queue worked through row claims: on PostgreSQL every worker runs it at once;
    # otherwise a timer, run by the leader alone
    queue: bool = False


# The order a tick runs them in: data in, billing, decisions, commands out, news back.
# The decisions sweep is a timer: the decisions with volume are made in the inbox's
# transaction right after billing (and after each top-up), so they scale with it.
JOBS: tuple[Job, ...] = (
    Job("query_poll", run_query_poll, "pull readings, alarms and events (query mode)"),
    Job("inbox", run_inbox, "bill stored frozen readings", queue=True),
    Job("decisions", run_decisions, "warnings and valve decisions sweep"),
    Job("campaigns", run_campaigns, "tariff campaigns: queue and follow setprice", queue=True),
    Job("dispatch", run_dispatch, "send due commands to the platform", queue=True),
    Job("poll_silent", run_poll_silent, "ask after sent commands with no report", queue=True),
    Job("notify", run_notify, "deliver recorded warnings", queue=True),
    Job("reconcile", run_reconcile, "reconcile every account against the books (nightly)"),
    Job("audit_anchor", run_audit_anchor, "anchor the audit log's head outside the database"),
    Job("true_up", run_true_up, "price-change true-up of meter-mode accounts"),
)


def schedule_of(settings: Settings, job: Job) -> JobSchedule:
    found = getattr(settings.jobs, job.name, None)
    return found if isinstance(found, JobSchedule) else JobSchedule(enabled=False)


def enabled_jobs(settings: Settings, jobs: tuple[Job, ...] = JOBS) -> list[Job]:
    return [job for job in jobs if schedule_of(settings, job).enabled]


# -- running and recording ----------------------------------------------------------------
@dataclass(slots=True)
class JobStats:
    """What happened to one job in this process: for /metrics or a status endpoint."""

    name: str
    runs: int = 0  # runs that finished without error
    failures: int = 0
    skipped: int = 0  # a missing part, or not the leader
    missed: int = 0  # late past the misfire grace, or still running when due again
    consecutive_failures: int = 0
    last_run_at: datetime | None = None  # the `now` of the last run
    last_ok_at: datetime | None = None  # of the last run that ended well
    last_duration_seconds: float | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_outcome: str | None = None
    last_skip_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: v.isoformat() if isinstance(v, datetime) else v for name, v in values}


class JobBoard:
    """The stats of every job, safe to read from any thread."""

    def __init__(self, names: list[str]) -> None:
        self._lock = threading.Lock()
        self._stats = {name: JobStats(name) for name in names}

    def update(self, name: str, change: Callable[[JobStats], None]) -> None:
        with self._lock:
            change(self._stats.setdefault(name, JobStats(name)))

    def get(self, name: str) -> JobStats:
        with self._lock:
            return replace(self._stats.setdefault(name, JobStats(name)))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: stats.as_dict() for name, stats in self._stats.items()}


@dataclass(frozen=True, slots=True)
class JobRun:
    name: str
    now: datetime
    outcome: object = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not isinstance(self.outcome, Skipped)


def execute(job: Job, context: JobContext, now: datetime, board: JobBoard) -> JobRun:
    """Run `job` once at `now`: a failure is logged with its traceback and counted."""
    board.update(job.name, lambda s: setattr(s, "last_run_at", now))
    started = time.monotonic()
    try:
        outcome = job.run(context, now)
    except Exception as exc:
        took = time.monotonic() - started
        log.exception("job %s failed after %.1fs: %s", job.name, took, exc)
        error = exc
        board.update(job.name, lambda s: _failed(s, error, now, took))
        return JobRun(job.name, now, error=error)
    took = time.monotonic() - started
    if isinstance(outcome, Skipped):
        board.update(job.name, lambda s: _skipped(s, outcome.reason))
        return JobRun(job.name, now, outcome)
    stats = board.get(job.name)
    if stats.consecutive_failures:
        log.info("job %s runs again after %d failures", job.name, stats.consecutive_failures)
    log.debug("job %s done in %.2fs: %r", job.name, took, outcome)
    board.update(job.name, lambda s: _succeeded(s, outcome, now, took))
    return JobRun(job.name, now, outcome)


def _failed(stats: JobStats, exc: BaseException, now: datetime, took_seconds: float) -> None:
    stats.failures += 1
    stats.consecutive_failures += 1
    stats.last_error = f"{type(exc).__name__}: {exc}"[:1000]
    stats.last_error_at = now
    stats.last_duration_seconds = round(took_seconds, 3)


def _skipped(stats: JobStats, reason: str) -> None:
    stats.skipped += 1
    stats.last_skip_reason = reason


def _succeeded(stats: JobStats, outcome: object, now: datetime, took_seconds: float) -> None:
    stats.runs += 1
    stats.consecutive_failures = 0
    stats.last_ok_at = now
    stats.last_duration_seconds = round(took_seconds, 3)
    stats.last_outcome = repr(outcome)[:500]
