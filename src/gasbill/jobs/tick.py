"""Running the jobs by hand, at a time we choose: the demo's accelerated time, and tests.

APScheduler runs on the wall clock only (DESIGN §12). `TickRunner` runs the
same jobs, recorded the same way, in the fixed order of `JOBS` (data in,
billing, decisions, campaigns, commands out, news back, warnings), each at
the `now` it is given:

    runner = TickRunner(JobContext.build(settings, engine, clock=simulated_clock))
    for now in simulated_hours:
        runner.run_once(now)        # every enabled job, once
        # or runner.run_due(now)    # only those whose interval has passed in simulated time

A failing job is logged and counted (`runner.board`), and the tick goes on
with the next job; its work is picked up at the next tick.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gasbill.jobs.leader import Leadership, SoleLeader
from gasbill.jobs.registry import (
    JOBS,
    Job,
    JobBoard,
    JobContext,
    JobRun,
    enabled_jobs,
    execute,
    schedule_of,
)


class TickRunner:
    def __init__(
        self,
        context: JobContext,
        *,
        jobs: tuple[Job, ...] = JOBS,
        leadership: Leadership | None = None,
        board: JobBoard | None = None,
    ) -> None:
        self.context = context
        self.jobs = enabled_jobs(context.settings, jobs)
        self.leadership = leadership or SoleLeader()
        self.board = board or JobBoard([job.name for job in self.jobs])
        self._last_run: dict[str, datetime] = {}

    def _now(self, now: datetime | None) -> datetime:
        now = now if now is not None else self.context.clock()
        if now.tzinfo is None:
            raise ValueError("a tick's time must carry its zone (UTC)")
        return now

    def run_once(self, now: datetime | None = None) -> list[JobRun]:
        """Every enabled job once, in order, at `now` (default: the context's clock)."""
        return self._run([*self.jobs], self._now(now))

    def run_due(self, now: datetime | None = None) -> list[JobRun]:
        """The jobs whose interval has passed since their last tick, in order, at `now`."""
        at = self._now(now)
        due = [
            job
            for job in self.jobs
            if (last := self._last_run.get(job.name)) is None
            or at - last
            >= timedelta(seconds=schedule_of(self.context.settings, job).interval_seconds)
        ]
        return self._run(due, at)

    def _run(self, jobs: list[Job], now: datetime) -> list[JobRun]:
        if not self.leadership.is_leader():
            return []
        runs = []
        for job in jobs:
            runs.append(execute(job, self.context, now, self.board))
            self._last_run[job.name] = now
        return runs
