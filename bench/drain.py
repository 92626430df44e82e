"""Billing's sustained rate through the real jobs: `gasbill worker` processes bill a night.

    .venv/bin/python bench/drain.py [--meters 20000] [--job-workers 3]
        [--database URL] [--port-base 0]

`bench/night.py` drives the whole system over HTTP, but opening each account
through the service and the simulator's pushes bound it to a few thousand
meters here. This bench loads the accounts in bulk instead (system mode,
bench/billing.py's loader, each with its first day billed), stores the
night's frozen reading of every meter with its billing-inbox row as a push
would (all at once, the worst of a night's arrivals) while `--job-workers`
`gasbill worker` processes run — the real inbox job: row claims, billing,
decisions after it — and times them until the inbox is empty. Prints billed
meter-days/s, per core-second (the workers and their PostgreSQL backends,
from /proc), reading → billed p50 and p99 (mostly the wait in the queue)
and, as the
same-run baseline, `bill_accounts` on the same night called directly in one
process (billing alone, no jobs). Target (issue 15): ≥ 1,000 meter-days/s
sustained, p99 ≤ 30 s.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from billing import COMPANY, ROOT, bill_share, fleet, load
from gasbill.adapters.db import tables
from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.ledger import AccountCode, Transfer, TransferKind
from night_parts import BIN, CpuMeter, Fleet, Ports, fresh_postgres, measured, row, scalar

LATENCY_SQL = """SELECT count(*) FILTER (WHERE outcome LIKE 'billed%') AS billed,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM handled_at - stored_at)) AS p50,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM handled_at - stored_at)) AS p99
    FROM billing_inbox WHERE stored_at >= :since"""
PENDING = "SELECT count(*) FROM billing_inbox WHERE handled_at IS NULL"


def waiting_for_workers(engine: sa.Engine, workers: Fleet, count: int, accounts: int) -> None:
    """Until every worker listens for new readings (its jobs have started: a worker's
    start-up, mostly imports, is no part of billing) and the leader's first decision
    sweep has decided every account, and a moment. Every timer runs once when the
    workers start; a night's workers have been up for hours, so the sweep (hourly)
    is not part of it: a sweep's cost is measured apart, by the decisions' figures."""
    listening = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE 'LISTEN%'"
    )
    while scalar(engine, listening) < count:
        workers.check()
        time.sleep(0.2)
    swept = "SELECT count(*) FROM decision_state WHERE decided_at IS NOT NULL"
    started = time.perf_counter()
    while scalar(engine, swept) < accounts:
        workers.check()
        time.sleep(0.5)
    print(
        f"the workers' first decision sweep ({accounts:,} accounts) ended "
        f"{time.perf_counter() - started:.1f} s after they listened",
        flush=True,
    )
    time.sleep(3)


def the_night(engine: sa.Engine, data: list[list[tuple[datetime, int]]], stored: datetime) -> None:
    """Each meter's next frozen reading (a day after its last), and its inbox row."""
    readings, inbox = [], []
    for i, series in enumerate(data, start=1):
        at, litres = series[-1]
        at, litres = at + timedelta(days=1), litres + 1_000 + i % 2_000
        comm_no = f"{i:014d}"
        readings.append(
            {
                "company_no": COMPANY,
                "meter_comm_no": comm_no,
                "data_type": 1,
                "acquisition_time": at,
                "data_guid": os.urandom(16),
                "std_sum": litres,
                "work_sum": litres,
                "stored_at": stored,
            }
        )
        inbox.append(
            {
                "company_no": COMPANY,
                "meter_comm_no": comm_no,
                "acquisition_time": at,
                "stored_at": stored,
                "outcome": "",
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(readings), 20_000):
            conn.execute(sa.insert(tables.MeterReading), readings[start : start + 20_000])
            conn.execute(sa.insert(tables.BillingInbox), inbox[start : start + 20_000])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


def fund(engine: sa.Engine, ids: list[int], at: datetime) -> None:
    """A payment into every account, enough for years: tonight's decisions find nothing to
    do, as on a night when few balances cross a threshold (night.py has them cross)."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(tables.LedgerAccount),
            [{"code": "cash:bench", "kind": "cash", "account_id": None, "keeps_balance": False}],
        )
    cash = AccountCode.cash("bench")
    for start in range(0, len(ids), 1000):
        uow = UnitOfWork(engine)
        with uow:
            uow.ledger.record_many(
                [
                    Transfer(
                        id=str(uuid.uuid4()),
                        idempotency_key=f"fund-{i}",
                        debit_account=cash,
                        credit_account=AccountCode.prepaid(str(i)),
                        amount=10_000_000,
                        kind=TransferKind.PAYMENT,
                        effective_at=at,
                        recorded_at=at,
                    )
                    for i in ids[start : start + 1000]
                ]
            )
            uow.commit()


def write_config(work: Path, db: str, platform_port: int) -> Path:
    config = work / "config.toml"
    jobs = "".join(
        f"[jobs.{name}]\ninterval_seconds = {seconds}\n"
        for name, seconds in {"inbox": 1, "decisions": 3600, "true_up": 3600}.items()
    )
    config.write_text(
        f'[database]\nurl = "{db}"\n[tariffs]\ndir = "{ROOT / "tariffs"}"\n'
        # nothing listens there: commands the decisions queue wait, as in an outage
        f'[platform]\nbase_url = "http://127.0.0.1:{platform_port}/"\npassword = "123456"\n'
        '[decisions]\ngrace_hours = 0\nquiet_hours_start = ""\nquiet_hours_end = ""\n'
        "[jobs.reconcile]\nenabled = false\n" + jobs,
        encoding="utf-8",
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--job-workers", type=int, default=3)
    parser.add_argument("--port-base", type=int, default=0, help="first port to use (0: any)")
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "GASBILL_DRAIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/gasbill_drain"
        ),
    )
    args = parser.parse_args()
    print(
        f"a night of {args.meters:,} meters billed by {args.job_workers} gasbill workers; "
        f"load average {os.getloadavg()}",
        flush=True,
    )
    data = fleet(args.meters, 1)
    work = Path(tempfile.mkdtemp(prefix="gasbill-drain-"))
    ports = Ports(args.port_base)
    try:
        for label in ("baseline", "workers"):
            db = fresh_postgres(args.database)
            engine = make_engine(db)
            ids = load(engine, data)
            fund(engine, ids, data[0][0][0])
            bill_share(db, [ids[s : s + 500] for s in range(0, len(ids), 500)], datetime.now(UTC))
            if label == "baseline":
                the_night(engine, data, datetime.now(UTC))
                started, cpu = time.perf_counter(), time.process_time()
                _billed, client, server = bill_share(
                    db, [ids[s : s + 1000] for s in range(0, len(ids), 1000)], datetime.now(UTC)
                )
                base_wall = time.perf_counter() - started
                base_cpu = client + server - cpu
                print(
                    f"baseline: bill_accounts on the night, one process: "
                    f"{args.meters / base_wall:,.0f} meter-days/s, "
                    f"{args.meters / base_cpu:,.0f} per core-second "
                    f"({1e3 * base_cpu / args.meters:.2f} ms of CPU a meter-day, "
                    f"{1e3 * server / args.meters:.2f} ms of it PostgreSQL's)",
                    flush=True,
                )
                engine.dispose()
                continue
            config = write_config(work, db, ports.take())
            env = {k: v for k, v in os.environ.items() if not k.startswith("GASBILL_")}
            workers = Fleet(
                work,
                {
                    **env,
                    "GASBILL_CONFIG": str(config),
                    "GASBILL_APP__SECRET_KEY": secrets.token_hex(32),
                },
            )
            meter = CpuMeter(workers, engine)
            try:
                for k in range(args.job_workers):
                    command = [str(BIN / "gasbill"), "worker", "--config", str(config)]
                    workers.start(f"worker-{k}", command)
                waiting_for_workers(engine, workers, args.job_workers, len(ids))
                with measured(meter) as took:
                    stored = datetime.now(UTC)
                    the_night(engine, data, stored)
                    while scalar(engine, PENDING):
                        workers.check()
                        time.sleep(0.1)
            finally:
                workers.stop()
            night = row(engine, LATENCY_SQL, since=stored)
            print(
                f"gasbill workers: {night.billed:,} meter-days billed in {took['wall']:.1f} s: "
                f"{night.billed / took['wall']:,.0f} meter-days/s, "
                f"{night.billed / took['cpu']:,.0f} per core-second "
                f"({1e3 * took['cpu'] / max(night.billed, 1):.2f} ms of CPU a meter-day, "
                f"{1e3 * took['database_cpu'] / max(night.billed, 1):.2f} ms of it PostgreSQL's); "
                f"reading → billed p50 {night.p50:.1f} s, p99 {night.p99:.1f} s",
                flush=True,
            )
            engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
