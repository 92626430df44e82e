"""bench/campaign.py's concurrent part: the campaign as the running system works it.

Enrolment (`run_campaigns`, the campaigns job) runs in one process while
dispatcher processes run the dispatch use case (`dispatch`, what every
`gasbill worker` runs, claiming meters with advisory locks and rows with
FOR UPDATE) against bench/campaign.py's stand-in AddMulti, handing over what
is queued as it is queued. Timed from the change's start (every process
started, connected, released at once) until the last setprice is handed over
(its reply recorded); CPU is every process's and every PostgreSQL backend's of
the database, from /proc, over the same window. A dispatcher that finds
nothing to claim waits `idle` seconds and looks again; it stops once the
campaign has left `enrolling` (its last page is in) and a round claims
nothing.

The same-run baseline: bare rows inserted by one process a page at a time
(as the sequential baseline) while as many processes as there are
dispatchers claim them 50 at a time (FOR UPDATE SKIP LOCKED on the queue's
index) and mark them handed over, one UPDATE each: the rows' own cost, with
the same concurrency.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.service.campaigns import run_campaigns
from gasbill.service.commands.dispatch import dispatch
from gasbill.service.commands.queue import CommandPolicy

TICKS = os.sysconf("SC_CLK_TCK")
IDLE = 0.05  # seconds a dispatcher with nothing to claim waits before it looks again (default)


# -- CPU ------------------------------------------------------------------------------------
def cpu_of(pids: set[int]) -> dict[int, float]:
    """utime + stime of each process still there, in seconds."""
    out = {}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def backend_pids(url: str) -> set[int]:
    """The PostgreSQL backends of this database, but the one asking."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        pids = conn.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
        ).scalars()
        found = {int(p) for p in pids}
    engine.dispose()
    return found


@dataclass
class Window:
    """Wall time and CPU (processes and backends) from `start` on."""

    url: str
    pids: set[int]
    wall: float = 0.0
    before: dict[int, float] = field(default_factory=dict)
    own: float = 0.0

    def start(self) -> None:
        self.before = cpu_of(self.pids | backend_pids(self.url))
        self.own = time.process_time()
        self.wall = time.monotonic()

    def cpu(self) -> dict[int, float]:
        """CPU seconds since `start` of each process and backend (0: this one)."""
        after = cpu_of(self.pids | backend_pids(self.url))
        spent = {pid: seconds - self.before.get(pid, 0.0) for pid, seconds in after.items()}
        spent[0] = time.process_time() - self.own
        return spent


# -- the processes --------------------------------------------------------------------------
@dataclass
class Board:
    """What the processes share: who is ready, the start, the end of enrolment, the stop."""

    ready: Any
    go: Any
    enrolled: Any
    stop: Any
    results: Any

    @classmethod
    def make(cls, ctx: Any) -> Board:
        return cls(ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue())


def _started(board: Board, role: str, warm: Callable[[], object]) -> float:
    warm()  # connected before the start: a backend of its own, counted from the start
    board.ready.put((role, os.getpid()))
    board.go.wait()
    return time.monotonic()


def enrol(url: str, board: Board, root: str) -> None:
    """The campaigns job's run on the day of the change (one process)."""
    import campaign as bench  # bench/campaign.py (which imports this module)

    engine = make_engine(url)
    catalog = TariffCatalog(Path(root) / "tariffs", "Asia/Shanghai")
    codec, policy = Codec(bench.ZONE), CommandPolicy()
    started = _started(board, "enrol", lambda: engine.connect().close())
    outcome = run_campaigns(
        lambda: UnitOfWork(engine),
        catalog=catalog,
        codec=codec,
        policy=policy,
        now=bench.CHANGE_DAY,
    )
    ended = time.monotonic()
    board.enrolled.set()
    board.results.put(("enrol", outcome.enrolled, started, ended, outcome.errors))
    board.stop.wait()
    engine.dispose()


def hand_over(url: str, board: Board, number: int, idle_for: float) -> None:
    """A dispatcher: `dispatch` round after round, as a worker's dispatch job runs it; with
    nothing to claim, it waits `idle_for` seconds before it looks again."""
    import campaign as bench

    engine = make_engine(url)
    codec, policy = Codec(bench.ZONE), CommandPolicy()
    platform = bench.Platform(first_id=10_000_000 * (number + 1), keep=True)
    started = _started(board, "dispatch", lambda: engine.connect().close())
    last = started
    rounds = idle = 0

    def enrolling() -> bool:
        if board.enrolled.is_set():
            return False
        with engine.connect() as conn:
            left = conn.execute(
                sa.text("SELECT count(*) FROM campaign WHERE status <> 'enrolling'")
            ).scalar_one()
        return not left

    while True:
        still = enrolling()
        at = bench.CHANGE_DAY + timedelta(seconds=time.monotonic() - started)
        done = dispatch(lambda: UnitOfWork(engine), platform, codec, policy=policy, now=at)
        rounds += 1
        if done.sent:
            last = time.monotonic()
        if not done.claimed:
            if not still:
                break
            idle += 1
            time.sleep(idle_for)
    board.results.put(("dispatch", number, platform.ids, last, rounds, idle))
    board.stop.wait()
    engine.dispose()


# -- the bare rows --------------------------------------------------------------------------
def bare_insert(url: str, board: Board, n: int, page: int) -> None:
    """n bare command rows, queued, inserted a page at a time (one process)."""
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    insert = sa.text(
        "INSERT INTO command (define_no, company_no, meter_id, meter_comm_no, ctrl_type,"
        " intent, status, outcome, feedback, reason, actor, attempts, last_error,"
        " next_attempt_at, timeout_at, created_at) VALUES (:d, '1001', :m, :c,"
        " 'iotmeterv1.prepay.setprice', '{}', 'queued', '', '', 'bare', 'bench', 0, '',"
        " :now, :now, :now)"
    )
    rows = [
        {"d": f"bare-{i}", "m": 2 * (i % (n // 2 or 1)) + 1, "c": f"{i:014d}", "now": now}
        for i in range(n)
    ]
    started = _started(board, "enrol", lambda: engine.connect().close())
    for start in range(0, n, page):
        with engine.begin() as conn:
            conn.execute(insert, rows[start : start + page])
    ended = time.monotonic()
    board.enrolled.set()
    board.results.put(("enrol", n, started, ended, []))
    board.stop.wait()
    engine.dispose()


def bare_update(url: str, board: Board, number: int, batch: int) -> None:
    """Queued bare rows claimed `batch` at a time and marked handed over, one UPDATE each."""
    engine = sa.create_engine(url)
    claim = sa.text(
        "UPDATE command SET status = 'sent', ctrl_id = id, sent_at = now() WHERE id IN"
        " (SELECT id FROM command WHERE status = 'queued' AND reason = 'bare'"
        " ORDER BY next_attempt_at LIMIT :batch FOR UPDATE SKIP LOCKED) RETURNING id"
    )
    ids: list[int] = []
    started = _started(board, "dispatch", lambda: engine.connect().close())
    last, rounds, idle = started, 0, 0
    while True:
        still = not board.enrolled.is_set()
        with engine.begin() as conn:
            got = list(conn.execute(claim, {"batch": batch}).scalars())
        rounds += 1
        if got:
            ids.extend(got)
            last = time.monotonic()
        elif not still:
            break
        else:
            idle += 1
            time.sleep(IDLE)
    board.results.put(("dispatch", number, ids, last, rounds, idle))
    board.stop.wait()
    engine.dispose()


# -- running them ---------------------------------------------------------------------------
@dataclass
class Run:
    wall: float  # from the start until the last command handed over
    cpu: float  # of everything, over that window
    db_cpu: float  # of PostgreSQL's backends
    enrol_cpu: float  # of the enrolling process
    dispatch_cpu: float  # of the dispatching processes
    enrolled: int
    enrol_wall: float  # the enrolling process's run, start to end
    handed: list[list[int]]  # the command ids each dispatcher handed over
    rounds: int
    idle: int
    errors: list[str]


def run(
    url: str,
    enroller: Callable[..., None],
    enrol_args: tuple[Any, ...],
    dispatcher: Callable[..., None],
    dispatch_args: tuple[Any, ...],
    dispatchers: int,
) -> Run:
    """One enrolling process and `dispatchers` dispatching ones, started together."""
    ctx = mp.get_context("spawn")
    board = Board.make(ctx)
    processes = [ctx.Process(target=enroller, args=(url, board, *enrol_args))]
    processes += [
        ctx.Process(target=dispatcher, args=(url, board, number, *dispatch_args))
        for number in range(dispatchers)
    ]
    for process in processes:
        process.start()
    try:
        roles = dict(board.ready.get(timeout=120)[::-1] for _ in processes)  # pid: role
        window = Window(url, set(roles))
        window.start()
        board.go.set()
        ends: list[float] = []
        handed: list[list[int]] = []
        enrolled, enrol_wall, rounds, idle, errors = 0, 0.0, 0, 0, []
        spent: dict[int, float] = {}
        reported = False
        while len(handed) < dispatchers or not reported:
            try:
                kind, *rest = board.results.get(timeout=5)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in processes):
                    raise SystemExit("a bench process failed") from None
                continue
            if kind == "enrol":
                enrolled, started, ended, errors = rest[0], rest[1], rest[2], list(rest[3])
                enrol_wall, reported = ended - started, True
            else:
                _, ids, last, their_rounds, their_idle = rest
                handed.append(list(ids))
                ends.append(last)
                rounds, idle = rounds + their_rounds, idle + their_idle
                if len(handed) == dispatchers:  # the window ends with the last hand-over
                    spent = window.cpu()
        wall = max(ends) - window.wall
    finally:
        board.stop.set()
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()

    def of(role: str | None) -> float:
        return sum(v for pid, v in spent.items() if roles.get(pid) == role and pid)

    cpu = sum(spent.values())
    return Run(
        wall,
        cpu,
        of(None),
        of("enrol"),
        of("dispatch"),
        enrolled,
        enrol_wall,
        handed,
        rounds,
        idle,
        errors,
    )
