"""Two processes, the admin's and the auditor's side of the day, over HTTP only: a tariff
change published by an admin reaches every meter and is verified (the campaign's n of m),
the price-change true-up is posted and visible, and a dry platform-billed household is cut
off and reopened after paying.

The product runs on the wall clock and bills readings up to its `now`, so the simulated
world starts three weeks back and the test moves it a day at a time, never past the wall
clock. Bounded: every wait has a deadline. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.test_two_processes import API, login, run_two, stage_of, until_confirmed, wait_for

pytestmark = pytest.mark.db
ZONE = ZoneInfo("Asia/Shanghai")
DAYS_BACK = 21
TARIFF = "e2e-change"
V1 = f"""id = "{TARIFF}"
name = "Two processes: a price change"
source = "gasbill tests, invented figures"
timezone = "Asia/Shanghai"

[defaults]
thresholds = [300, 600]
cycle_start = 2025-01-01
cycle_months = 12
opening_proration = "by_day"
reset_on_change = false

[[versions]]
label = "before"
effective_from = 2025-01-01
prices = [3.00, 3.60, 4.50]
"""


def change(effective: str) -> str:
    version = f'label = "increase"\neffective_from = {effective}\nprices = [4.00, 4.80, 6.00]\n'
    return "\n[[versions]]\n" + version


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[tuple[httpx.Client, httpx.Client, Path]]:
    tariffs = tmp_path / "tariffs"
    shutil.copytree(ROOT / "tariffs", tariffs)
    (tariffs / f"{TARIFF}.toml").write_text(V1, encoding="utf-8")
    start = datetime.now(UTC) - timedelta(days=DAYS_BACK)
    # the product's clock is the wall's: no grace period or quiet hours to wait out
    decisions = '[decisions]\ngrace_hours = 0\nquiet_hours_start = ""\nquiet_hours_end = ""\n'
    for app, sim in run_two(tmp_path, db_url, start=start, tariffs=tariffs, extra=decisions):
        yield app, sim, tariffs


def sim_now(sim: httpx.Client) -> datetime:
    return datetime.fromisoformat(sim.get("/_sim/clock").json()["now"])


def a_day(sim: httpx.Client) -> None:
    """A simulated day passes (every meter wakes once), never past the wall clock."""
    assert sim_now(sim) + timedelta(days=1) < datetime.now(UTC), "out of simulated days"
    answer = sim.post("/_sim/clock/advance", json={"days": 1})
    assert answer.status_code == 200, answer.text


def open_account(app: httpx.Client, clerk: dict[str, str], sim: httpx.Client, **body: Any) -> Any:
    meter = sim.get(f"/_sim/meters/{body['meter_comm_no']}").json()
    customer = app.post(f"{API}/customers", json={"name": body["number"]}, headers=clerk).json()
    opened = app.post(
        f"{API}/accounts",
        json={
            "customer_id": customer["id"], "company_no": "1001", "tariff_id": TARIFF,
            "opened_on": sim_now(sim).astimezone(ZONE).date().isoformat(),
            "bound_at": sim_now(sim).isoformat(), "opening_register": str(meter["std_sum"]),
            "persons": 3, **body,
        },
        headers=clerk,
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    return opened.json()


def until(what: str, sim: httpx.Client, check: Any, days: int = 4) -> Any:
    """Let simulated days pass until `check()` holds (the jobs run every second)."""
    for _ in range(days):
        try:
            return wait_for(what, check, timeout=8)
        except AssertionError:
            a_day(sim)
    return wait_for(what, check, timeout=8)


def valve_command(app: httpx.Client, clerk: dict[str, str], account_id: int, kind: str) -> Any:
    found = app.get(f"{API}/commands", params={"account_id": account_id}, headers=clerk).json()
    return next((c for c in found if c["type"] == kind and c["status"] == "done"), None)


def test_a_tariff_change_a_true_up_and_a_dry_household_over_http(world):
    app, sim, tariffs = world
    clerk, admin, auditor = (login(app, role) for role in ("clerk", "admin", "auditor"))
    meter_no, system_no = sim.get("/_sim/meters").json()["comm_nos"]

    metered = open_account(
        app, clerk, sim, number="T-1", billing_mode="meter", meter_comm_no=meter_no,
        initial_fen=30_000,
    )  # fmt: skip
    dry = open_account(
        app, clerk, sim, number="T-2", billing_mode="system", meter_comm_no=system_no,
        initial_fen=300, warning_fen=200, cutoff_fen=0, reopen_fen=1_000,
    )  # fmt: skip
    until_confirmed(app, sim, clerk, metered["opening"][0]["id"])

    # the admin publishes a price change from the next local midnight and reloads the tariffs
    effective = (sim_now(sim).astimezone(ZONE) + timedelta(days=1)).date().isoformat()
    path = tariffs / f"{TARIFF}.toml"
    path.write_text(V1 + change(effective), encoding="utf-8")
    reloaded = app.post(f"{API}/tariffs/reload", headers=admin)
    assert reloaded.status_code == 200, reloaded.text
    assert {t["id"]: t["versions"] for t in reloaded.json()}[TARIFF] == 2
    a_day(sim)  # the change is due: the campaigns job enrols the meter

    def verified() -> Any:
        found = app.get(f"{API}/campaigns", headers=admin).json()
        return next((c for c in found if c["tariff_id"] == TARIFF and c["verified"]), None)

    campaign = until("the campaign verified on the meter", sim, verified)
    assert (campaign["total"], campaign["verified"], campaign["failed"]) == (1, 1, 0)
    assert campaign["summary"].startswith("1 of 1 confirmed")
    held = sim.get(f"/_sim/meters/{meter_no}").json()["ladder"]
    assert str(held["price1"]).startswith("4")  # the meter holds the new prices

    # the meter deducted the old prices for the day(s) before the new ones reached it; the
    # auditor's true-up posts the difference, visible in the ledger and the campaign
    a_day(sim)
    ran = app.post(f"{API}/true-ups", headers=auditor)
    assert ran.status_code == 200, ran.text
    lines = app.get(f"{API}/accounts/{metered['id']}/ledger", headers=clerk).json()
    true_ups = [line for line in lines if line["kind"] == "true_up"]
    assert true_ups and all(line["amount_fen"] > 0 for line in true_ups), lines
    after = app.get(f"{API}/campaigns/{campaign['campaign_id']}", headers=admin).json()
    assert after["true_up_accounts"] == 1 and after["true_up_charged_fen"] > 0
    check = app.get(f"{API}/true-ups/check", headers=auditor).json()
    assert check["totals"]["differing"] == 0, check

    # the platform-billed household runs dry: its valve is closed; it pays, and is reopened
    closed = until(
        "the valve closed", sim, lambda: valve_command(app, clerk, dry["id"], "setvalveoff"), 6
    )
    assert stage_of(app, clerk, closed["id"]) == "confirmed"
    assert sim.get(f"/_sim/meters/{system_no}").json()["valve_open"] is False
    paid = app.post(
        f"{API}/accounts/{dry['id']}/payments",
        json={"amount_fen": 5_000, "channel": "cash"},
        headers={**clerk, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert paid.status_code == 201, paid.text
    until("the valve reopened", sim, lambda: valve_command(app, clerk, dry["id"], "setvalveon"))
    assert sim.get(f"/_sim/meters/{system_no}").json()["valve_open"] is True
