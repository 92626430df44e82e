"""Run seeds of the simulation and print the table of properties: `make reliability`.

    python -m tests.sim.run --seeds 2000 --ops 300             # every property, many seeds
    python -m tests.sim.run --seed 123                          # replay one seed exactly
    python -m tests.sim.run --crash-sites --seeds 20            # every crash site x 20 seeds
    python -m tests.sim.run --jobs 2 ...                        # seeds side by side
    GASBILL_TEST_DATABASE_URL=postgresql://... python -m tests.sim.run ...   # on PostgreSQL

Each seed gets an empty migrated database (SQLite: a copy of a template
file; PostgreSQL: every table emptied). With --jobs N the seeds run in N
processes, each with its own databases (PostgreSQL: `<name>_w1`... beside
the given one); a seed replays the same alone or in any process. Exit status 1 if any property was
violated or a seed could not finish; each failing seed is printed with the
command that replays it.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from gasbill.adapters.db import tables  # noqa: F401  (every table known to the metadata)
from gasbill.adapters.db.engine import make_engine, normalise_url
from gasbill.adapters.db.migrations import upgrade
from gasbill.crashpoints import SITES
from tests.conftest import PG_ENV
from tests.sim.checks import PROPERTIES, Tally
from tests.sim.harness import SETTLE_DAYS, SeedResult, run_seed


class Databases:
    """Empty migrated databases for one worker: SQLite copies of a template file made once,
    or one PostgreSQL database of its own with every table emptied before each seed.

    Worker 0 uses `pg_url` itself (migrated afresh when `prepare`, else as it is); worker
    n > 0 its own database `<name>_wn`, created and migrated on first use.
    """

    def __init__(self, root: Path, pg_url: str | None, worker: int, *, prepare: bool) -> None:
        self.folder = root / f"worker-{worker}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pg_url = pg_url
        if pg_url:
            if worker:
                self.pg_url = _own_database(pg_url, f"_w{worker}")
            if worker or prepare:
                _migrate_afresh(self.pg_url)
            self.engine = make_engine(self.pg_url, pool_size=1)
            self.names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        else:
            self.template = self.folder / "template.db"
            upgrade(f"sqlite:///{self.template}")

    def fresh(self) -> str:
        if self.pg_url:
            with self.engine.begin() as conn:
                # the audit log refuses TRUNCATE (a trigger); a test database may skip triggers
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                conn.execute(sa.text(f"TRUNCATE {self.names} RESTART IDENTITY CASCADE"))
            return self.pg_url
        path = self.folder / "seed.db"
        for stale in self.folder.glob("seed.db*"):  # a crashed seed's -wal and -shm too
            stale.unlink()
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def close(self) -> None:
        if self.pg_url:
            self.engine.dispose()


def _own_database(pg_url: str, suffix: str) -> str:
    url = sa.engine.make_url(normalise_url(pg_url))
    name = f"{url.database}{suffix}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if found is None:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _migrate_afresh(pg_url: str) -> None:
    engine = sa.create_engine(normalise_url(pg_url))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(pg_url)


@dataclass(frozen=True)
class Plan:
    """What every run of a batch shares."""

    ops: int
    settle_days: int = SETTLE_DAYS
    crash_chance: float = 0.5
    crash_limit: int = 3  # crashes at most this many times in a run
    deadline: float | None = None  # time.monotonic(): start no run after it


_worker: Databases | None = None
_plan: Plan | None = None


def _start_worker(root: str, pg_url: str | None, plan: Plan, numbers: Any, prepare: bool) -> None:
    global _worker, _plan
    logging.disable(logging.WARNING)
    _worker = Databases(Path(root), pg_url, numbers.get(), prepare=prepare)
    _plan = plan


def _one(task: tuple[int, str | None]) -> tuple[int, str | None, SeedResult | None]:
    seed, site = task
    assert _worker is not None and _plan is not None
    if _plan.deadline is not None and time.monotonic() > _plan.deadline:
        return seed, site, None
    result = run_seed(
        seed,
        _worker.fresh(),
        ops=_plan.ops,
        crash_site=site,
        settle_days=_plan.settle_days,
        crash_chance=_plan.crash_chance,
        crash_limit=_plan.crash_limit,
    )
    return seed, site, result


def results_of(
    tasks: list[tuple[int, str | None]],
    plan: Plan,
    *,
    pg_url: str | None,
    jobs: int = 1,
    prepare: bool = True,
) -> Iterator[tuple[int, str | None, SeedResult | None]]:
    """Each (seed, crash site) run, in the order given, on `jobs` processes (forked: each
    with its own databases); None for a run the deadline kept from starting. A seed runs
    the same whichever process runs it."""
    global _worker, _plan
    if pg_url and jobs > 1:
        try:  # in the parent, so a server that refuses CREATE DATABASE is met once
            for n in range(1, jobs):
                _own_database(pg_url, f"_w{n}")
        except sa.exc.SQLAlchemyError as exc:
            print(f"one process: no database of its own per process ({exc})", file=sys.stderr)
            jobs = 1
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # no fsync cost per commit
    with tempfile.TemporaryDirectory(prefix="gasbill-sim-", dir=shm) as root:
        if jobs <= 1:
            saved = _worker, _plan
            _worker, _plan = Databases(Path(root), pg_url, 0, prepare=prepare), plan
            try:
                for task in tasks:
                    yield _one(task)
            finally:
                _worker.close()
                _worker, _plan = saved
            return
        context = multiprocessing.get_context("fork")
        numbers = context.Queue()
        for n in range(jobs):
            numbers.put(n)
        with context.Pool(
            jobs, _start_worker, (root, pg_url, plan, numbers, prepare), maxtasksperchild=None
        ) as pool:
            yield from pool.imap(_one, tasks)


def run(
    seeds: list[int],
    *,
    ops: int,
    sites: list[str | None],
    pg_url: str | None,
    settle_days: int = SETTLE_DAYS,
    quiet: bool = False,
    deadline: float | None = None,
    jobs: int = 1,
) -> tuple[Tally, list[SeedResult], dict[str, list[int]]]:
    """Every seed at every site; the tally, the results and, per site, [runs, crashes]."""
    total = Tally()
    results: list[SeedResult] = []
    per_site: dict[str, list[int]] = {}
    # every site gets the same seeds, however early the run stops
    tasks = [(seed, site) for seed in seeds for site in sites]
    plan = Plan(ops, settle_days, deadline=deadline)
    stopped = False
    try:
        for seed, site, result in results_of(tasks, plan, pg_url=pg_url, jobs=jobs):
            if result is None:
                if not stopped:
                    print(f"time is up: stopped at seed {seed}", file=sys.stderr)
                stopped = True
                continue
            total.add(result.tally)
            results.append(result)
            if site is not None:
                row = per_site.setdefault(site, [0, 0, 0])
                row[0] += 1
                row[1] += len(result.crashes)
                row[2] += bool(result.failure or sum(result.tally.violations.values()))
            if not quiet:
                done = f"{result.ops} ops, {len(result.crashes)} crashes"
                print(f"seed {seed} {site or ''}: {done}", file=sys.stderr, flush=True)
            if not quiet and (result.failure or sum(result.tally.violations.values())):
                print(
                    failure_text(result, site, ops, pg_url, settle_days),
                    file=sys.stderr,
                    flush=True,
                )
    except KeyboardInterrupt:  # stopped early: the table of what ran
        print("interrupted: the table counts the runs that finished", file=sys.stderr)
    return total, results, per_site


def failure_text(
    result: SeedResult, site: str | None, ops: int, pg_url: str | None, settle_days: int
) -> str:
    where = f" CRASH={site}" if site else ""
    db = f"{PG_ENV}=... " if pg_url else ""
    replay = f"{db}make reliability SEED={result.seed} OPS={ops} SETTLE={settle_days}{where}"
    lines = [f"seed {result.seed} FAILED; replay: {replay}"]
    lines += [f"  {line}" for line in result.tally.first]
    if result.failure:
        lines.append(f"  harness: {result.failure}")
    return "\n".join(lines)


def table(
    total: Tally,
    results: list[SeedResult],
    per_site: dict[str, list[int]],
    *,
    db: str,
    took: float,
    jobs: int = 1,
) -> str:
    seeds = len({r.seed for r in results})
    ops = sum(r.ops for r in results)
    faults: dict[str, int] = {}
    for r in results:
        for name, n in r.faults.items():
            faults[name] = faults.get(name, 0) + n
    failed = [r.seed for r in results if r.failure or sum(r.tally.violations.values())]
    out = [
        f"database: {db}   runs: {len(results)} ({seeds} seeds)   operations: {ops}   "
        f"crashes: {sum(len(r.crashes) for r in results)}   restarts: "
        f"{sum(r.restarts for r in results)}   failed runs: {len(failed)}   time: {took:.0f} s "
        f"({jobs} process{'es' if jobs > 1 else ''}, {ops / max(took, 1e-9):.1f} operations/s)",
        "",
        f"| {'property':<36} | {'checks':>9} | {'violations':>10} |",
        f"|{'-' * 38}|{'-' * 11}|{'-' * 12}|",
    ]
    for name in PROPERTIES:
        out.append(f"| {name:<36} | {total.checks[name]:>9} | {total.violations[name]:>10} |")
    if per_site:
        out += ["", f"| {'crash site':<24} | {'runs':>5} | {'crashes':>7} | {'failed':>6} |"]
        out.append(f"|{'-' * 26}|{'-' * 7}|{'-' * 9}|{'-' * 8}|")
        for site, (runs, crashes, bad) in per_site.items():
            out.append(f"| {site:<24} | {runs:>5} | {crashes:>7} | {bad:>6} |")
    if faults:
        out.append("")
        out.append("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
    if failed:
        out.append(f"failed seeds: {failed[:20]}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=2000, help="how many seeds (from --first)")
    parser.add_argument("--first", type=int, default=1, help="the first seed")
    parser.add_argument("--seed", type=int, help="run this one seed only (a replay)")
    parser.add_argument("--ops", type=int, default=300, help="operations per seed")
    parser.add_argument("--minutes", type=float, help="start no seed after this many minutes")
    parser.add_argument("--settle", type=int, default=SETTLE_DAYS, help="days run at the end")
    parser.add_argument("--crash", choices=SITES, help="crash at this site")
    parser.add_argument("--crash-sites", action="store_true", help="every crash site in turn")
    parser.add_argument(
        "--jobs", type=int, default=1, help="seeds run side by side in this many processes"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the jobs' own logging: errors still show
    seeds = (
        [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    )
    sites: list[str | None] = list(SITES) if args.crash_sites else [args.crash]
    pg_url = os.environ.get(PG_ENV) or None
    started = time.monotonic()
    total, results, per_site = run(
        seeds,
        ops=args.ops,
        sites=sites,
        pg_url=pg_url,
        settle_days=args.settle,
        deadline=started + args.minutes * 60 if args.minutes else None,
        jobs=args.jobs,
    )
    db = "PostgreSQL" if pg_url else "SQLite"
    print(table(total, results, per_site, db=db, took=time.monotonic() - started, jobs=args.jobs))
    bad = any(r.failure or sum(r.tally.violations.values()) for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
