"""A night of the running system: the real processes, the simulator as the platform, PostgreSQL.

    .venv/bin/python bench/night.py [--meters 1000] [--api-workers 2] [--job-workers 3]
        [--database URL] [--port-base 0] [--keep]

Starts what an operator runs — `gasbill serve --no-scheduler` (an API node),
uvicorn's API worker processes on `gasbill.api.asgi` (the platform pushes
to them), `gasbill worker` job workers, and `gasbill simulate` (the foreign
simulator) as the platform over HTTP — on a fresh PostgreSQL database
(`--database`, `$GASBILL_NIGHT_DATABASE_URL`, default `gasbill_night` on
127.0.0.1). Accounts are opened for every simulated meter: half in meter
mode (the meters hold the prices), half in system mode (a third of those
with no credit, a third with little). Then:

1. Baseline, same run: the same simulated fleet pushes its night to a bare
   endpoint that answers success (the bare push path alone).
2. The night: the fleet pushes its frozen readings to gasbill; the workers
   bill them, decide (warnings, valve commands) and dispatch the commands.
   Readings pushed/s; reading → billed latency p50/p99 (stored_at →
   handled_at); billed meter-days/s; decisions/s; warnings and valve
   commands queued and dispatched per second.
3. A tariff change: the workers restart on a tariff with a new price in
   force (a deployment), queue a `setprice` per meter-mode meter (the campaign), hand
   them over via AddMulti, and the meters confirm them as they wake.
4. Reconciliation of every account (`gasbill reconcile`): accounts/s.

Every figure is also given per core-second: the CPU of every process
started here (with its children) and of the database's backends. Targets
(issue 15): night ≥ 1,000 meter-days/s with p99 ≤ 30 s; campaign ≥ 2,000
commands/s handed over; reconciliation ≥ 50,000 accounts/s.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.accounts import BillingMode
from gasbill.domain.money import Volume
from gasbill.service.accounts import NewAccount, create_customer
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.opening import open_with_payment
from night_parts import (
    BARE_APP,
    BIN,
    CpuMeter,
    Fleet,
    Ports,
    fresh_postgres,
    measured,
    row,
    scalar,
    up,
    wait_until,
)

ZONE = ZoneInfo("Asia/Shanghai")
TARIFF = "night"
TARIFF_TOML = """id = "night"
name = "bench/night.py tariff (illustrative)"
source = "bench/night.py: invented figures"
timezone = "Asia/Shanghai"

[defaults]
thresholds = [300, 600]
cycle_start = 2025-01-01
cycle_months = 12
reset_on_change = false
opening_proration = "none"

[[versions]]
label = "base"
effective_from = 2025-01-01
prices = [3.00, 3.60, 4.50]
"""
CHANGE_TOML = """
[[versions]]
label = "night change"
effective_from = {day}
prices = [3.20, 3.84, 4.80]
"""
JOBS = {
    "inbox": 2,
    "decisions": 3600,
    "campaigns": 1,
    "dispatch": 1,
    "poll_silent": 60,
    "notify": 1,
    "true_up": 3600,
    "audit_anchor": 3600,
}


def write_configs(work: Path, db: str, sim_port: int, api_port: int, args: Any) -> Path:
    tariffs = work / "tariffs"
    tariffs.mkdir()
    (tariffs / f"{TARIFF}.toml").write_text(TARIFF_TOML, encoding="utf-8")
    jobs = "".join(f"[jobs.{n}]\ninterval_seconds = {s}\n" for n, s in JOBS.items())
    config = work / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db}"\n[tariffs]\ndir = "{tariffs}"\n'
        "[push]\nmax_future_minutes = 4000\n"
        f'[platform]\nbase_url = "http://127.0.0.1:{sim_port}/"\npassword = "123456"\n'
        f"[commands]\nbatch_size = {args.batch}\n"
        '[decisions]\ngrace_hours = 0\nquiet_hours_start = ""\nquiet_hours_end = ""\n'
        "[jobs]\nnotify_batch = 1000\n[jobs.reconcile]\nenabled = false\n" + jobs,
        encoding="utf-8",
    )
    return config


def sim_config(work: Path, name: str, args: Any, start: datetime, push_port: int) -> Path:
    path = work / f"{name}.toml"
    path.write_text(
        f'meters = {args.meters}\nseed = 15\nstart = "{start.isoformat()}"\n'
        f'[push]\nurl = "http://127.0.0.1:{push_port}/"\nconcurrency = {args.push_concurrency}\n',
        encoding="utf-8",
    )
    return path


def simulate(fleet: Fleet, name: str, config: Path, port: int) -> httpx.Client:
    fleet.start(
        name,
        [
            str(BIN / "gasbill"),
            "simulate",
            "--port",
            str(port),
            "--speed",
            "0",
            "--config",
            str(config),
        ],
    )
    up(f"http://127.0.0.1:{port}/_sim/clock", fleet)
    return httpx.Client(base_url=f"http://127.0.0.1:{port}/_sim", timeout=3600)


def advance(sim: httpx.Client, until: datetime) -> None:
    sim.post("/clock/advance", json={"until": until.isoformat()}).raise_for_status()


def uvicorn(fleet: Fleet, name: str, target: list[str], port: int, workers: int, cwd: Path) -> None:
    fleet.start(
        name,
        [
            str(BIN / "uvicorn"),
            *target,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=cwd,
    )


def pushes(sim: httpx.Client) -> tuple[int, int]:
    """Pushes the simulator has delivered so far: all of them, and its meters' uplinks
    (readings, alarms, events: one push each); the rest are command reports."""
    summary = sim.get("/summary").json()
    return summary["pushes_delivered"], summary["readings"] + summary["alarms"] + summary["events"]


def night_pushes(sim: httpx.Client, until: datetime, meter: CpuMeter) -> dict:
    """Advance the simulator through the night, timed: its pushes, uplinks and reports."""
    delivered, uplinks = pushes(sim)
    with measured(meter) as took:
        advance(sim, until)
    delivered_after, uplinks_after = pushes(sim)
    uplinks = uplinks_after - uplinks
    return {"uplinks": uplinks, "reports": delivered_after - delivered - uplinks, **took}


def baseline(work: Path, ports: Ports, args: Any, start: datetime, until: datetime) -> dict:
    """The same fleet's night pushed to a bare endpoint: the push path alone (the days
    before it untimed), served as gasbill's is, by `--api-workers` uvicorn worker
    processes. Its meters take no commands, so it pushes no command reports: gasbill's
    night is set against it on the uplinks, the pushes both receive."""
    fleet = Fleet(work, {**os.environ})
    (work / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
    try:
        bare = ports.take()
        uvicorn(fleet, "bare", ["bare_app:app"], bare, args.api_workers, work)
        up(f"http://127.0.0.1:{bare}/docs", fleet)
        port = ports.take()
        sim = simulate(fleet, "sim-bare", sim_config(work, "bare", args, start, bare), port)
        advance(sim, until - timedelta(days=1))
        took = night_pushes(sim, until, CpuMeter(fleet, None))
        sim.close()
    finally:
        fleet.stop()
    return took


def open_accounts(db: str, sim: httpx.Client, config: Path, start: datetime, n: int) -> None:
    """One account per meter at its register now: half in meter mode (their meters hold the
    prices: the tariff change's campaign), half in system mode, of which a third with no
    credit (a valve closed after the night), a third with little (a warning)."""
    engine = make_engine(db)
    catalog = TariffCatalog(config.parent / "tariffs", "Asia/Shanghai")
    policy = CommandPolicy()
    comm_nos = sim.get("/meters").json()
    comm_nos = comm_nos["comm_nos"] if isinstance(comm_nos, dict) else comm_nos

    def one(i: int) -> None:
        comm_no = comm_nos[i]
        register = Decimal(str(sim.get(f"/meters/{comm_no}").json()["std_sum"]))
        customer = create_customer(UnitOfWork(engine), name=f"household {i}", actor="bench")
        assert customer.id is not None
        open_with_payment(
            UnitOfWork(engine),
            NewAccount(
                customer_id=customer.id,
                number=f"N{i:07d}",
                company_no="1001",
                billing_mode=BillingMode.SYSTEM if i % 2 else BillingMode.METER,
                tariff_id=TARIFF,
                opened_on=start.astimezone(ZONE).date(),
                meter_comm_no=comm_no,
                opening_register=Volume(register),
                bound_at=start,
                persons=3,
            ),
            initial_fen=(0, 1_000, 100_000)[i // 2 % 3] if i % 2 else 100_000,
            channel="counter",
            idempotency_key=f"open-{i}",
            actor="bench",
            now=start,
            catalog=catalog,
            policy=policy,
        )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(min(n, len(comm_nos)))))
    engine.dispose()


def start_workers(fleet: Fleet, config: Path, count: int) -> None:
    for k in range(count):
        fleet.start(f"worker-{k}", [str(BIN / "gasbill"), "worker", "--config", str(config)])


def quiet(
    engine: sa.Engine, sql: str, fleet: Fleet, still: float = 10, timeout: float = 900
) -> None:
    """Wait until what `sql` counts has not moved for `still` seconds (a meter that did not
    wake in the day answers the next)."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        fleet.check()
        count = scalar(engine, sql)
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= still:
            return
        time.sleep(0.25)


def settled(engine: sa.Engine, sql: str, timeout: float, fleet: Fleet) -> float:
    """Wait until `sql` counts nothing left; the wall time it took."""
    started = time.perf_counter()

    def done() -> bool:
        fleet.check()
        return scalar(engine, sql) == 0

    wait_until(sql, done, timeout, every=0.25)
    return time.perf_counter() - started


NIGHT_SQL = """WITH night AS (SELECT * FROM billing_inbox WHERE stored_at >= :since)
    SELECT count(*) FILTER (WHERE outcome LIKE 'billed%') AS billed, count(*) AS stored,
    extract(epoch FROM max(handled_at) - min(stored_at)) AS window,
    extract(epoch FROM max(handled_at) - max(stored_at)) AS after_last,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM handled_at - stored_at)) AS p50,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM handled_at - stored_at)) AS p99
    FROM night"""
WARNINGS_SQL = """SELECT count(*), count(delivered_at),
    extract(epoch FROM max(delivered_at) - min(at)) FROM warning WHERE at >= :since"""
VALVES_SQL = """SELECT count(*), count(sent_at),
    extract(epoch FROM max(sent_at) - min(created_at)) FROM command
    WHERE ctrl_type LIKE '%valve%' AND created_at >= :since"""
UNDONE = {
    "inbox": "SELECT count(*) FROM billing_inbox WHERE handled_at IS NULL",
    "valves": "SELECT count(*) FROM command WHERE ctrl_type LIKE '%valve%' "
    "AND status IN ('queued', 'sending')",
    "warnings": "SELECT count(*) FROM warning WHERE delivered_at IS NULL AND given_up_at IS NULL",
}
SETPRICE = "FROM command c WHERE ctrl_type LIKE '%setprice%'"
# a setprice waiting behind its meter's unanswered command (one at a time per meter)
BLOCKED = """count(*) FILTER (WHERE status = 'queued' AND EXISTS (SELECT 1 FROM command o
    WHERE o.meter_id = c.meter_id AND o.id <> c.id AND o.status IN ('sending', 'sent')))"""


class Report:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def add(self, label: str, figure: str, per_core: float | None = None) -> None:
        self.lines.append((label, figure, "" if per_core is None else f"{per_core:,.0f}"))

    def rate(self, label: str, count: float, seconds: float, cpu: float, unit: str = "/s") -> float:
        rate = count / seconds if seconds > 0 else 0.0
        self.add(
            label,
            f"{rate:,.0f}{unit} ({count:,.0f} in {seconds:,.1f} s)",
            count / cpu if cpu > 0 else None,
        )
        return rate

    def print(self) -> None:
        print(f"\n{'':<46} {'figure':<34} per core-second")
        for label, figure, per_core in self.lines:
            print(f"{label:<46} {figure:<34} {per_core}")


def the_night(
    engine: sa.Engine, sim: httpx.Client, fleet: Fleet, until: datetime, report: Report, base: dict
) -> None:
    since = datetime.now(UTC)
    push = night_pushes(sim, until, CpuMeter(fleet, engine))
    with measured(CpuMeter(fleet, engine)) as rest:
        for sql in UNDONE.values():
            settled(engine, sql, 900, fleet)
    cpu = push["cpu"] + rest["cpu"]
    base_rate = report.rate(
        "baseline: uplinks pushed to a bare endpoint", base["uplinks"], base["wall"], base["cpu"]
    )
    wall, push_cpu = push["wall"], push["cpu"]
    rate = report.rate("uplinks pushed to gasbill", push["uplinks"], wall, push_cpu)
    report.add("  ratio to the baseline", f"{rate / base_rate:.1%}" if base_rate else "-")
    report.rate("  and command reports pushed to gasbill", push["reports"], wall, push_cpu)
    night = row(engine, NIGHT_SQL, since=since)
    report.add("reading → billed latency", f"p50 {night.p50:.1f} s, p99 {night.p99:.1f} s")
    report.add("last billed after the last push", f"{night.after_last:.1f} s")
    report.rate("billed meter-days", night.billed, float(night.window), cpu)
    warnings, delivered, w_window = row(engine, WARNINGS_SQL, since=since)
    valves, sent, v_window = row(engine, VALVES_SQL, since=since)
    report.rate(
        "decisions made (warnings + valve commands)", warnings + valves, float(night.window), cpu
    )
    report.rate(f"warnings: {warnings:,} queued, delivered", delivered, float(w_window or 0), cpu)
    report.rate(f"valve commands: {valves:,} queued, dispatched", sent, float(v_window or 0), cpu)
    report.add("CPU while pushed to, by process", _roles(push["by_role"]))
    report.add("  the baseline's", _roles(base["by_role"]))


def _roles(spent: dict[str, float]) -> str:
    """CPU seconds by process, the most first: where the night's time went."""
    return ", ".join(
        f"{role} {used:.1f} s" for role, used in sorted(spent.items(), key=lambda r: -r[1])
    )


def tariff_change(
    engine: sa.Engine,
    sim: httpx.Client,
    fleet: Fleet,
    config: Path,
    args: Any,
    until: datetime,
    report: Report,
) -> None:
    fleet.stop("worker")
    day = datetime.now(UTC).astimezone(ZONE).date()
    with (config.parent / "tariffs" / f"{TARIFF}.toml").open("a", encoding="utf-8") as handle:
        handle.write(CHANGE_TOML.format(day=day.isoformat()))
    accounts = scalar(engine, "SELECT count(*) FROM account WHERE billing_mode = 'meter'")
    marks: dict[str, float] = {}
    counts: dict[str, int] = {}
    meter = CpuMeter(fleet, engine)
    before = meter.snapshot()
    start_workers(fleet, config, args.job_workers)

    def progress() -> bool:  # timed from the campaign's creation (not the workers' start)
        fleet.check()
        if "campaign" not in marks and scalar(engine, "SELECT count(*) FROM campaign"):
            marks["campaign"] = time.perf_counter()
        queued, sent, blocked = row(
            engine, f"SELECT count(*), count(sent_at), {BLOCKED} {SETPRICE}"
        )
        for name, count in (("queued", queued), ("sent", sent + blocked)):
            if count >= accounts and name not in marks and "campaign" in marks:
                marks[name] = time.perf_counter() - marks["campaign"]
                counts[name] = queued if name == "queued" else sent
        return len(marks) == 3

    wait_until("setprice queued and sent", progress, 900, every=0.1)
    cpu = meter.since(before)
    report.rate("tariff change: setprice queued", counts["queued"], marks["queued"], cpu)
    report.rate("  handed over via AddMulti", counts["sent"], marks["sent"], cpu)
    with measured(meter) as confirm:
        advance(sim, until)
        quiet(engine, f"SELECT count(*) {SETPRICE} AND status = 'done'", fleet)
    done = scalar(engine, f"SELECT count(*) {SETPRICE} AND status = 'done'")
    report.rate(
        "  confirmed by the meters (a day's wakes)", done, confirm["wall"] - 10, confirm["cpu"]
    )


def reconciliation(engine: sa.Engine, fleet: Fleet, config: Path, report: Report) -> None:
    """`gasbill reconcile` of every account, less what the command costs on no account
    (`--company` of none: its start, its imports, its connection), measured the same way."""
    accounts = scalar(engine, "SELECT count(*) FROM account")
    empty = reconcile_run(engine, fleet, config, ["--company", "none"])
    every = reconcile_run(engine, fleet, config, [])
    report.rate("reconciliation: gasbill reconcile, all", accounts, every[0], every[1])
    report.rate(
        "  less the command's cost on no account",
        accounts,
        every[0] - empty[0],
        every[1] - empty[1],
    )


def reconcile_run(
    engine: sa.Engine, fleet: Fleet, config: Path, extra: list[str]
) -> tuple[float, float]:
    meter = CpuMeter(fleet, engine)
    before, seen = meter.snapshot(), {}
    started = time.perf_counter()
    process = fleet.start(
        "reconcile",
        [
            str(BIN / "gasbill"),
            "reconcile",
            *extra,
            "--format",
            "json",
            "--output",
            str(config.parent / "reconcile.json"),
            "--config",
            str(config),
        ],
    )
    while process.poll() is None:  # sampled: its backend's CPU is gone once it ends
        seen |= meter.snapshot()
        time.sleep(0.1)
    wall = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise SystemExit(f"gasbill reconcile failed ({process.returncode})")
    seen |= {p: c for p, c in meter.snapshot().items() if p not in seen}
    cpu = sum(max(0.0, c - before.get(p, 0.0)) for p, c in seen.items())
    fleet.processes = [(n, p) for n, p in fleet.processes if n != "reconcile"]
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1_000)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--job-workers", type=int, default=3)
    parser.add_argument("--push-concurrency", type=int, default=32, help="the platform's pushes")
    parser.add_argument("--batch", type=int, default=100, help="[commands] batch_size (AddMulti)")
    parser.add_argument("--port-base", type=int, default=0, help="first port to use (0: any)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and configs")
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "GASBILL_NIGHT_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/gasbill_night"
        ),
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gasbill-night-"))
    ports = Ports(args.port_base)
    now = datetime.now(UTC).replace(microsecond=0)
    # two days for the openings (openaccount, then the baseline read, one per wake), the night
    start, night_end, day_end = now - timedelta(hours=72), now, now + timedelta(hours=24)
    print(
        f"night of {args.meters:,} meters: {args.api_workers} API worker processes, "
        f"{args.job_workers} job workers; load average {os.getloadavg()}; logs in {work}"
    )
    base = baseline(work, ports, args, start, night_end)
    db = fresh_postgres(args.database)
    engine = make_engine(db)
    sim_port, api_port, serve_port = ports.take(), ports.take(), ports.take()
    config = write_configs(work, db, sim_port, api_port, args)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GASBILL_")}
    fleet = Fleet(
        work,
        {**env, "GASBILL_CONFIG": str(config), "GASBILL_APP__SECRET_KEY": secrets.token_hex(32)},
    )
    report = Report()
    try:
        sim = simulate(fleet, "sim", sim_config(work, "sim", args, start, api_port), sim_port)
        open_accounts(db, sim, config, start, args.meters)
        uvicorn(
            fleet,
            "api",
            ["--factory", "gasbill.api.asgi:api_from_environment"],
            api_port,
            args.api_workers,
            work,
        )
        fleet.start(
            "serve",
            [
                str(BIN / "gasbill"),
                "serve",
                "--no-scheduler",
                "--port",
                str(serve_port),
                "--config",
                str(config),
            ],
        )
        start_workers(fleet, config, args.job_workers)
        for port in (api_port, serve_port):
            up(f"http://127.0.0.1:{port}/health", fleet)
        for day in (2, 1):  # the meters take their openings, and gasbill its baselines
            advance(sim, night_end - timedelta(days=day))
            settled(
                engine,
                "SELECT count(*) FROM command WHERE status IN ('queued', 'sending')",
                900,
                fleet,
            )
            settled(engine, UNDONE["inbox"], 900, fleet)
        the_night(engine, sim, fleet, night_end, report, base)
        tariff_change(engine, sim, fleet, config, args, day_end, report)
        reconciliation(engine, fleet, config, report)
        sim.close()
    finally:
        fleet.stop()
        engine.dispose()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report.print()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
