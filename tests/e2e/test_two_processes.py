"""`gasbill serve` and `gasbill simulate` as two processes on real sockets, and a clerk's
day over HTTP only: a meter-mode account opened on its meter, a payment topped up on the
meter and agreeing with the ledger, a top-up the meter refused retried by the clerk, the
meter replaced (the new one opened with the old one's credit).

The simulator's clock moves only when told (`--speed 0`, `POST /_sim/clock/advance`), so
each meter wakes when the test says; the product runs its jobs every second. Bounded:
every wait has a deadline. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gasbill.cli import app as cli
from tests.conftest import ROOT

pytestmark = pytest.mark.db
API = "/api/v1"
GASBILL = [str(Path(sys.executable).with_name("gasbill"))]
WAIT = 30.0  # seconds, at most, for any one thing to happen
STARTUP = 120.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def write_configs(
    tmp_path: Path,
    db_url: str,
    sim_port: int,
    *,
    start: datetime | None = None,
    tariffs: Path = ROOT / "tariffs",
    extra: str = "",
) -> tuple[str, str]:
    app_config = tmp_path / "config.toml"
    jobs = "\n".join(
        f"[jobs.{name}]\ninterval_seconds = 1"
        for name in ("inbox", "decisions", "campaigns", "dispatch", "poll_silent")
    )
    app_config.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[tariffs]\ndir = "{tariffs}"\n'
        "[push]\nmax_future_minutes = 20000\n"
        f'[platform]\nbase_url = "http://127.0.0.1:{sim_port}/"\npassword = "123456"\n'
        "[commands]\nmax_attempts = 1\ntimeout_hours = 720\nbackoff_base_minutes = 1\n"
        f"{jobs}\n{extra}",
        encoding="utf-8",
    )
    sim_config = tmp_path / "simulator.toml"
    start = (start or datetime.now(UTC)).replace(microsecond=0)
    sim_config.write_text(
        f'meters = 2\nseed = 7\nstart = "{start.isoformat()}"\n', encoding="utf-8"
    )
    return str(app_config), str(sim_config)


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGKILL when the test process dies, so a
    killed or crashed pytest leaves no `gasbill serve`/`simulate` holding the port and the
    database for the next run."""
    if _PRCTL is not None:  # looked up before the fork: the child only calls it
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GASBILL_")}
    handle = log.open("wb")
    return subprocess.Popen(
        args, stdout=handle, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
    )


@pytest.fixture
def two_processes(tmp_path: Path, db_url: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    yield from run_two(tmp_path, db_url)


def run_two(
    tmp_path: Path, db_url: str, **options: Any
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    app_port, sim_port = free_port(), free_port()
    config, sim_config = write_configs(tmp_path, db_url, sim_port, **options)
    runner = CliRunner()
    for role in ("clerk", "auditor", "admin"):
        added = runner.invoke(
            cli,
            ["user", "add", role, "--role", role, "--password-stdin", "--config", config],
            input="correct horse battery\n",
        )
        assert added.exit_code == 0, added.output
    serve = spawn(
        [*GASBILL, "serve", "--port", str(app_port), "--config", config], tmp_path / "serve.log"
    )
    simulate = spawn(
        [
            *GASBILL, "simulate", "--port", str(sim_port), "--speed", "0",
            "--push-to", f"http://127.0.0.1:{app_port}/", "--config", sim_config,
        ],
        tmp_path / "simulate.log",
    )  # fmt: skip
    app = httpx.Client(base_url=f"http://127.0.0.1:{app_port}", timeout=10)
    sim = httpx.Client(base_url=f"http://127.0.0.1:{sim_port}", timeout=10)
    try:
        # started on a loaded machine, two Python processes may take a while to import
        wait_for("gasbill serve", lambda: app.get("/health").status_code == 200, STARTUP)
        wait_for("gasbill simulate", lambda: sim.get("/_sim/clock").status_code == 200, STARTUP)
        yield app, sim
    finally:
        app.close()
        sim.close()
        for process in (simulate, serve):
            process.terminate()
        for process in (simulate, serve):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def login(app: httpx.Client, username: str) -> dict[str, str]:
    answer = app.post(
        f"{API}/auth/login", json={"username": username, "password": "correct horse battery"}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def stage_of(app: httpx.Client, headers: dict[str, str], command_id: int) -> str:
    answer = app.get(f"{API}/commands/{command_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["progress"]["stage"])


def until_confirmed(
    app: httpx.Client, sim: httpx.Client, headers: dict[str, str], command_id: int
) -> None:
    """Let the dispatcher send it, then a simulated day pass (the meter wakes), until done."""
    wait_for(
        f"command {command_id} sent",
        lambda: stage_of(app, headers, command_id) not in ("queued", "sending"),
    )
    for _ in range(3):
        sim.post("/_sim/clock/advance", json={"days": 1})
        try:
            wait_for(
                f"command {command_id} confirmed",
                lambda: stage_of(app, headers, command_id) == "confirmed",
                timeout=10,
            )
            return
        except AssertionError:
            continue
    raise AssertionError(f"command {command_id}: {stage_of(app, headers, command_id)}")


def test_a_clerks_day_over_http_against_a_separate_platform(two_processes):
    app, sim = two_processes
    clerk = login(app, "clerk")
    meter_no = sim.get("/_sim/meters").json()["comm_nos"][0]
    meter = sim.get(f"/_sim/meters/{meter_no}").json()
    customer = app.post(f"{API}/customers", json={"name": "王芳"}, headers=clerk).json()

    # open a meter-mode account: the meter is opened with the first payment, then read
    today = datetime.now(UTC).date().isoformat()
    opened = app.post(
        f"{API}/accounts",
        json={
            "customer_id": customer["id"], "number": "M-1", "company_no": "1001",
            "billing_mode": "meter", "tariff_id": "beijing-residential", "opened_on": today,
            "meter_comm_no": meter_no, "opening_register": str(meter["std_sum"]),
            "persons": 3, "initial_fen": 20_000,
        },
        headers=clerk,
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    account = opened.json()
    opening_id = account["opening"][0]["id"]
    until_confirmed(app, sim, clerk, opening_id)
    assert sim.get(f"/_sim/meters/{meter_no}").json()["opened"] is True

    def baseline_read() -> bool:
        steps = app.get(f"{API}/accounts/{account['id']}/opening", headers=clerk).json()
        return len(steps) == 2 and steps[1]["stage"] == "confirmed"

    for _ in range(3):  # the baseline getchargestate: sent, then the meter's next wake
        try:
            wait_for("the baseline read", baseline_read, timeout=8)
            break
        except AssertionError:
            sim.post("/_sim/clock/advance", json={"days": 1})
    assert baseline_read()

    # pay: the meter is topped up, its counters agree with the ledger
    paid = app.post(
        f"{API}/accounts/{account['id']}/payments",
        json={"amount_fen": 10_000, "channel": "cash"},
        headers={**clerk, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert paid.status_code == 201, paid.text
    top_up = paid.json()["top_up_id"]
    until_confirmed(app, sim, clerk, top_up)
    state = sim.get(f"/_sim/meters/{meter_no}").json()
    # the opening's first payment was the meter's first remote charge, this top-up its second
    assert state["remote_charge_times"] == 2
    assert Decimal(str(state["remote_total_value"])) == Decimal(300)
    balances = app.get(f"{API}/accounts/{account['id']}/balance", headers=clerk).json()
    assert balances["balances"]["meter_credit"]["posted_fen"] >= 0
    assert balances["balances"]["prepaid"]["available_fen"] == 0  # all of it went to the meter

    # the meter refuses the next top-up (0xbb): the money is back in prepaid; the clerk
    # retries it from the same door and the meter takes the same amount
    assert sim.put("/_sim/faults", json={"charge_refused": 1}).status_code == 200
    paid = app.post(
        f"{API}/accounts/{account['id']}/payments",
        json={"amount_fen": 5_000, "channel": "cash"},
        headers={**clerk, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert paid.status_code == 201, paid.text
    refused = paid.json()["top_up_id"]
    wait_for(
        f"command {refused} sent",
        lambda: stage_of(app, clerk, refused) not in ("queued", "sending"),
    )
    for _ in range(3):
        sim.post("/_sim/clock/advance", json={"days": 1})
        try:
            wait_for("the refusal", lambda: stage_of(app, clerk, refused) == "failed", 10)
            break
        except AssertionError:
            continue
    assert stage_of(app, clerk, refused) == "failed"
    prepaid = app.get(f"{API}/accounts/{account['id']}/balance", headers=clerk).json()
    assert prepaid["balances"]["prepaid"]["available_fen"] == 5_000
    assert sim.put("/_sim/faults", json={}).status_code == 200
    again = app.post(f"{API}/commands/{refused}/retry", headers=clerk)
    assert again.status_code == 200, again.text
    until_confirmed(app, sim, clerk, again.json()["id"])
    state = sim.get(f"/_sim/meters/{meter_no}").json()
    assert Decimal(str(state["remote_total_value"])) == Decimal(350)

    # the meter is replaced: the old one's credit (the ledger's) is carried onto the new
    # meter by its own openaccount
    new_no = sim.get("/_sim/meters").json()["comm_nos"][1]
    old_state = sim.get(f"/_sim/meters/{meter_no}").json()
    new_state = sim.get(f"/_sim/meters/{new_no}").json()
    replaced = app.post(
        f"{API}/accounts/{account['id']}/meter-replacements",
        json={
            "at": datetime.now(UTC).isoformat(),
            "old_final_register": str(old_state["std_sum"]),
            "new_comm_no": new_no,
            "new_opening_register": str(new_state["std_sum"]),
        },
        headers=clerk,
    )
    assert replaced.status_code == 201, replaced.text
    done = replaced.json()
    assert done["billing_mode"] == "meter" and done["meter_remain"] is not None
    until_confirmed(app, sim, clerk, done["opening_command_id"])
    opened_new = sim.get(f"/_sim/meters/{new_no}").json()
    assert opened_new["opened"] is True
    assert Decimal(str(opened_new["remote_total_value"])) == Decimal(done["ledger_credit"])
