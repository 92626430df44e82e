"""Billing throughput: a month of daily readings for many accounts, through the real service.

    .venv/bin/python bench/billing.py [--accounts 10000] [--days 30] [--batch 500]
        [--postgres URL] [--skip-sqlite]

Bills the same readings into PostgreSQL and into SQLite with
`service.billing.bill_accounts` (batched: one transaction per batch of
accounts) and, in the same run, rates them with the pure core alone as the
baseline. Prints meter-days/s for each and the ratios. Target: >= 20,000
meter-days/s into PostgreSQL. PostgreSQL defaults to a `gasbill_bench`
database on 127.0.0.1 (created and migrated if missing; emptied each run).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
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
        ledger_rows = [{"code": "revenue:gas", "kind": "revenue", "keeps_balance": False}]
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
    return ids


def bill_all(
    engine: sa.Engine, ids: list[int], catalog: TariffCatalog, batch: int, workers: int
) -> int:
    """Batches of accounts, each one transaction, shared by `workers` threads (as the
    inbox workers of several processes share them: each locks only its own accounts)."""
    now = datetime.now(UTC)
    batches = [ids[start : start + batch] for start in range(0, len(ids), batch)]

    def bill(accounts: list[int]) -> int:
        return bill_accounts(UnitOfWork(engine), accounts, catalog=catalog, now=now).charged_fen

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(bill, batches))


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
    label: str, url: str, data, catalog, batch: int, meter_days: int, workers: int
) -> tuple[float, int]:
    engine = make_engine(url)
    print(f"{label}: loading {len(data):,} accounts and {meter_days:,} readings …", flush=True)
    ids = load(engine, data)
    started = time.perf_counter()
    total = bill_all(engine, ids, catalog, batch, workers)
    seconds = time.perf_counter() - started
    engine.dispose()
    return meter_days / seconds, total


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
        help="billing workers on PostgreSQL (SQLite has one writer: always 1)",
    )
    args = parser.parse_args()
    catalog = TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
    data = fleet(args.accounts, args.days)
    meter_days = args.accounts * args.days
    assert SQLModel.metadata.tables  # the tables module registered them

    started = time.perf_counter()
    core_total = core_only(data, catalog)
    core_rate = meter_days / (time.perf_counter() - started)

    results = {}
    pg_url = prepare_postgres(args.postgres)
    results[f"PostgreSQL, {args.workers} workers"] = measure(
        "PostgreSQL", pg_url, data, catalog, args.batch, meter_days, args.workers
    )
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            upgrade(url)
            results["SQLite, 1 worker"] = measure(
                "SQLite", url, data, catalog, args.batch, meter_days, 1
            )

    print()
    print(f"{'pure core (baseline)':<24}: {core_rate:10,.0f} meter-days/s")
    for label, (rate, total) in results.items():
        if total != core_total:
            raise SystemExit(f"{label} billed {total} fen, the core {core_total} fen")
        print(f"{label:<24}: {rate:10,.0f} meter-days/s   ratio to core {rate / core_rate:6.1%}")
    print(
        f"target: >= 20,000 meter-days/s into PostgreSQL; all billed {core_total / 100:,.2f} yuan"
    )


if __name__ == "__main__":
    main()
