"""The scheduler: leadership on PostgreSQL and SQLite, failing jobs, the tick, `serve`."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gasbill.adapters.db.engine import make_engine, normalise_url
from gasbill.cli.serve import build_runtime
from gasbill.config import Settings
from gasbill.jobs import JOBS, Job, JobContext, JobScheduler, Skipped, TickRunner
from gasbill.jobs.leader import (
    AdvisoryLockLeader,
    FileLockLeader,
    SoleLeader,
    leadership_for,
    lock_file_of,
)
from tests.conftest import PG_ENV, ROOT

T0 = datetime(2025, 3, 1, 2, tzinfo=UTC)
ONLY_DISPATCH = {
    name: {"enabled": name == "dispatch", "interval_seconds": 1}
    for name in (
        "inbox",
        "decisions",
        "campaigns",
        "dispatch",
        "poll_silent",
        "notify",
        "audit_anchor",
        "true_up",
    )
}


class NullPlatform:
    """The platform's remote-control API, knowing nothing and accepting nothing."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def add_commands(self, commands):
        self.calls.append("add_commands")
        return []

    def find_by_define_no(self, define_no):
        self.calls.append("find_by_define_no")
        return []

    def get_model(self, ctrl_id):
        self.calls.append("get_model")
        return None


def settings_for(url: str, **jobs) -> Settings:
    return Settings(
        database={"url": url}, tariffs={"dir": ROOT / "tariffs"}, jobs=jobs or ONLY_DISPATCH
    )


def context_for(settings: Settings, engine=None, clock=lambda: T0) -> JobContext:
    engine = engine or make_engine("sqlite://")
    return JobContext.build(settings, engine, platform_factory=NullPlatform, clock=clock)


class Counting:
    """A job function that counts its runs, raising on the runs listed in `fail_on`."""

    def __init__(self, fail_on: tuple[int, ...] = ()) -> None:
        self.runs: list[datetime] = []
        self.fail_on = fail_on
        self.ran = threading.Event()

    def __call__(self, context: JobContext, now: datetime) -> object:
        self.runs.append(now)
        self.ran.set()
        if len(self.runs) in self.fail_on:
            raise RuntimeError(f"boom on run {len(self.runs)}")
        return f"run {len(self.runs)}"


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# -- PostgreSQL: advisory-lock leadership on dedicated connections -----------------------------
@pytest.fixture
def pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
    return url


def terminate(url: str, pid: int) -> None:
    admin = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_only_one_postgres_scheduler_leads_and_the_other_takes_over(pg_url):
    key = random.randint(1, 2**62)  # a lock key no other run uses
    settings = settings_for(pg_url, advisory_lock_key=key)
    first_job, second_job = Counting(), Counting()
    first_leader, second_leader = AdvisoryLockLeader(pg_url, key), AdvisoryLockLeader(pg_url, key)
    first = JobScheduler(
        context_for(settings), first_leader, jobs=(Job("dispatch", first_job, "a"),)
    )
    second = JobScheduler(
        context_for(settings), second_leader, jobs=(Job("dispatch", second_job, "b"),)
    )
    try:
        for _ in range(3):
            first.run_now("dispatch")
            second.run_now("dispatch")
        assert (len(first_job.runs), len(second_job.runs)) == (3, 0)
        assert second.stats("dispatch").skipped == 3
        assert second.stats("dispatch").last_skip_reason == "not the leader"
        assert first.status()["leader"] is True
        assert second.status()["leader"] is False

        # the leader's dedicated connection dies: the server frees its lock with it
        pid = first_leader.backend_pid
        assert pid is not None
        terminate(pg_url, pid)
        assert wait_for(second_leader.is_leader)
        assert not first_leader.is_leader()
        first.run_now("dispatch")
        second.run_now("dispatch")
        assert (len(first_job.runs), len(second_job.runs)) == (3, 1)

        # and back again once the new leader gives it up
        second_leader.release()
        assert first_leader.is_leader()
    finally:
        first.shutdown()
        second.shutdown()


def test_a_lost_leader_connection_is_replaced_and_leadership_retaken(pg_url):
    key = random.randint(1, 2**62)
    leader = AdvisoryLockLeader(pg_url, key)
    try:
        assert leader.is_leader()
        old_pid = leader.backend_pid
        assert old_pid is not None
        terminate(pg_url, old_pid)
        assert wait_for(leader.is_leader)  # lost on the dead connection, retaken on a new one
        assert leader.backend_pid not in (None, old_pid)
    finally:
        leader.release()


def test_negative_and_large_keys_are_checked_as_held(pg_url):
    for key in (-(2**63), -1, 2**63 - 1):
        leader = AdvisoryLockLeader(pg_url, key)
        try:
            assert leader.is_leader()
            assert leader.is_leader()  # the second check reads pg_locks
        finally:
            leader.release()


# -- SQLite: a lock file next to the database --------------------------------------------------
def test_on_sqlite_only_one_process_schedules(tmp_path):
    url = f"sqlite:///{tmp_path / 'gasbill.db'}"
    first, second = leadership_for(url, 1), leadership_for(url, 1)
    assert isinstance(first, FileLockLeader)
    assert first.path == tmp_path / "gasbill.db.scheduler.lock"
    try:
        assert first.is_leader()
        assert not second.is_leader()
        assert first.is_leader()
        first.release()
        assert second.is_leader()
        assert not first.is_leader()
    finally:
        first.release()
        second.release()


def test_on_sqlite_the_second_scheduler_runs_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'gasbill.db'}"
    settings = settings_for(url)
    jobs = [Counting(), Counting()]
    schedulers = [
        JobScheduler(context_for(settings), leadership_for(url, 1), jobs=(Job("dispatch", j, ""),))
        for j in jobs
    ]
    try:
        for scheduler in schedulers:
            scheduler.run_now("dispatch")
        assert [len(j.runs) for j in jobs] == [1, 0]
    finally:
        for scheduler in schedulers:
            scheduler.shutdown()


def test_an_in_memory_sqlite_needs_no_lock():
    assert lock_file_of("sqlite://") is None
    assert isinstance(leadership_for("sqlite:///:memory:", 1), SoleLeader)


# -- failures are logged, counted, and the job runs again ---------------------------------------
def test_a_failing_job_is_logged_with_its_error_and_runs_again(caplog):
    job = Counting(fail_on=(1,))
    runner = TickRunner(
        context_for(settings_for("sqlite://")), jobs=(Job("dispatch", job, "fails once"),)
    )
    with caplog.at_level(logging.ERROR, logger="gasbill.jobs"):
        (failed,) = runner.run_once(T0)
    assert not failed.ok
    assert isinstance(failed.error, RuntimeError)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "dispatch" in record.getMessage()
    assert "boom on run 1" in record.getMessage()
    assert record.exc_info is not None
    stats = runner.board.get("dispatch")
    assert (stats.failures, stats.consecutive_failures, stats.runs) == (1, 1, 0)
    assert stats.last_error == "RuntimeError: boom on run 1"

    (again,) = runner.run_once(T0 + timedelta(minutes=1))
    assert again.ok
    stats = runner.board.get("dispatch")
    assert (stats.failures, stats.consecutive_failures, stats.runs) == (1, 0, 1)
    assert stats.last_error == "RuntimeError: boom on run 1"  # kept for the record


def test_the_scheduler_runs_a_failed_job_again_at_its_next_interval(tmp_path, caplog):
    job = Counting(fail_on=(1,))
    settings = settings_for("sqlite://")
    scheduler = JobScheduler(context_for(settings), SoleLeader(), jobs=(Job("dispatch", job, ""),))
    with caplog.at_level(logging.ERROR, logger="gasbill.jobs"):
        scheduler.start()
        try:
            assert wait_for(lambda: scheduler.stats("dispatch").runs >= 1)
        finally:
            scheduler.shutdown()
    stats = scheduler.stats("dispatch")
    assert stats.failures == 1
    assert stats.runs >= 1
    assert any("boom on run 1" in r.getMessage() for r in caplog.records)
    status = scheduler.status()
    assert status["jobs"]["dispatch"]["failures"] == 1
    assert status["jobs"]["dispatch"]["interval_seconds"] == 1
    assert not status["running"]


def test_a_woken_job_runs_at_once(tmp_path):
    job = Counting()
    jobs = {name: {"enabled": name == "inbox"} for name in ONLY_DISPATCH}
    settings = settings_for("sqlite://", **jobs)
    scheduler = JobScheduler(context_for(settings), SoleLeader(), jobs=(Job("inbox", job, ""),))
    scheduler.start()
    try:
        assert wait_for(lambda: scheduler.stats("inbox").runs == 1)  # the first run, at start
        scheduler.wake("inbox")  # the interval is 30 s: only the wake makes it run again
        assert wait_for(lambda: scheduler.stats("inbox").runs == 2, seconds=5)
    finally:
        scheduler.shutdown()


# -- the tick: every job, in order, at the injected time ----------------------------------------
def test_the_tick_runs_every_job_in_order_at_the_injected_time(db_url):
    settings = Settings(database={"url": db_url}, tariffs={"dir": ROOT / "tariffs"})
    engine = make_engine(db_url)
    seen: list[tuple[str, datetime]] = []

    def recorded(job: Job) -> Job:
        def run(context: JobContext, now: datetime) -> object:
            seen.append((job.name, now))
            return job.run(context, now)

        return Job(job.name, run, job.summary)

    platform = NullPlatform()
    context = JobContext.build(
        settings, engine, platform_factory=lambda: platform, clock=lambda: T0
    )
    runner = TickRunner(context, jobs=tuple(recorded(job) for job in JOBS))
    try:
        runs = runner.run_once()  # the context's clock
        order = [
            "inbox",
            "decisions",
            "campaigns",
            "dispatch",
            "poll_silent",
            "notify",
            "reconcile",
            "audit_anchor",
            "true_up",
        ]
        assert [name for name, _ in seen] == order  # query mode is off by default
        assert {now for _, now in seen} == {T0}
        for run in runs:
            assert run.error is None, f"{run.name}: {run.error!r}"
            assert run.ok or isinstance(run.outcome, Skipped)

        seen.clear()
        runner.run_once(T0 + timedelta(days=1))
        assert {now for _, now in seen} == {T0 + timedelta(days=1)}

        seen.clear()
        later = T0 + timedelta(days=1, seconds=20)
        runner.run_due(later)  # only dispatch (15 s) is due again 20 s on
        assert seen == [("dispatch", later)]
    finally:
        context.close()
        engine.dispose()


def test_a_tick_needs_an_aware_time():
    runner = TickRunner(context_for(settings_for("sqlite://")))
    with pytest.raises(ValueError, match="zone"):
        runner.run_once(datetime(2025, 1, 1))


# -- `gasbill serve`: API and scheduler, or API only -------------------------------------------
def test_serve_no_scheduler_builds_an_api_only_node(db_url):
    runtime = build_runtime(settings_for(db_url), scheduler=False)
    try:
        assert runtime.scheduler is None
        assert runtime.app.state.jobs is None
    finally:
        runtime.close()


def test_serve_builds_the_scheduler_by_default(tmp_path, sqlite_template):
    import shutil

    path = tmp_path / "gasbill.db"
    shutil.copyfile(sqlite_template, path)
    settings = Settings(database={"url": f"sqlite:///{path}"}, tariffs={"dir": ROOT / "tariffs"})
    runtime = build_runtime(settings)
    try:
        assert isinstance(runtime.scheduler, JobScheduler)
        assert runtime.app.state.jobs is runtime.scheduler
        assert not runtime.scheduler.running  # started by serve, not by building
        assert "lock file" in runtime.scheduler.status()["leadership"]
        assert list(runtime.scheduler.jobs) == [
            "inbox",
            "decisions",
            "campaigns",
            "dispatch",
            "poll_silent",
            "notify",
            "reconcile",
            "audit_anchor",
            "true_up",
        ]
    finally:
        runtime.close()
    off = Settings(
        database={"url": f"sqlite:///{path}"},
        tariffs={"dir": ROOT / "tariffs"},
        jobs={"scheduler": False},
    )
    runtime = build_runtime(off)
    try:
        assert runtime.scheduler is None
    finally:
        runtime.close()
