"""Billing throughput: a month of daily readings for many accounts, through the real service.

    .venv/bin/python bench/billing.py [--accounts 10000] [--days 30] [--batch 500]
        [--workers 2] [--postgres URL] [--skip-sqlite]

Bills the same readings into PostgreSQL and into SQLite with
`service.billing.bill_accounts` (batched: one transaction per batch of
accounts; on PostgreSQL the batches shared by `--workers` processes, as
gasbill's worker processes share the inbox) and, in the same run, rates them
with the pure core alone as the baseline. Prints meter-days/s for each, per
core-second (the billing processes' CPU plus their PostgreSQL backends',
read from /proc, so a loaded machine gives comparable figures) and the
ratios. Target: >= 40,000 meter-days/s into PostgreSQL. PostgreSQL defaults
to a `gasbill_bench` database on 127.0.0.1 (created and migrated if
missing; emptied each run).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import SQLModel

from gasbill.adapters.db import tables
from gasbill.adapters.db.engine import make_engine, normalise_url
from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.rating import FrozenReading, RatingContext
from gasbill.service.billing import bill_accounts

ROOT = Path(__file__).resolve().parent.parent
TARIFF = "beijing-residential"
ZONE = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2025, 3, 1)
COMPANY = "1001"


def fleet(accounts: int, days: int) -> list[list[tuple[datetime, int]]]:
    """Per account, daily freezes at local midnight: (time, register in litres)."""
    rng = random.Random(42)
    out = []
    for _ in range(accounts):
        register = rng.randint(0, 5_000_000)
        series = []
        for offset in range(days + 1):
            day = FIRST_DAY + timedelta(days=offset)
            series.append(
                (datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC), register)
            )
            register += rng.randint(300, 4_000)
        out.append(series)
    return out


def load(engine: sa.Engine, data: list[list[tuple[datetime, int]]]) -> list[int]:
    """Accounts, meters, bindings, ledger accounts and readings, inserted in bulk."""
    now = datetime.now(UTC)
    t = tables
    with engine.begin() as conn:
        conn.execute(
            sa.insert(t.Customer),
            [{"id": 1, "name": "bench", "phone": "", "address": "", "created_at": now}],
        )
        ids = list(range(1, len(data) + 1))
        conn.execute(
            sa.insert(t.Account),
            [
                {
                    "id": i,
                    "number": f"B{i:07d}",
                    "customer_id": 1,
                    "company_no": COMPANY,
                    "billing_mode": "system",
                    "tariff_id": TARIFF,
                    "persons": 3,
                    "opened_on": FIRST_DAY,
                    "warning_fen": 2000,
                    "cutoff_fen": 0,
                    "reopen_fen": 0,
                    "status": "active",
                    "created_at": now,
                }
                for i in ids
            ],
        )
        conn.execute(
            sa.insert(t.Meter),
            [
                {"id": i, "company_no": COMPANY, "comm_no": f"{i:014d}", "created_at": now}
                for i in ids
            ],
        )
        conn.execute(
            sa.insert(t.MeterBinding),
            [
                {
                    "account_id": i,
                    "meter_id": i,
                    "bound_at": series[0][0],
                    "opening_litres": series[0][1],
                    "reason": "bench",
                }
                for i, series in zip(ids, data, strict=True)
            ],
        )
        # every row with the same keys: an executemany takes its columns from the first row
        ledger_rows = [
            {
                "code": "revenue:gas",
                "kind": "revenue",
                "account_id": None,
                "keeps_balance": False,
                "overdraft_allowance_fen": None,
            }
        ]
        for i in ids:
            ledger_rows.append(
                {
                    "code": f"prepaid:{i}",
                    "kind": "prepaid",
                    "account_id": i,
                    "keeps_balance": True,
                    "overdraft_allowance_fen": 0,
                }
            )
            ledger_rows.append(
                {
                    "code": f"meter_credit:{i}",
                    "kind": "meter_credit",
                    "account_id": i,
                    "keeps_balance": True,
                    "overdraft_allowance_fen": None,
                }
            )
        conn.execute(sa.insert(t.LedgerAccount), ledger_rows)
        rows = []
        for i, series in zip(ids, data, strict=True):
            for at, litres in series[1:]:
                rows.append(
                    {
                        "company_no": COMPANY,
                        "meter_comm_no": f"{i:014d}",
                        "data_type": 1,
                        "acquisition_time": at,
                        "data_guid": os.urandom(16),
                        "std_sum": litres,
                        "work_sum": litres,
                        "stored_at": now,
                    }
                )
            if len(rows) >= 20_000:
                conn.execute(sa.insert(t.MeterReading), rows)
                rows = []
        if rows:
            conn.execute(sa.insert(t.MeterReading), rows)
    # planner statistics, as autovacuum keeps them in production (it may be off on a test
    # server): without them the readings query filters every reading of the company
    # instead of looking each meter up, 15 ms -> 9 s a batch once the table is large
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    return ids


def bill_share(url: str, batches: list[list[int]], now: datetime) -> tuple[int, float, float]:
    """One worker process: its batches, each one transaction. Answers the fen billed and
    the CPU seconds it used, its own and its PostgreSQL backends' (read from /proc: the
    server is local), so that a loaded machine still gives comparable figures."""
    engine = make_engine(url)
    backends: set[int] = set()
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _backend(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.add(cursor.fetchone()[0])

    catalog = TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
    billed = sum(
        bill_accounts(UnitOfWork(engine), accounts, catalog=catalog, now=now).charged_fen
        for accounts in batches
    )
    server = sum(_cpu_seconds(pid) for pid in backends)
    engine.dispose()
    return billed, time.process_time(), server


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bill_all(url: str, ids: list[int], batch: int, workers: int) -> tuple[int, float, float]:
    """Batches of accounts, each one transaction, shared by `workers` processes (as the
    inbox workers of several processes share them: each locks only its own accounts).
    Answers the fen billed and the CPU seconds used by the clients and by the server."""
    now = datetime.now(UTC)
    batches = [ids[start : start + batch] for start in range(0, len(ids), batch)]
    shares = [batches[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
        done = list(pool.map(bill_share, [url] * workers, shares, [now] * workers))
    return sum(d[0] for d in done), sum(d[1] for d in done), sum(d[2] for d in done)


def core_only(data: list[list[tuple[datetime, int]]], catalog: TariffCatalog) -> int:
    rater = catalog.rater(TARIFF)
    context = RatingContext(persons=3, opened_on=FIRST_DAY)
    total = 0
    for series in data:
        readings = [FrozenReading(at, litres, litres) for at, litres in series]
        total += rater.rate(readings, context).total_fen
    return total


def prepare_postgres(url: str) -> str:
    target = sa.engine.make_url(normalise_url(url))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    upgrade(target.render_as_string(hide_password=False))
    return target.render_as_string(hide_password=False)


def measure(
    label: str, url: str, data, batch: int, meter_days: int, workers: int
) -> tuple[float, float, int]:
    engine = make_engine(url)
    print(f"{label}: loading {len(data):,} accounts and {meter_days:,} readings …", flush=True)
    ids = load(engine, data)
    engine.dispose()  # the workers are forked: they open their own connections
    started = time.perf_counter()
    total, client, server = bill_all(url, ids, batch, workers)
    seconds = time.perf_counter() - started
    print(
        f"{label}: CPU per meter-day {client / meter_days * 1e6:.1f} µs in gasbill, "
        f"{server / meter_days * 1e6:.1f} µs in the database",
        flush=True,
    )
    return meter_days / seconds, meter_days / (client + server), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "GASBILL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/gasbill_bench"
        ),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="billing worker processes on PostgreSQL (SQLite has one writer: always 1)",
    )
    args = parser.parse_args()
    catalog = TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
    data = fleet(args.accounts, args.days)
    meter_days = args.accounts * args.days
    assert SQLModel.metadata.tables  # the tables module registered them

    started, cpu = time.perf_counter(), time.process_time()
    core_total = core_only(data, catalog)
    core_rate = meter_days / (time.perf_counter() - started)
    core_per_cpu = meter_days / (time.process_time() - cpu)

    results = {}
    pg_url = prepare_postgres(args.postgres)
    results[f"PostgreSQL, {args.workers} workers"] = measure(
        "PostgreSQL", pg_url, data, args.batch, meter_days, args.workers
    )
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            upgrade(url)
            results["SQLite, 1 worker"] = measure("SQLite", url, data, args.batch, meter_days, 1)

    print()
    print(f"{'':<24}  {'meter-days/s':>12}  {'per core-second':>15}  ratio to core")
    print(f"{'pure core (baseline)':<24}: {core_rate:12,.0f}  {core_per_cpu:15,.0f}")
    for label, (rate, per_cpu, total) in results.items():
        if total != core_total:
            raise SystemExit(f"{label} billed {total} fen, the core {core_total} fen")
        print(f"{label:<24}: {rate:12,.0f}  {per_cpu:15,.0f}  {rate / core_rate:6.1%}")
    print(
        f"target: >= 40,000 meter-days/s into PostgreSQL; all billed {core_total / 100:,.2f} yuan"
    )


if __name__ == "__main__":
    main()
