"""What bench/night.py is made of: the processes it starts, the CPU they use, the database.

Processes are started as the operator would (`gasbill serve`, uvicorn's
workers on `gasbill.api.asgi`, `gasbill worker`, `gasbill simulate`), each
logging to a file. CPU is read from /proc: every process started here with
its children, and the PostgreSQL backends serving the bench's database, so a
figure per core-second means the same on a busy machine and a quiet one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from gasbill.adapters.db.engine import normalise_url
from gasbill.adapters.db.migrations import upgrade

BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")

BARE_APP = """
from fastapi import FastAPI, Request, Response
app = FastAPI()
OK = '{"Data":"LA6owvN3SECEP2zL2fkYxg==","State":"success","Message":""}'
@app.post("/api/{part:path}")
async def add(part: str, request: Request) -> Response:
    await request.body()
    return Response(OK, media_type="application/json")
"""


class Ports:
    """Ports to listen on: from `base` upwards, or any free one (base 0)."""

    def __init__(self, base: int) -> None:
        self.next = base

    def take(self) -> int:
        if not self.next:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                return int(sock.getsockname()[1])
        port, self.next = self.next, self.next + 1
        return port


@dataclass
class Fleet:
    """The processes of one run, stopped together (the newest first)."""

    logs: Path
    env: dict[str, str]
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, args: list[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=cwd
        )
        self.processes.append((name, process))
        return process

    def stop(self, name_prefix: str = "") -> None:
        chosen = [(n, p) for n, p in self.processes if n.startswith(name_prefix)]
        for _, process in reversed(chosen):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in chosen:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            self.processes.remove((name, process))

    def pids(self) -> list[int]:
        return [p.pid for _, p in self.processes if p.poll() is None]

    def check(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"{name} ended early (exit {process.returncode}): see {self.logs}")


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            found = check()
            if found:
                return found
        time.sleep(every)
    raise SystemExit(f"{what}: not within {timeout:.0f} s")


def up(url: str, fleet: Fleet, timeout: float = 120) -> None:
    def answered() -> bool:
        fleet.check()
        httpx.get(url, timeout=2)
        return True

    wait_until(url, answered, timeout)


# -- CPU ------------------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _tree(roots: list[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: set[int]) -> dict[int, float]:
    """utime + stime (and of reaped children) of each process, in seconds."""
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            out[pid] = sum(int(v) for v in fields[11:15]) / TICKS
    return out


class CpuMeter:
    """CPU used by a fleet's processes and by the PostgreSQL backends of one database."""

    def __init__(self, fleet: Fleet, engine: sa.Engine | None) -> None:
        self.fleet = fleet
        self.engine = engine

    def _backends(self) -> set[int]:
        if self.engine is None:
            return set()
        with self.engine.connect() as conn:
            return {
                int(pid)
                for (pid,) in conn.execute(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                )
            }

    def _pids(self) -> set[int]:
        return _tree(self.fleet.pids()) | self._backends()

    def snapshot(self) -> dict[int, float]:
        return cpu_seconds(self._pids())

    def since(self, before: dict[int, float]) -> float:
        after = self.snapshot()
        return sum(max(0.0, used - before.get(pid, 0.0)) for pid, used in after.items())

    def by_role(self, before: dict[int, float]) -> dict[str, float]:
        """The CPU seconds since `before` of each of the fleet's processes (by its name, with
        its children; a name's digits dropped: the workers together) and of the backends."""
        roles: dict[int, str] = dict.fromkeys(self._backends(), "PostgreSQL")
        for name, process in self.fleet.processes:
            if process.poll() is None:
                for pid in _tree([process.pid]):
                    roles[pid] = name.rstrip("-0123456789") or name
        spent: dict[str, float] = {}
        for pid, used in cpu_seconds(set(roles)).items():
            role = roles[pid]
            spent[role] = spent.get(role, 0.0) + max(0.0, used - before.get(pid, 0.0))
        return spent

    def database_share(self, before: dict[int, float]) -> float:
        """The CPU seconds since `before` of the database's backends (still connected)."""
        backends = self._backends()
        after = cpu_seconds(backends)
        return sum(max(0.0, used - before.get(pid, 0.0)) for pid, used in after.items())


@contextlib.contextmanager
def measured(meter: CpuMeter) -> Iterator[dict[str, Any]]:
    """Wall and CPU seconds of the block: {'wall', 'cpu', 'database_cpu', 'by_role'} once
    it ends (`by_role`: CPU seconds by process name, `CpuMeter.by_role`)."""
    result: dict[str, Any] = {}
    before, started = meter.snapshot(), time.perf_counter()
    yield result
    result["wall"] = time.perf_counter() - started
    result["database_cpu"] = meter.database_share(before)
    result["by_role"] = meter.by_role(before)
    result["cpu"] = meter.since(before)


# -- the database ---------------------------------------------------------------------------
def fresh_postgres(url: str) -> str:
    """The database emptied (created if missing) and migrated; its URL."""
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
    engine.dispose()
    plain = target.render_as_string(hide_password=False)
    upgrade(plain)
    return plain


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def row(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).one()
