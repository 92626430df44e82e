"""Reconciliation throughput on PostgreSQL: every account of a fleet, through the real service.

    .venv/bin/python bench/reconcile.py [--accounts 100000] [--days 5] [--connections 2]
        [--runs 2] [--postgres URL]

Loads a fleet (half meter-mode, half system-mode accounts; each with a
payment, its top-up and confirmation, daily charges and frozen readings,
the meter's answers; 1 % of each mode made to differ) into the schema
`bench_reconcile` of the `gasbill_bench` database on 127.0.0.1 (created if
missing, the schema emptied each run), then times `service.reconciliation
.reconcile` over every account, and in the same run the baseline: bare
SELECTs that read the same rows (the accounts with their meter and ledger
accounts, every transfer, reading and command grouped per account), no
logic. Reconcile reads on `--connections` connections at once (as
`[reconcile] connections`; 2 by default), and, above 1, each run times it on
one connection too and checks that the two reports are the same (JSON).
Prints accounts/s for each and the ratio to the baseline, and accounts per
core-second (this process's CPU, every thread, plus its PostgreSQL backends',
read from /proc) so that a loaded machine still gives comparable figures;
and the load average at each run's start. Target: >= 50,000 accounts/s
(1,000,000 accounts in <= 20 s).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gasbill.adapters.db.engine import make_engine, normalise_url
from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.service.reconciliation import reconcile
from gasbill.service.reconciliation_report import render_json

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "bench_reconcile"
ZONE = ZoneInfo("Asia/Shanghai")
COMPANY = "1001"
OPENED = date(2025, 1, 1)
FIRST_DAY = date(2025, 3, 1)
PAID_FEN, DAILY_FEN = 10_000, 300
CHARGE_STATE = json.dumps(
    {
        "card_charge_times": 0,
        "card_charge_value": "0",
        "card_total_value": "0",
        "remote_charge_times": 1,
        "remote_charge_value": "100.000",
        "remote_total_value": "100.000",
    }
)
TOP_UP_REPLY = json.dumps({"success": 170, "remain": "100.000"})


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC)


def prepare(url: str) -> str:
    """The bench database (created if missing) with an empty, migrated schema of our own."""
    target = sa.engine.make_url(normalise_url(url))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).first()
        if not found:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"))
    engine.dispose()
    scoped = target.update_query_dict({"options": f"-csearch_path={SCHEMA}"})
    text = scoped.render_as_string(hide_password=False)
    upgrade(text)
    return text


class Fleet:
    """Rows for COPY, as text lines; account i has meter i, ledger accounts 2i+10 and 2i+11."""

    def __init__(self, accounts: int, days: int) -> None:
        self.accounts, self.days = accounts, days
        self.now = datetime.now(UTC).isoformat()
        self.t0 = midnight(FIRST_DAY) - timedelta(hours=12)
        self.transfer = 0
        self.command = 0

    def meter_mode(self, i: int) -> bool:
        return i % 2 == 1

    def differs(self, i: int) -> bool:
        return i % 100 in (7, 8)  # 1 % of each mode

    def tables(self) -> dict[str, tuple[str, Iterator[str]]]:
        return {
            "customer": ("id, name, phone, address, created_at", self._customer()),
            "account": (
                "id, number, customer_id, company_no, billing_mode, tariff_id, persons, "
                "opened_on, warning_fen, cutoff_fen, reopen_fen, status, created_at",
                self._accounts(),
            ),
            "meter": ("id, company_no, comm_no, created_at", self._meters()),
            "meter_binding": (
                "id, account_id, meter_id, bound_at, opening_litres, reason",
                self._bindings(),
            ),
            "ledger_account": (
                "id, code, kind, account_id, keeps_balance, debits_posted_fen, "
                "credits_posted_fen, debits_pending_fen, credits_pending_fen",
                self._ledger(),
            ),
            "transfer": (
                "seq, id, idempotency_key, debit_account_id, credit_account_id, amount_fen, "
                "kind, status, pending_id, reason, actor, effective_at, recorded_at",
                self._transfers(),
            ),
            "meter_reading": (
                "company_no, meter_comm_no, data_type, acquisition_time, data_guid, std_sum, "
                "work_sum, remain_money, curr_price, stored_at",
                self._readings(),
            ),
            "command": (
                "id, define_no, company_no, meter_id, meter_comm_no, account_id, ctrl_type, "
                "intent, status, return_data, hold_id, amount_fen, next_attempt_at, "
                "timeout_at, sent_at, finished_at, created_at, outcome, feedback, reason, actor, "
                "attempts, last_error",
                self._commands(),
            ),
        }

    def _customer(self) -> Iterator[str]:
        yield f"1\tbench\t\t\t{self.now}\n"

    def _accounts(self) -> Iterator[str]:
        for i in range(1, self.accounts + 1):
            mode = "meter" if self.meter_mode(i) else "system"
            yield (
                f"{i}\tB{i:08d}\t1\t{COMPANY}\t{mode}\tbeijing-residential\t3\t{OPENED}"
                f"\t2000\t0\t0\tactive\t{self.now}\n"
            )

    def _meters(self) -> Iterator[str]:
        for i in range(1, self.accounts + 1):
            yield f"{i}\t{COMPANY}\t{i:014d}\t{self.now}\n"

    def _bindings(self) -> Iterator[str]:
        bound = midnight(OPENED).isoformat()
        for i in range(1, self.accounts + 1):
            yield f"{i}\t{i}\t{i}\t{bound}\t0\tbench\n"

    def _ledger(self) -> Iterator[str]:
        yield "1\trevenue:gas\trevenue\t\\N\tf\t0\t0\t0\t0\n"
        yield "2\tcash:counter\tcash\t\\N\tf\t0\t0\t0\t0\n"
        charged = DAILY_FEN * (self.days - 1)
        for i in range(1, self.accounts + 1):
            if self.meter_mode(i):
                yield f"{2 * i + 10}\tprepaid:{i}\tprepaid\t{i}\tt\t{PAID_FEN}\t{PAID_FEN}\t0\t0\n"
                yield (
                    f"{2 * i + 11}\tmeter_credit:{i}\tmeter_credit\t{i}\tt"
                    f"\t{charged}\t{PAID_FEN}\t0\t0\n"
                )
            else:
                yield f"{2 * i + 10}\tprepaid:{i}\tprepaid\t{i}\tt\t{charged}\t{PAID_FEN}\t0\t0\n"

    def _row(
        self,
        debit: int,
        credit: int,
        fen: int,
        kind: str,
        status: str,
        at: datetime,
        pending: str = "\\N",
    ) -> str:
        self.transfer += 1
        n = self.transfer
        when = at.isoformat()
        return (
            f"{n}\tt{n}\tk{n}\t{debit}\t{credit}\t{fen}\t{kind}\t{status}\t{pending}"
            f"\tbench\tbench\t{when}\t{when}\n"
        )

    def _transfers(self) -> Iterator[str]:
        for i in range(1, self.accounts + 1):
            prepaid, credit = 2 * i + 10, 2 * i + 11
            yield self._row(2, prepaid, PAID_FEN, "payment", "posted", self.t0)
            charged_from = prepaid
            if self.meter_mode(i):
                yield self._row(prepaid, credit, PAID_FEN, "top_up", "pending", self.t0)
                hold = f"t{self.transfer}"
                confirmed = self.t0 + timedelta(hours=1)
                yield self._row(
                    prepaid, credit, PAID_FEN, "top_up", "post_pending", confirmed, hold
                )
                charged_from = credit
            for day in range(1, self.days):
                at = midnight(FIRST_DAY + timedelta(days=day))
                yield self._row(charged_from, 1, DAILY_FEN, "charge", "posted", at)

    def _readings(self) -> Iterator[str]:
        for i in range(1, self.accounts + 1):
            shift = -5000 if self.meter_mode(i) and self.differs(i) else 0
            for day in range(self.days):
                at = midnight(FIRST_DAY + timedelta(days=day)).isoformat()
                remain = "\\N"
                if self.meter_mode(i):
                    remain = str((PAID_FEN - DAILY_FEN * day) * 10 + shift)
                litres = 1_000 * day
                guid = f"\\\\x{i:016x}{day:016x}"
                yield (
                    f"{COMPANY}\t{i:014d}\t1\t{at}\t{guid}\t{litres}\t{litres}"
                    f"\t{remain}\t2610\t{self.now}\n"
                )

    def _commands(self) -> Iterator[str]:
        confirmed = (self.t0 + timedelta(hours=1)).isoformat()
        asked = (midnight(FIRST_DAY) + timedelta(hours=2)).isoformat()
        hold = 0
        for i in range(1, self.accounts + 1):
            comm = f"{i:014d}"
            if self.meter_mode(i):
                hold = self.transfer_of_hold(i)
                yield self._command(
                    i,
                    comm,
                    "iotmeterv1.prepay.remotecharge",
                    TOP_UP_REPLY,
                    confirmed,
                    f"t{hold}",
                    PAID_FEN,
                )
                yield self._command(
                    i, comm, "iotmeterv1.prepay.getchargestate", CHARGE_STATE, asked
                )
            elif self.differs(i):  # a valve closed although the customer has credit
                yield self._command(i, comm, "iotmeterv1.common.setvalveoff", "{}", asked)

    def transfer_of_hold(self, i: int) -> int:
        """The hold's seq: accounts before i wrote their transfers in order."""
        meter_before = i // 2  # odd ids below i
        system_before = (i - 1) - meter_before
        per_meter, per_system = 3 + self.days - 1, 1 + self.days - 1
        return meter_before * per_meter + system_before * per_system + 2

    def _command(
        self,
        i: int,
        comm: str,
        ctrl: str,
        data: str,
        at: str,
        hold: str = "\\N",
        amount: int | str = "\\N",
    ) -> str:
        self.command += 1
        n = self.command
        return (
            f"{n}\td{n}\t{COMPANY}\t{i}\t{comm}\t{i}\t{ctrl}\t{INTENTS[ctrl]}\tdone\t{data}"
            f"\t{hold}"
            f"\t{amount}\t{at}\t{at}\t{at}\t{at}\t{at}\t\t\t\tbench\t1\t\n"
        )


# each command's domain fields, as gasbill.adapters.db.intents stores them
PAID_YUAN = f"{PAID_FEN // 100}.{PAID_FEN % 100:02d}"
INTENTS = {
    "iotmeterv1.prepay.remotecharge": (
        f'{{"command":"RemoteCharge","charge":"{PAID_YUAN}","total":"{PAID_YUAN}","times":1}}'
    ),
    "iotmeterv1.prepay.getchargestate": '{"command":"GetChargeState"}',
    "iotmeterv1.common.setvalveoff": '{"command":"SetValveOff"}',
}


def load(engine: sa.Engine, fleet: Fleet) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, (columns, lines) in fleet.tables().items():
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                buffer = io.StringIO()
                for n, line in enumerate(lines):
                    buffer.write(line)
                    if n % 50_000 == 49_999:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
        raw.commit()
    finally:
        raw.close()
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()


BASELINE = (
    "SELECT a.id, a.number, a.billing_mode, b.meter_id, m.comm_no, l.id, l.credits_posted_fen"
    " FROM account a JOIN meter_binding b ON b.account_id = a.id"
    " JOIN meter m ON m.id = b.meter_id JOIN ledger_account l ON l.account_id = a.id",
    "SELECT credit_account_id, count(*), sum(amount_fen), max(effective_at) FROM transfer"
    " GROUP BY credit_account_id",
    "SELECT meter_comm_no, count(*), max(acquisition_time), max(remain_money)"
    " FROM meter_reading GROUP BY meter_comm_no",
    "SELECT meter_id, count(*), max(finished_at), max(return_data) FROM command GROUP BY meter_id",
)


def baseline(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        for query in BASELINE:
            conn.execute(sa.text(query)).all()


class Meter:
    """Wall time, and CPU seconds of this process (every thread) and of its PostgreSQL
    backends (read from /proc: the server is local), so that a loaded machine still gives
    comparable figures: accounts per core-second. The engine's pool holds exactly
    `connections` connections, all opened here, so every backend that works is counted."""

    def __init__(self, engine: sa.Engine, connections: int) -> None:
        held = [engine.connect() for _ in range(connections)]
        self.pids = [int(c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()) for c in held]
        for conn in held:
            conn.close()

    def server(self) -> float:
        return sum(_cpu(pid) for pid in self.pids)

    def __call__(self, work: Callable[[], Any]) -> tuple[Any, float, float]:
        wall, client, server = time.perf_counter(), time.process_time(), self.server()
        out = work()
        cpu = time.process_time() - client + self.server() - server
        return out, time.perf_counter() - wall, cpu


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2, help="timed runs on the same data")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "GASBILL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/gasbill_bench"
        ),
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=2,
        help="connections reconcile reads on at once (as [reconcile] connections); above 1, "
        "each run times one connection too, and checks the two reports are the same",
    )
    args = parser.parse_args()
    catalog = TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
    codec = Codec(ZONE)
    url = prepare(args.postgres)
    engine = make_engine(url)
    fleet = Fleet(args.accounts, args.days)
    print(f"loading {args.accounts:,} accounts ({args.days} days each) …", flush=True)
    started = time.perf_counter()
    load(engine, fleet)
    print(f"loaded in {time.perf_counter() - started:.1f} s", flush=True)
    engine.dispose()
    # exactly the connections reconcile uses, all opened by Meter: their backends' CPU is read
    n_conn = max(1, args.connections)
    engine = sa.create_engine(
        normalise_url(url), poolclass=sa.pool.QueuePool, pool_size=n_conn, max_overflow=0
    )
    meter = Meter(engine, n_conn)
    as_of = midnight(FIRST_DAY + timedelta(days=args.days + 1))
    expected = 2 * (args.accounts // 100)  # ids ending 07 and 08
    n = args.accounts
    ways = [n_conn, 1] if n_conn > 1 else [1]
    for run in range(1, args.runs + 1):
        ways.reverse()  # neither way always the first on the cache's state
        print(f"run {run} (load average {os.getloadavg()[0]:.2f} at its start):", flush=True)
        _, bare, bare_cpu = meter(lambda: baseline(engine))
        texts = []
        for ways_n in ways:
            report, took, cpu = meter(
                lambda w=ways_n: reconcile(
                    UnitOfWork(engine), catalog, codec=codec, as_of=as_of, connections=w
                )
            )
            t = report.totals
            if t.accounts != n or abs(t.differing - expected) > 2:
                raise SystemExit(f"expected {n} accounts, ~{expected} differing: {t}")
            texts.append(render_json(report))
            print(
                f"  reconcile, {ways_n} connection{'s' if ways_n > 1 else ''}: "
                f"{n / took:9,.0f} accounts/s ({took:.2f} s; {n / cpu:9,.0f} per core-second), "
                f"{t.differing:,} differ; ratio to the bare SELECTs {bare / took:6.1%} (wall), "
                f"{bare_cpu / cpu:6.1%} (CPU)",
                flush=True,
            )
        print(
            f"  bare SELECTs (one connection): {n / bare:9,.0f} accounts/s ({bare:.2f} s; "
            f"{n / bare_cpu:9,.0f} per core-second)",
            flush=True,
        )
        if len(set(texts)) > 1:
            raise SystemExit("the reports on one and on several connections differ")
    print("target: >= 50,000 accounts/s on PostgreSQL (1,000,000 accounts in <= 20 s)")
    engine.dispose()


if __name__ == "__main__":
    main()
