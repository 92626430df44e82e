"""Run seeds of the simulation and print the table of properties: `make reliability`.

    python -m tests.sim.run --seeds 2000 --ops 300             # every property, many seeds
    python -m tests.sim.run --seed 123                          # replay one seed exactly
    python -m tests.sim.run --crash-sites --seeds 20            # every crash site x 20 seeds
    GASBILL_TEST_DATABASE_URL=postgresql://... python -m tests.sim.run ...   # on PostgreSQL

Each seed gets an empty migrated database (SQLite: a copy of a template
file; PostgreSQL: every table emptied). Exit status 1 if any property was
violated or a seed could not finish; each failing seed is printed with the
command that replays it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def databases(pg_url: str | None) -> Iterator[object]:
    """A factory of empty migrated databases: SQLite copies of a template, or PostgreSQL."""
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # no fsync cost per commit
    with tempfile.TemporaryDirectory(prefix="gasbill-sim-", dir=shm) as tmp:
        if pg_url:
            engine = sa.create_engine(normalise_url(pg_url))
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
            engine.dispose()
            upgrade(pg_url)

            def fresh(seed: int) -> str:
                engine = make_engine(pg_url)
                names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
                with engine.begin() as conn:
                    conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                    conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                engine.dispose()
                return pg_url

        else:
            template = Path(tmp) / "template.db"
            upgrade(f"sqlite:///{template}")

            def fresh(seed: int) -> str:
                path = Path(tmp) / "seed.db"
                shutil.copyfile(template, path)
                return f"sqlite:///{path}"

        yield fresh


def run(
    seeds: list[int],
    *,
    ops: int,
    sites: list[str | None],
    pg_url: str | None,
    settle_days: int = SETTLE_DAYS,
    quiet: bool = False,
    deadline: float | None = None,
) -> tuple[Tally, list[SeedResult], dict[str, list[int]]]:
    """Every seed at every site; the tally, the results and, per site, [runs, crashes]."""
    total = Tally()
    results: list[SeedResult] = []
    per_site: dict[str, list[int]] = {}
    with databases(pg_url) as fresh:
        try:
            _each(
                seeds,
                ops,
                sites,
                pg_url,
                settle_days,
                quiet,
                fresh,
                total,
                results,
                per_site,
                deadline,
            )
        except KeyboardInterrupt:  # stopped early: the table of what ran
            print("interrupted: the table counts the runs that finished", file=sys.stderr)
    return total, results, per_site


def _each(
    seeds: list[int],
    ops: int,
    sites: list[str | None],
    pg_url: str | None,
    settle_days: int,
    quiet: bool,
    fresh: Any,
    total: Tally,
    results: list[SeedResult],
    per_site: dict[str, list[int]],
    deadline: float | None,
) -> None:
    for seed in seeds:  # every site gets the same seeds, however early the run stops
        if deadline is not None and time.monotonic() > deadline:
            print(f"time is up: stopped before seed {seed}", file=sys.stderr)
            return
        for site in sites:
            url = fresh(seed)
            result = run_seed(seed, url, ops=ops, crash_site=site, settle_days=settle_days)
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
    total: Tally, results: list[SeedResult], per_site: dict[str, list[int]], *, db: str, took: float
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
        f"{sum(r.restarts for r in results)}   failed runs: {len(failed)}   time: {took:.0f} s",
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
    )
    db = "PostgreSQL" if pg_url else "SQLite"
    print(table(total, results, per_site, db=db, took=time.monotonic() - started))
    bad = any(r.failure or sum(r.tally.violations.values()) for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
