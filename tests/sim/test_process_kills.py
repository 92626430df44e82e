"""Real crashes: `gasbill serve` SIGKILLed at random moments, its PostgreSQL connections
terminated under it, while a clerk pays and the simulator (a separate process) pushes
readings and reports; restarted each time, it loses nothing and does nothing twice.

The clerk sends a payment again with the same Idempotency-Key until it is answered,
as a counter would. At the end: the ledger adds up, each account holds exactly the
payments the clerk was told were taken, each billed day is charged once, and each
meter-mode meter holds exactly the top-ups the ledger posted. PostgreSQL only (the
loop itself also holds on SQLite with kills alone: drop the `postgres_url` skip to see);
bounded waits; ports from this work's range.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.cli import app as cli
from gasbill.service.ledger import verify_ledger
from tests.e2e.test_two_processes import GASBILL, STARTUP, spawn, wait_for, write_configs
from tests.sim.checks import counters_agree, frozen_days, ledger_payments

pytestmark = pytest.mark.db
API = "/api/v1"
PORTS = (18310, 18311)  # serve, simulate (reliability's range)
ROUNDS = 6
PASSWORD = "correct horse battery"


@dataclass
class Paid:
    account_id: int
    key: str
    amount_fen: int
    taken: bool | None = None  # None: no answer yet


class Serve:
    """`gasbill serve` as a process that the test kills and starts again."""

    def __init__(self, config: str, port: int, log_dir: Path) -> None:
        self.config, self.port, self.log_dir = config, port, log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def start(self) -> None:
        self.starts += 1
        self.process = spawn(
            [*GASBILL, "serve", "--port", str(self.port), "--config", self.config],
            self.log_dir / f"serve-{self.starts}.log",
        )
        wait_for("gasbill serve", lambda: self.client.get("/health").status_code == 200, STARTUP)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.client.close()


@pytest.fixture
def postgres_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (the issue's case: pg_terminate_backend too)")
    return db_url


@pytest.fixture
def processes(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Serve, httpx.Client]]:
    app_port, sim_port = PORTS
    config, sim_config = write_configs(tmp_path, postgres_url, sim_port)
    added = CliRunner().invoke(
        cli,
        ["user", "add", "clerk", "--role", "clerk", "--password-stdin", "--config", config],
        input=f"{PASSWORD}\n",
    )
    assert added.exit_code == 0, added.output
    simulate = spawn(
        [
            *GASBILL, "simulate", "--port", str(sim_port), "--speed", "0",
            "--push-to", f"http://127.0.0.1:{app_port}/", "--config", sim_config,
        ],
        tmp_path / "simulate.log",
    )  # fmt: skip
    serve = Serve(config, app_port, tmp_path)
    sim = httpx.Client(base_url=f"http://127.0.0.1:{sim_port}", timeout=30)
    try:
        wait_for("gasbill simulate", lambda: sim.get("/_sim/clock").status_code == 200, STARTUP)
        serve.start()
        yield serve, sim
    finally:
        sim.close()
        serve.stop()
        simulate.terminate()
        try:
            simulate.wait(timeout=10)
        except subprocess.TimeoutExpired:
            simulate.kill()


def answered(serve: Serve, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Repeat until gasbill answers (restarting it if it is down); never a 5xx."""
    for _ in range(30):
        try:
            response = serve.client.request(method, API + path, **kwargs)
        except httpx.TransportError:
            if serve.process is not None and serve.process.poll() is not None:
                serve.start()
            time.sleep(0.3)
            continue
        if response.status_code >= 500:
            time.sleep(0.3)  # its connection was terminated under it: asked again
            continue
        return response
    raise AssertionError(f"{method} {path}: no answer")


def terminate_connections(url: str) -> int:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def test_sigkill_and_terminated_connections_lose_nothing(processes, db_url):
    serve, sim = processes
    rng = random.Random(16)
    token = answered(
        serve, "POST", "/auth/login", json={"username": "clerk", "password": PASSWORD}
    ).json()["access_token"]
    clerk = {"Authorization": f"Bearer {token}"}
    accounts: dict[int, tuple[str, str]] = {}  # id -> (comm_no, mode)
    paid: list[Paid] = []
    for i, comm_no in enumerate(sim.get("/_sim/meters").json()["comm_nos"]):
        meter = sim.get(f"/_sim/meters/{comm_no}").json()
        customer = answered(serve, "POST", "/customers", json={"name": f"h{i}"}, headers=clerk)
        mode = ("meter", "system")[i % 2]
        body = {
            "customer_id": customer.json()["id"], "number": f"K{i}", "company_no": "1001",
            "billing_mode": mode, "tariff_id": "beijing-residential",
            "opened_on": time.strftime("%Y-%m-%d"), "meter_comm_no": comm_no,
            "opening_register": str(meter["std_sum"]), "persons": 3, "initial_fen": 20_000,
        }  # fmt: skip
        opened = answered(serve, "POST", "/accounts", json=body, headers=clerk)
        assert opened.status_code == 201, opened.text
        accounts[opened.json()["id"]] = (comm_no, mode)
        paid.append(Paid(opened.json()["id"], f"open-K{i}", 20_000, True))

    kills = terminations = 0
    for _ in range(ROUNDS):
        for _ in range(3):
            payment = Paid(
                rng.choice(sorted(accounts)), str(uuid.uuid4()), rng.randrange(1, 80) * 100
            )
            paid.append(payment)
            pay(serve, clerk, payment, wait=False)
        sim.post("/_sim/clock/advance", json={"hours": rng.choice((6, 12, 24))})
        time.sleep(rng.uniform(0, 1.5))  # somewhere in the jobs' work, or a push
        postgres = db_url.startswith("postgresql")
        if rng.random() < 0.5 or not postgres:
            serve.kill()
            kills += 1
            serve.start()
        else:
            terminations += terminate_connections(db_url)
        sim.post("/_sim/push/flush")

    for payment in paid:  # the clerk learns every answer, sending again with the same key
        if payment.taken is None:
            pay(serve, clerk, payment, wait=True)
    settle(serve, sim, clerk, accounts)

    engine = make_engine(db_url)
    try:
        report = verify_ledger(UnitOfWork(engine))
        assert report.ok, report.problems
        with engine.connect() as conn:
            for account_id, (comm_no, mode) in accounts.items():
                taken = sum(p.amount_fen for p in paid if p.account_id == account_id and p.taken)
                assert ledger_payments(conn, account_id) == taken, account_id
                assert frozen_days(conn, account_id) == []
                if mode == "meter":
                    state = sim.get(f"/_sim/meters/{comm_no}").json()
                    on_meter = int(Decimal(str(state["remote_total_value"])) * 100)
                    times = state["remote_charge_times"]
                    assert counters_agree(conn, account_id, comm_no, times, on_meter, False) == []
    finally:
        engine.dispose()
    applied = [c for c in sim.get("/_sim/commands").json() if c["applied"] > 1]
    assert applied == []
    assert kills and (terminations or not db_url.startswith("postgresql")), (kills, terminations)


def pay(serve: Serve, clerk: dict[str, str], payment: Paid, *, wait: bool) -> None:
    request = {
        "json": {"amount_fen": payment.amount_fen, "channel": "counter"},
        "headers": {**clerk, "Idempotency-Key": payment.key},
    }
    path = f"/accounts/{payment.account_id}/payments"
    if wait:
        response = answered(serve, "POST", path, **request)
    else:
        try:
            response = serve.client.post(API + path, **request)
        except httpx.TransportError:
            return
        if response.status_code >= 500:
            return  # a terminated connection mid-request: unknown, asked again later
    payment.taken = response.status_code == 201


def settle(serve: Serve, sim: httpx.Client, clerk: dict[str, str], accounts: dict) -> None:
    """Days pass (the meters wake, reports come) until no top-up is in flight, bounded."""
    for _ in range(10):
        sim.post("/_sim/clock/advance", json={"days": 1})
        time.sleep(2)  # the jobs run every second
        busy = [
            c
            for account_id in accounts
            for c in answered(
                serve, "GET", "/commands", params={"account_id": account_id}, headers=clerk
            ).json()
            if c.get("status") in ("queued", "sending", "sent", "unknown")
        ]
        if not busy:
            return
