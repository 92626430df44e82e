"""The properties checked after every step, read from the database and the simulator.

Reading private tables is allowed here only: the harness drives gasbill
through its doors, and judges it by what it wrote.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.ledger import AccountCode
from gasbill.service.ledger import verify_ledger
from iotsim.fleet import Simulator
from iotsim.vendor import OPEN_ACCOUNT, REMOTE_CHARGE, CtrlState

PROPERTIES = (
    "sum of balances = 0",
    "balance = sum of its transfers",
    "no hold resolved twice",
    "payments recorded exactly once",
    "meter counters = ledger (settled)",
    "hold posted iff meter loaded it",
    "each frozen day billed once",
    "nothing applied twice on a meter",
    "no 5xx from gasbill",
)
IN_FLIGHT = (CtrlState.WAITING, CtrlState.SENT, CtrlState.ACKNOWLEDGED)

LOADED_TOP_UP, LOADED_OPENING = (
    0xAA,
    0,
)  # the meter's own flags (iotsim.firmware)  # the opening also loads money on the meter


@dataclass
class Tally:
    """How often each property was checked and how often it failed, with the first failures."""

    checks: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    first: list[str] = field(default_factory=list)

    def judge(self, name: str, problems: list[str]) -> None:
        assert name in PROPERTIES, name
        self.checks[name] += 1
        if problems:
            self.violations[name] += 1
            self.first.extend(f"{name}: {p}" for p in problems[: 3 - len(self.first)])

    def add(self, other: Tally) -> None:
        self.checks.update(other.checks)
        self.violations.update(other.violations)


def ledger_properties(engine: Engine, tally: Tally) -> None:
    """The product's own check of the whole ledger, sorted into the three properties."""
    report = verify_ledger(UnitOfWork(engine))
    sums = [p for p in report.problems if "sum to zero" in p]
    kept = [p for p in report.problems if "transfers say" in p]
    # the product's check reports a hold resolved twice ("<id> resolved <n> times") here too
    links = [p for p in report.problems if p not in sums and p not in kept]
    tally.judge("sum of balances = 0", sums)
    tally.judge("balance = sum of its transfers", kept)
    tally.judge("no hold resolved twice", links)


def ledger_payments(conn: sa.Connection, account_id: int) -> int:
    """What the ledger holds as paid into the account: payments less their reversals."""
    code = str(AccountCode.prepaid(str(account_id)))
    paid = conn.execute(
        sa.text(
            "SELECT COALESCE(SUM(t.amount_fen), 0) FROM transfer t "
            "JOIN ledger_account c ON c.id = t.credit_account_id "
            "WHERE t.kind = 'payment' AND c.code = :code"
        ),
        {"code": code},
    ).scalar_one()
    reversed_ = conn.execute(
        sa.text(
            "SELECT COALESCE(SUM(r.amount_fen), 0) FROM transfer r "
            "JOIN transfer p ON p.id = r.reverses "
            "JOIN ledger_account c ON c.id = p.credit_account_id "
            "WHERE p.kind = 'payment' AND c.code = :code"
        ),
        {"code": code},
    ).scalar_one()
    return int(paid) - int(reversed_)


def frozen_days(conn: sa.Connection, account_id: int) -> list[str]:
    """The charges posted for the account are exactly what its billed days say."""
    key = str(account_id)
    codes = (str(AccountCode.prepaid(key)), str(AccountCode.meter_credit(key)))
    net = conn.execute(
        sa.text(
            "SELECT COALESCE(SUM(CASE WHEN d.code IN (:a, :b) THEN t.amount_fen "
            "ELSE -t.amount_fen END), 0) FROM transfer t "
            "JOIN ledger_account d ON d.id = t.debit_account_id "
            "JOIN ledger_account c ON c.id = t.credit_account_id "
            "WHERE t.kind = 'charge' AND (d.code IN (:a, :b) OR c.code IN (:a, :b))"
        ),
        {"a": codes[0], "b": codes[1]},
    ).scalar_one()
    days = conn.execute(
        sa.text("SELECT COALESCE(SUM(posted_fen), 0) FROM charge_day WHERE account_id = :a"),
        {"a": account_id},
    ).scalar_one()
    if int(net) != int(days):
        return [f"account {account_id}: charges posted {net} fen, billed days say {days}"]
    return []


def meter_counters(conn: sa.Connection, sim: Simulator, account_id: int, comm_no: str) -> list[str]:
    """Once nothing is in flight, the meter holds exactly the top-ups the ledger posted."""
    with sim.lock:
        flying = any(
            r.target_comm_no == comm_no
            and r.ctrl_type in (REMOTE_CHARGE, OPEN_ACCOUNT)
            and r.ctrl_state in IN_FLIGHT
            for r in sim.platform.records.values()
        )
    meter = sim.meter(comm_no)
    on_meter = int(meter.remote_total_value * 100)
    return counters_agree(conn, account_id, comm_no, meter.remote_charge_times, on_meter, flying)


def counters_agree(
    conn: sa.Connection, account_id: int, comm_no: str, times: int, on_meter: int, flying: bool
) -> list[str]:
    """The meter's remote top-ups (count, fen) against the holds the ledger posted to it;
    not judged while a top-up is on its way (on the platform, or its hold still open)."""
    code = str(AccountCode.prepaid(str(account_id)))
    open_holds = conn.execute(
        sa.text(
            "SELECT COUNT(*) FROM transfer h JOIN ledger_account d ON d.id = h.debit_account_id "
            "WHERE h.status = 'pending' AND d.code = :code AND NOT EXISTS "
            "(SELECT 1 FROM transfer r WHERE r.pending_id = h.id)"
        ),
        {"code": code},
    ).scalar_one()
    if open_holds or flying:
        return []
    posted, total = conn.execute(
        sa.text(
            "SELECT COUNT(*), COALESCE(SUM(r.amount_fen), 0) FROM transfer r "
            "JOIN transfer h ON r.pending_id = h.id "
            "JOIN ledger_account d ON d.id = h.debit_account_id "
            "WHERE r.status = 'post_pending' AND d.code = :code"
        ),
        {"code": code},
    ).one()
    if times != int(posted) or on_meter != int(total):
        return [
            f"meter {comm_no}: {times} top-ups, {on_meter} fen; "
            f"ledger posted {posted}, {total} fen (account {account_id})"
        ]
    return []


def holds_match_meters(conn: sa.Connection, sim: Simulator) -> list[str]:
    """Each resolved top-up (or opening) hold: posted if and only if its meter loaded the
    money, as the platform's records of the command (found by our define_no) say. A record
    the meter executed answers its own flag: a top-up 0xaa loaded, 0xbb refused (nothing
    changed); an opening 0 loaded. A record without an answer (applied, reported timed
    out) is judged by the settled counters instead."""
    rows = conn.execute(
        sa.text(
            "SELECT c.id, c.define_no, c.ctrl_type, r.status FROM command c "
            "JOIN transfer r ON r.pending_id = c.hold_id WHERE c.hold_id IS NOT NULL"
        )
    ).all()
    loaded: dict[str, int] = {}
    unanswered: set[str] = set()
    with sim.lock:
        for record in sim.platform.records.values():
            if not record.applied:
                continue
            flag = json.loads(record.return_data or "{}").get("success")
            if flag is None:
                unanswered.add(record.ctrl_define_no)
                continue
            took = flag == (LOADED_TOP_UP if record.ctrl_type == REMOTE_CHARGE else LOADED_OPENING)
            loaded[record.ctrl_define_no] = loaded.get(record.ctrl_define_no, 0) + took
    problems = []
    for command_id, define_no, _ctrl_type, status in rows:
        if define_no in unanswered:
            continue
        done = loaded.get(define_no, 0)
        if status == "post_pending" and not done:
            problems.append(f"command {command_id}: hold posted, the meter never loaded it")
        if status == "void_pending" and done:
            problems.append(f"command {command_id}: the meter loaded it, its hold was voided")
    return problems


def applied_twice(sim: Simulator) -> list[str]:
    with sim.lock:
        return [
            f"ctrl_id {r.ctrl_id} ({r.ctrl_type}) applied {r.applied} times"
            for r in sim.platform.records.values()
            if r.applied > 1
        ]


# -- the same per-account properties for every account at once (one query each) ------------
def payments_by_account(conn: sa.Connection, account_ids: list[int]) -> dict[int, int]:
    """`ledger_payments` of every account: payments less their reversals, by account."""
    paid = dict(
        conn.execute(
            sa.text(
                "SELECT c.code, COALESCE(SUM(t.amount_fen), 0) FROM transfer t "
                "JOIN ledger_account c ON c.id = t.credit_account_id "
                "WHERE t.kind = 'payment' GROUP BY c.code"
            )
        ).all()
    )
    reversed_ = dict(
        conn.execute(
            sa.text(
                "SELECT c.code, COALESCE(SUM(r.amount_fen), 0) FROM transfer r "
                "JOIN transfer p ON p.id = r.reverses "
                "JOIN ledger_account c ON c.id = p.credit_account_id "
                "WHERE p.kind = 'payment' GROUP BY c.code"
            )
        ).all()
    )
    out = {}
    for account_id in account_ids:
        code = str(AccountCode.prepaid(str(account_id)))
        out[account_id] = int(paid.get(code, 0)) - int(reversed_.get(code, 0))
    return out


def frozen_days_by_account(conn: sa.Connection, account_ids: list[int]) -> dict[int, list[str]]:
    """`frozen_days` of every account: its charges posted against its billed days."""
    moved = conn.execute(
        sa.text(
            "SELECT d.code, c.code, COALESCE(SUM(t.amount_fen), 0) FROM transfer t "
            "JOIN ledger_account d ON d.id = t.debit_account_id "
            "JOIN ledger_account c ON c.id = t.credit_account_id "
            "WHERE t.kind = 'charge' GROUP BY d.code, c.code"
        )
    ).all()
    days = dict(
        conn.execute(
            sa.text(
                "SELECT account_id, COALESCE(SUM(posted_fen), 0) FROM charge_day "
                "GROUP BY account_id"
            )
        ).all()
    )
    out = {}
    for account_id in account_ids:
        key = str(account_id)
        codes = {str(AccountCode.prepaid(key)), str(AccountCode.meter_credit(key))}
        net = sum(
            int(amount) if debit in codes else -int(amount)
            for debit, credit, amount in moved
            if debit in codes or credit in codes
        )
        billed = int(days.get(account_id, 0))
        out[account_id] = (
            [f"account {account_id}: charges posted {net} fen, billed days say {billed}"]
            if net != billed
            else []
        )
    return out


def counters_by_account(
    conn: sa.Connection, sim: Simulator, accounts: dict[int, str]
) -> dict[int, list[str]]:
    """`meter_counters` of every meter-mode account (account id -> its meter's comm_no)."""
    open_holds = dict(
        conn.execute(
            sa.text(
                "SELECT d.code, COUNT(*) FROM transfer h "
                "JOIN ledger_account d ON d.id = h.debit_account_id "
                "WHERE h.status = 'pending' AND NOT EXISTS "
                "(SELECT 1 FROM transfer r WHERE r.pending_id = h.id) GROUP BY d.code"
            )
        ).all()
    )
    posted = {
        code: (int(n), int(total))
        for code, n, total in conn.execute(
            sa.text(
                "SELECT d.code, COUNT(*), COALESCE(SUM(r.amount_fen), 0) FROM transfer r "
                "JOIN transfer h ON r.pending_id = h.id "
                "JOIN ledger_account d ON d.id = h.debit_account_id "
                "WHERE r.status = 'post_pending' GROUP BY d.code"
            )
        ).all()
    }
    with sim.lock:
        flying = {
            r.target_comm_no
            for r in sim.platform.records.values()
            if r.ctrl_type in (REMOTE_CHARGE, OPEN_ACCOUNT) and r.ctrl_state in IN_FLIGHT
        }
    out: dict[int, list[str]] = {}
    for account_id, comm_no in accounts.items():
        code = str(AccountCode.prepaid(str(account_id)))
        out[account_id] = []
        if open_holds.get(code, 0) or comm_no in flying:
            continue
        meter = sim.meter(comm_no)
        times, on_meter = meter.remote_charge_times, int(meter.remote_total_value * 100)
        n, total = posted.get(code, (0, 0))
        if times != n or on_meter != total:
            out[account_id] = [
                f"meter {comm_no}: {times} top-ups, {on_meter} fen; "
                f"ledger posted {n}, {total} fen (account {account_id})"
            ]
    return out


def simulator_state(sim: Simulator) -> tuple[object, ...]:
    """What the simulator-side properties read: every command record and meter counter."""
    with sim.lock:
        records = tuple(
            (r.ctrl_id, r.ctrl_state, r.applied, r.return_data)
            for r in sim.platform.records.values()
        )
    meters = tuple(
        (m.remote_charge_times, m.remote_total_value)
        for m in (sim.meter(comm_no) for comm_no in sim.comm_nos())
    )
    return records, meters
