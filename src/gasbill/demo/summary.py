"""What the demo shows at the end, read from the product's own reports over HTTP.

The auditor's reports (reconciliation, the meters against the ledger at
every frozen reading, the books against the tariff in force), the campaigns'
progress, and each account's ledger and commands as a clerk sees them. Only
the meters' own counters come from elsewhere: the simulated meters, as the
households' displays show them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from gasbill.demo.scenario import Cast
from gasbill.demo.stage import Stage
from gasbill.domain.money import Money


@dataclass
class MeterCheck:
    comm_no: str
    account_id: int
    meter_balance: str
    ledger_balance: str
    meter_top_ups: int
    ledger_top_ups: int
    agrees: bool
    readings_compared: int = 0  # frozen readings with no top-up in flight
    readings_agreeing: int = 0
    readings_in_flight: int = 0
    first_difference: str = ""


@dataclass
class Summary:
    meters: int
    days: int
    readings: int
    charges_fen: int
    charge_days: int
    payments: int
    top_ups_confirmed: int
    top_ups_fen: int
    commands: dict[str, int]
    warnings: int
    valve_off: int
    valve_on: int
    campaigns: list[dict[str, Any]]
    exceptions: dict[str, int]
    agree: int
    differ: int
    checks: list[MeterCheck] = field(default_factory=list)
    openings: int = 0  # accounts opened with a first payment (not in `payments`)
    readings_compared: int = 0
    readings_agreeing: int = 0
    readings_in_flight: int = 0
    unknown_settled: int = 0  # top-ups whose outcome was unknown, settled against the meter
    true_up_accounts: int = 0
    true_up_charged_fen: int = 0
    true_up_refunded_fen: int = 0
    in_force_agree: int = 0  # meter-mode accounts: charges + true-ups = the tariff in force
    in_force_differ: list[dict[str, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def summarise(stage: Stage, cast: Cast, days: int, *, warnings_log: Path | None = None) -> Summary:
    auditor, clerk = stage.auditor, stage.clerk
    everyone = {**cast.system_accounts, **cast.meter_accounts}
    reconciliation = auditor.get("/reconciliation", all="true")
    lines = {line["account_id"]: line for line in reconciliation["accounts"]}
    readings = auditor.get("/reconciliation/readings")
    by_account = {line["account_id"]: line for line in readings["accounts"]}
    in_force = auditor.get("/true-ups/check")
    progress = auditor.get("/campaigns")
    books = Books()
    for account_id in everyone.values():
        books.add(account_id, clerk.ledger(account_id), clerk.commands(account_id))
    fleet = stage.simulator.meters()
    checks = [
        _check(
            comm_no,
            account_id,
            fleet[comm_no],
            books.top_ups_of.get(account_id, (0, 0)),
            lines.get(account_id),
            by_account[account_id],
        )
        for comm_no, account_id in cast.meter_accounts.items()
    ]
    totals = readings["totals"]
    differing = [a for a in in_force["accounts"] if not a["agrees"]]
    true_ups = [p for p in progress if p["true_up_accounts"]]
    agree = sum(1 for c in checks if c.agrees)
    return Summary(
        meters=len(everyone),
        days=days,
        readings=int(totals["readings"]),
        charges_fen=books.charges_fen,
        charge_days=books.charge_days,
        payments=cast.payments,
        top_ups_confirmed=books.top_ups,
        top_ups_fen=books.top_ups_fen,
        commands=dict(sorted(books.commands.items())),
        warnings=_lines(warnings_log),
        valve_off=books.commands.get("setvalveoff done", 0),
        valve_on=books.commands.get("setvalveon done", 0),
        campaigns=[_campaign(p) for p in progress],
        exceptions=_exceptions(clerk.get("/exceptions", status="all", limit=1000)),
        agree=agree,
        differ=len(checks) - agree,
        checks=checks,
        openings=len(everyone),
        readings_compared=int(totals["compared"]),
        readings_agreeing=int(totals["agreed"]),
        readings_in_flight=int(totals["in_flight"]),
        unknown_settled=sum(n for k, n in books.commands.items() if k.endswith(" settled")),
        true_up_accounts=int(in_force["totals"]["trued_up_accounts"]),
        true_up_charged_fen=sum(int(p["true_up_charged_fen"]) for p in true_ups),
        true_up_refunded_fen=sum(int(p["true_up_refunded_fen"]) for p in true_ups),
        in_force_agree=int(in_force["totals"]["agreeing"]),
        in_force_differ=[
            {k: int(a[k]) for k in ("account_id", "charged_fen", "trued_up_fen", "in_force_fen")}
            for a in differing
        ],
    )


@dataclass
class Books:
    """Totals of the accounts' ledger lines and commands, as the clerk's screens show them."""

    charges_fen: int = 0
    charge_days: int = 0
    top_ups: int = 0  # confirmed by the meter: a hold resolved (post_pending)
    top_ups_fen: int = 0
    commands: dict[str, int] = field(default_factory=dict)
    top_ups_of: dict[int, tuple[int, int]] = field(default_factory=dict)

    def add(
        self, account_id: int, ledger: list[dict[str, Any]], commands: list[dict[str, Any]]
    ) -> None:
        times = fen = 0
        for line in ledger:
            if line["kind"] == "charge" and line["status"] == "posted" and line["amount_fen"]:
                self.charges_fen += int(line["amount_fen"])
                self.charge_days += 1
            elif line["status"] == "post_pending" and line["pending_id"]:
                times, fen = times + 1, fen + int(line["amount_fen"])
        self.top_ups, self.top_ups_fen = self.top_ups + times, self.top_ups_fen + fen
        self.top_ups_of[account_id] = (times, fen)
        for command in commands:
            key = f"{command['type']} {command['status']}"
            self.commands[key] = self.commands.get(key, 0) + 1


def _lines(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _campaign(progress: dict[str, Any]) -> dict[str, Any]:
    return {
        "tariff": progress["tariff_id"],
        "change": progress["label"],
        "meters": progress["total"],
        "progress": progress["summary"],
        "by_status": {
            k: int(progress[k]) for k in ("queued", "sent", "confirmed", "verified", "failed")
        },
    }


def _exceptions(items: list[dict[str, Any]]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for item in items:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    return dict(sorted(kinds.items()))


def _check(
    comm_no: str,
    account_id: int,
    meter: dict[str, Any],
    top_ups: tuple[int, int],
    line: dict[str, Any] | None,
    readings: dict[str, Any],
) -> MeterCheck:
    """The meter's own top-up counters (as the simulated meter holds them) against the
    ledger's confirmed top-ups; its last reported balance against the ledger's (the
    reconciliation report's balance check); every frozen reading against the ledger (the
    auditor's readings report)."""
    balance = (line or {}).get("balance") or {}
    times, fen = top_ups
    counters_agree = int(meter["remote_charge_times"]) == times and Money(
        Decimal(str(meter["remote_total_value"]))
    ) == Money.of_fen(fen)
    return MeterCheck(
        comm_no,
        account_id,
        str(balance.get("meter", "")),
        str(balance.get("expected", "")),
        int(meter["remote_charge_times"]),
        times,
        counters_agree
        and bool(balance.get("agrees", False))
        and readings["agreed"] == readings["compared"],
        int(readings["compared"]),
        int(readings["agreed"]),
        int(readings["in_flight"]),
        str(readings["first_difference"]),
    )
