"""Scheduled work: the jobs, who runs them (leadership), and when (scheduler or tick).

- `registry`: `JobContext` (the ports), `JOBS` in their fixed order, `execute`
  (one run, logged and counted on a `JobBoard`).
- `leader`: PostgreSQL advisory-lock leadership on a dedicated connection, a
  lock file next to a SQLite database.
- `scheduler`: `JobScheduler`, APScheduler 3 on the wall clock (`gasbill serve`).
- `tick`: `TickRunner`, every job once at an injected time (the demo, tests).
"""

from gasbill.jobs.leader import Leadership, leadership_for
from gasbill.jobs.registry import JOBS, Job, JobBoard, JobContext, JobRun, JobStats, Skipped
from gasbill.jobs.scheduler import JobScheduler
from gasbill.jobs.tick import TickRunner

__all__ = [
    "JOBS",
    "Job",
    "JobBoard",
    "JobContext",
    "JobRun",
    "JobScheduler",
    "JobStats",
    "Leadership",
    "Skipped",
    "TickRunner",
    "leadership_for",
]
