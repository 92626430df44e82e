"""A tariff change's campaign on PostgreSQL: setprice commands queued, then handed over.

    .venv/bin/python bench/campaign.py [--meters 20000] [--postgres URL]

Loads a fleet of meter-mode accounts on the `price-change-example` tariff
(opened before its July change) into the schema `bench_campaign` of the
`gasbill_bench` database (bench/reconcile.py's loader; the schema emptied
each run), then times, through the real service: `run_campaigns` on the day
of the change (a `setprice` queued per meter: commands queued/s), and
`dispatch` until the queue is empty, against a stand-in platform whose
AddMulti accepts every command at once (claimed, handed over via AddMulti
in batches and the replies recorded: commands handed over/s). The same-run
baseline: as many bare rows INSERTed into `command` a page at a time and
UPDATEd by id a batch at a time (executemany), no logic. Each figure also per core-second (this
process and its PostgreSQL backends, from /proc). Target: >= 2,000
commands/s queued and handed to the platform.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import campaign_parallel as parallel
import reconcile as fleet_loader
from gasbill.adapters.db.engine import make_engine, normalise_url
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.platform.wire import (
    BatchOutcome,
    BatchResultItem,
    NewCtrlData,
)
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.service.campaigns import run_campaigns
from gasbill.service.commands.dispatch import dispatch
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.ports import OutgoingCommand

ROOT = Path(__file__).resolve().parent.parent
ZONE = ZoneInfo("Asia/Shanghai")
TARIFF = "price-change-example"
CHANGE_DAY = datetime(2025, 7, 1, 2, tzinfo=ZONE).astimezone(UTC)


class Platform:
    """AddMulti that accepts everything (ctrl ids counted up), as a quick platform would."""

    def __init__(self, first_id: int = 1_000_000, *, keep: bool = False) -> None:
        self.next_id = first_id
        self.handed = 0
        self.codec = Codec(ZONE)
        self.ids: list[int] | None = [] if keep else None  # the commands handed over

    def add_commands(self, commands: Sequence[OutgoingCommand]) -> list[BatchOutcome]:
        """The port's call: encoded to the wire as the real client does, then accepted."""
        if self.ids is not None:
            self.ids.extend(c.command_id for c in commands)
        return self.add_multi([self.codec.outgoing(c) for c in commands])

    def add_multi(self, commands: Sequence[NewCtrlData]) -> list[BatchOutcome]:
        out = []
        for position, sent in enumerate(commands):
            self.next_id += 1
            item = BatchResultItem(
                ctrl_id=self.next_id, target_comm_no=sent.target_comm_no, result=True
            )
            out.append(BatchOutcome(position=position, item=item, matched=True))
        self.handed += len(commands)
        return out

    def find_by_define_no(self, ctrl_define_no: str) -> list[Any]:
        return []

    def get_model(self, ctrl_id: int) -> Any:
        return None

    def cancel(self, ctrl_id: int) -> int:
        return 0

    def retry(self, ctrl_id: int) -> int:
        return 0


class Cpu:
    """Wall time and CPU seconds of this process and the database's backends."""

    def __init__(self, url: str) -> None:
        # a connection of its own each time, outside the work's pool: its backends are counted
        self.engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool)
        self.server = 0.0

    def backends(self) -> float:
        with self.engine.connect() as conn:
            pids = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )
            ).scalars()
            total = 0.0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def __call__(self, work: Callable[[], Any]) -> tuple[Any, float, float]:
        wall, client, server = time.perf_counter(), time.process_time(), self.backends()
        out = work()
        self.server = self.backends() - server
        cpu = time.process_time() - client + self.server
        return out, time.perf_counter() - wall, cpu


def prepare(url: str, meters: int) -> str:
    fleet_loader.SCHEMA = "bench_campaign"
    scoped = fleet_loader.prepare(url)
    engine = make_engine(scoped)
    fleet = fleet_loader.Fleet(meters * 2, 1)  # odd ids: meter mode
    tables = fleet.tables()
    for name in ("transfer", "meter_reading", "command"):
        tables.pop(name)
    fleet.tables = lambda: tables  # type: ignore[method-assign]
    fleet_loader.load(engine, fleet)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE account SET tariff_id = :t"), {"t": TARIFF})
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return scoped


def baseline(engine: sa.Engine, n: int, batch: int) -> None:
    """n bare command rows inserted, then updated by id in batches: the rows' own cost."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM command WHERE define_no LIKE 'bare-%'"))
    rows = [
        {
            "d": f"bare-{i}",
            "m": 2 * (i % (n // 2 or 1)) + 1,
            "c": f"{i:014d}",
            "now": now,
        }
        for i in range(n)
    ]
    insert = sa.text(
        "INSERT INTO command (define_no, company_no, meter_id, meter_comm_no, ctrl_type,"
        " intent, status, outcome, feedback, reason, actor, attempts, last_error,"
        " next_attempt_at, timeout_at, created_at) VALUES (:d, '1001', :m, :c,"
        " 'iotmeterv1.prepay.setprice', '{}', 'done', '', '', 'bare', 'bench', 0, '',"
        " :now, :now, :now)"
    )
    for start in range(0, n, batch * 4):  # a campaign's page at a time
        with engine.begin() as conn:
            conn.execute(insert, rows[start : start + batch * 4])
    with engine.begin() as conn:
        ids = list(
            conn.execute(
                sa.text("SELECT id FROM command WHERE define_no LIKE 'bare-%' ORDER BY id")
            ).scalars()
        )
    update = sa.text("UPDATE command SET status = 'done', ctrl_id = :c WHERE id = :i")
    for start in range(0, n, batch):
        with engine.begin() as conn:
            conn.execute(update, [{"c": i, "i": i} for i in ids[start : start + batch]])
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM command WHERE define_no LIKE 'bare-%'"))


def reset(engine: sa.Engine) -> None:
    """Back to the fleet as loaded: no campaign, no command (emptied, not deleted: no dead
    rows left behind), statistics as before the first run."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(EMPTIED)} CASCADE"))
        conn.execute(sa.text(f"ANALYZE {', '.join(EMPTIED)}"))


EMPTIED = ("campaign_meter", "campaign", "command", "meter_prepay_state")


def sequential(engine: sa.Engine, url: str, n: int) -> None:
    """Enrolment, then dispatch until the queue is empty, one after the other."""
    catalog = TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
    codec = Codec(ZONE)
    policy = CommandPolicy()
    cpu = Cpu(url)
    _, bare, bare_cpu = cpu(lambda: baseline(engine, n, policy.batch_size))

    def factory() -> UnitOfWork:
        return UnitOfWork(engine)

    def queue() -> Any:
        return run_campaigns(factory, catalog=catalog, codec=codec, policy=policy, now=CHANGE_DAY)

    outcome, queued, queued_cpu = cpu(queue)
    queued_db = cpu.server
    if outcome.enrolled != n:
        raise SystemExit(f"expected {n} setprice commands queued: {outcome}")
    platform = Platform()

    def hand_over() -> int:
        sent = 0
        while True:
            done = dispatch(factory, platform, codec, policy=policy, now=CHANGE_DAY)
            sent += done.sent
            if not done.claimed:
                return sent

    sent, handed, handed_cpu = cpu(hand_over)
    handed_db = cpu.server
    if sent != n or platform.handed != n:
        raise SystemExit(f"expected {n} handed over once each: {sent}, {platform.handed}")
    both = queued + handed
    print(
        f"queued    {n / queued:8,.0f} commands/s ({queued:.2f} s; {n / queued_cpu:8,.0f} per"
        f" core-second)\n"
        f"handed    {n / handed:8,.0f} commands/s ({handed:.2f} s; {n / handed_cpu:8,.0f} per"
        f" core-second) via AddMulti, {policy.batch_size} a batch\n"
        f"both      {n / both:8,.0f} commands/s queued and handed over; CPU per command"
        f" {1e3 * queued_cpu / n:.2f} + {1e3 * handed_cpu / n:.2f} ms, of which PostgreSQL"
        f" {1e3 * queued_db / n:.2f} + {1e3 * handed_db / n:.2f} ms\n"
        f"bare rows {n / bare:8,.0f} rows/s inserted and updated ({bare:.2f} s;"
        f" {n / bare_cpu:8,.0f} per core-second)\n"
        f"ratio     {bare / both:6.1%} (wall), {bare_cpu / (queued_cpu + handed_cpu):6.1%} (CPU)",
        flush=True,
    )


def handed_once(run: parallel.Run, n: int, what: str) -> None:
    """Every one of the n handed over, none twice."""
    every = [i for ids in run.handed for i in ids]
    twice = len(every) - len(set(every))
    if twice or len(every) != n:
        raise SystemExit(f"{what}: {len(set(every))} of {n} handed over, {twice} twice")


def concurrent(engine: sa.Engine, url: str, n: int, dispatchers: int, idle: float) -> None:
    """Enrolment in one process while `dispatchers` processes hand over what is queued."""
    policy = CommandPolicy()
    reset(engine)
    bare = parallel.run(
        url,
        parallel.bare_insert,
        (n, policy.batch_size * 4),
        parallel.bare_update,
        (policy.batch_size,),
        dispatchers,
    )
    handed_once(bare, n, "bare rows")
    reset(engine)
    run = parallel.run(url, parallel.enrol, (str(ROOT),), parallel.hand_over, (idle,), dispatchers)
    if run.enrolled != n or run.errors:
        raise SystemExit(f"expected {n} setprice commands queued: {run.enrolled}, {run.errors}")
    handed_once(run, n, "setprice")
    with engine.connect() as conn:  # and the table agrees: each sent once, a ctrl_id each
        sent, ctrl_ids, once = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT ctrl_id), count(*) FILTER (WHERE attempts = 1)"
                " FROM command WHERE ctrl_type = 'iotmeterv1.prepay.setprice' AND status = 'sent'"
            )
        ).one()
    if not sent == ctrl_ids == once == n:
        raise SystemExit(f"expected {n} sent once: {sent} sent, {ctrl_ids} ctrl ids, {once} once")
    print(
        f"concurrent: enrolment in 1 process while {dispatchers} dispatcher processes hand over"
        f" what is queued (all {n:,} handed over, none twice)\n"
        f"campaign  {n / run.wall:8,.0f} commands/s queued and handed over ({run.wall:.2f} s from"
        f" the change's start to the last hand-over; {n / run.cpu:8,.0f} per core-second);"
        f" CPU per command {1e3 * run.cpu / n:.2f} ms: enrolment's process"
        f" {1e3 * run.enrol_cpu / n:.2f}, the dispatchers {1e3 * run.dispatch_cpu / n:.2f},"
        f" PostgreSQL {1e3 * run.db_cpu / n:.2f}; the campaigns job's run {run.enrol_wall:.2f} s"
        f" (following the sent setprices after enrolment); {run.rounds:,} dispatch rounds,"
        f" {run.idle:,} of them idle ({idle:g} s each)\n"
        f"bare rows {n / bare.wall:8,.0f} rows/s inserted by 1 process, claimed and updated by"
        f" {dispatchers} ({bare.wall:.2f} s; {n / bare.cpu:8,.0f} per core-second)\n"
        f"ratio     {bare.wall / run.wall:6.1%} (wall), {bare.cpu / run.cpu:6.1%} (CPU)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "GASBILL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/gasbill_bench"
        ),
    )
    parser.add_argument(
        "--dispatchers", type=int, default=2, help="dispatcher processes (concurrent part)"
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=parallel.IDLE,
        help="seconds a dispatcher that claimed nothing waits before it looks again"
        " (a worker's dispatch job: its interval, 15 s by default)",
    )
    parser.add_argument("--part", choices=("both", "sequential", "concurrent"), default="both")
    args = parser.parse_args()
    n = args.meters
    print(f"loading {n:,} meter-mode accounts …", flush=True)
    url = prepare(args.postgres, n)
    engine = make_engine(url)
    if args.part != "concurrent":
        sequential(engine, url, n)
    if args.part != "sequential":
        concurrent(engine, url, n, args.dispatchers, args.idle)
    print("target: >= 2,000 commands/s queued and handed to the platform")
    engine.dispose()


if __name__ == "__main__":
    main()
