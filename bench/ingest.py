"""Ingest throughput: pushes over HTTP, and bulk import.

    .venv/bin/python bench/ingest.py [--requests 20000] [--concurrency 64] [--workers 2]
        [--rows 100000] [--postgres URL] [--skip-sqlite]

(a) One reading per request to `POST /api/Data/MeterData/Add`, over
    keep-alive connections with 64 requests in flight, against our real app
    served by uvicorn on PostgreSQL and on SQLite; in the same run the same
    load against a bare FastAPI endpoint that returns a constant, as the
    baseline. Prints requests/s, p50/p99 latency and the ratio.
(b) `gasbill import readings`' service on a generated CSV: rows/s.

Targets on this 2-core machine, PostgreSQL: push >= 2,000 readings/s with
p99 <= 100 ms; bulk import >= 20,000 readings/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from gasbill.adapters.db.engine import make_engine, normalise_url
from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.import_file import records
from gasbill.adapters.platform.jsontext import dumps_exact
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.service.importer import import_readings
from gasbill.service.ingest import IngestPolicy

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"company_no": "1001", "data_api_key": "496d1bac094f11e79d9c0a0027000010"}
BASE_TIME = datetime(2025, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))

BARE_APP = """
from fastapi import FastAPI, Request, Response
app = FastAPI()
@app.post("/api/Data/MeterData/Add")
async def add(request: Request) -> Response:
    await request.body()
    return Response('{"Data":"LA6owvN3SECEP2zL2fkYxg==","State":"success","Message":""}',
                    media_type="application/json")
"""

# the real app as API worker processes serve it (gasbill.api.asgi)
REAL_APP = """
from gasbill.api.asgi import api_from_environment
app = api_from_environment()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(
    app_source: str, workdir: Path, env: dict[str, str], workers: int
) -> tuple[subprocess.Popen[bytes], str]:
    (workdir / "bench_app.py").write_text(app_source, encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench_app:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=workdir,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.post(url + "/api/Data/MeterData/Add", content=b"{}", headers=KEYS, timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not start")


def reading(i: int) -> bytes:
    """Reading i: 5,000 meters, one frozen reading a day each."""
    day, meter = divmod(i, 5000)
    return dumps_exact(
        {
            "meter_comm_no": f"9{meter:013d}",
            "data_type": 1,
            "acquisition_time": f"{BASE_TIME + timedelta(days=day):%Y-%m-%d %H:%M:%S}",
            "std_sum": Decimal(day * 2500).scaleb(-3),
            "work_sum": Decimal(day * 2600).scaleb(-3),
            "remain_money": Decimal("50.5"),
        }
    ).encode()


async def _connection(
    host: str, port: int, bodies: Iterator[int], latencies: list[float], failures: list[int]
) -> None:
    """One keep-alive HTTP/1.1 connection sending requests one after another (a minimal client:
    the benchmark measures the server, not an HTTP library)."""
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /api/Data/MeterData/Add HTTP/1.1\r\nhost: {host}\r\n"
        f"company_no: {KEYS['company_no']}\r\ndata_api_key: {KEYS['data_api_key']}\r\n"
        "content-type: application/json\r\n"
    )
    try:
        for i in bodies:
            body = reading(i)
            started = time.perf_counter()
            writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            reply = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status or b'"success"' not in reply:
                failures.append(i)
    except (ConnectionError, asyncio.IncompleteReadError):
        failures.append(-1)
    finally:
        writer.close()


async def load(url: str, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    failures: list[int] = []
    bodies = iter(range(requests))
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, int(port), bodies, latencies, failures) for _ in range(concurrency))
    )
    return time.perf_counter() - started, latencies, len(failures)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def push_run(
    label: str, source: str, env: dict[str, str], args: argparse.Namespace
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        process, url = serve(source, Path(tmp), env, args.workers)
        try:
            asyncio.run(load(url, min(2000, args.requests), args.concurrency))  # warm up
            seconds, latencies, failures = asyncio.run(load(url, args.requests, args.concurrency))
        finally:
            process.terminate()
            process.wait(10)
    rate = args.requests / seconds
    print(
        f"{label:<28} {rate:9,.0f} req/s   p50 {percentile(latencies, 0.5):6.1f} ms   "
        f"p99 {percentile(latencies, 0.99):6.1f} ms   failures {failures}",
        flush=True,
    )
    return {"rate": rate, "p99": percentile(latencies, 0.99)}


def import_run(label: str, url: str, rows: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "history.csv"
        with source.open("w", encoding="utf-8") as handle:
            handle.write("meter_comm_no,data_type,acquisition_time,std_sum,work_sum\n")
            for i in range(rows):
                at = BASE_TIME + timedelta(days=i // 5000)
                litres = i // 5000 * 2500
                handle.write(
                    f"8{i % 5000:013d},1,{at:%Y-%m-%d %H:%M:%S},"
                    f"{Decimal(litres).scaleb(-3)},{Decimal(litres).scaleb(-3)}\n"
                )
        engine = make_engine(url)
        started = time.perf_counter()
        summary = import_readings(
            UnitOfWork(engine),
            "1001",
            records(source),
            IngestPolicy(ZoneInfo("Asia/Shanghai"), parse_time=parse_platform_time),
            batch=5000,
            writers=1 if url.startswith("sqlite") else 2,  # as `gasbill import readings` does
            reject=lambda line, reason: None,
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        seconds = time.perf_counter() - started
        engine.dispose()
    rate = rows / seconds
    print(
        f"{label:<28} {rate:9,.0f} rows/s   (stored {summary.stored:,}, "
        f"rejected {summary.rejected})",
        flush=True,
    )
    return rate


def fresh_postgres(url: str) -> str:
    target = sa.engine.make_url(normalise_url(url))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).first():
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    # write out what the previous run left behind, so it does not weigh on this one
    with (
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        contextlib.suppress(sa.exc.DBAPIError),  # CHECKPOINT needs a superuser
    ):
        conn.execute(sa.text("CHECKPOINT"))
    engine.dispose()
    plain = target.render_as_string(hide_password=False)
    upgrade(plain)
    return plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "GASBILL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/gasbill_bench"
        ),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()

    env = {"GASBILL_TARIFFS__DIR": str(ROOT / "tariffs"), "GASBILL_APP__ENVIRONMENT": "demo"}
    print(
        f"(a) pushes: {args.requests:,} requests, {args.concurrency} in flight, "
        f"{args.workers} server processes"
    )
    baseline = push_run("bare FastAPI (baseline)", BARE_APP, env, args)
    results = {}
    pg = fresh_postgres(args.postgres)
    results["PostgreSQL"] = push_run(
        "gasbill on PostgreSQL", REAL_APP, {**env, "GASBILL_DATABASE__URL": pg}, args
    )
    tmp = tempfile.mkdtemp()
    if not args.skip_sqlite:
        sqlite = f"sqlite:///{tmp}/bench.db"
        upgrade(sqlite)
        results["SQLite"] = push_run(
            "gasbill on SQLite", REAL_APP, {**env, "GASBILL_DATABASE__URL": sqlite}, args
        )
    for label, figures in results.items():
        print(f"ratio {label:<21} {figures['rate'] / baseline['rate']:9.1%} of the bare endpoint")
    print(f"\n(b) bulk import: {args.rows:,} rows")
    import_run("import into PostgreSQL", fresh_postgres(args.postgres), args.rows)
    if not args.skip_sqlite:
        sqlite = f"sqlite:///{tmp}/import.db"
        upgrade(sqlite)
        import_run("import into SQLite", sqlite, args.rows)
    print("targets: push >= 2,000/s with p99 <= 100 ms; import >= 20,000 rows/s (PostgreSQL)")


if __name__ == "__main__":
    main()
