"""Leadership: which process runs the scheduled jobs (DESIGN §11).

PostgreSQL: the node holding a session-level advisory lock, taken with
`pg_try_advisory_lock` on a connection of its own (never one of the app's
pool, whose connections come and go). Before each job the leader checks that
the connection is alive and still holds the lock; if the connection dropped,
the server released the lock with it, leadership is lost, and the next check
tries to take it again on a new connection. Row claims (`FOR UPDATE SKIP
LOCKED`) remain the real guarantee that no work is done twice.

SQLite: one process schedules, the one holding an exclusive `flock` on a lock
file next to the database; the lock goes with the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from gasbill.adapters.db.engine import is_sqlite, normalise_url

log = logging.getLogger("gasbill.jobs.leader")

CONNECT_TIMEOUT_SECONDS = 5


class Leadership(Protocol):
    def is_leader(self) -> bool:
        """Whether this process may run jobs now: checks, and takes leadership if free."""
        ...

    def release(self) -> None:
        """Give leadership up (at shutdown)."""
        ...

    def describe(self) -> str: ...


class SoleLeader:
    """Always the leader: one process by construction (an in-memory SQLite, the demo)."""

    def is_leader(self) -> bool:
        return True

    def release(self) -> None:
        return None

    def describe(self) -> str:
        return "sole process"


def _split_key(key: int) -> tuple[int, int]:
    """The (classid, objid) pg_locks shows for a bigint advisory key."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


class AdvisoryLockLeader:
    """Leadership by a PostgreSQL session-level advisory lock on a dedicated connection."""

    def __init__(self, url: str, key: int) -> None:
        self.key = key
        self._engine: Engine = sa.create_engine(
            normalise_url(url),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "application_name": "gasbill-scheduler-leader",
            },
        )
        self._conn: Connection | None = None
        self._held = False
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        with self._lock:
            if self._held and self._still_held():
                return True
            if self._held:
                log.warning("scheduler leadership lost (lock %d): jobs stop here", self.key)
                self._held = False
            self._held = self._try_acquire()
            if self._held:
                log.info("scheduler leadership taken (advisory lock %d)", self.key)
            return self._held

    def _still_held(self) -> bool:
        if self._conn is None:
            return False
        classid, objid = _split_key(self.key)
        try:
            held = self._conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND granted AND objsubid = 1 "
                    "AND classid::bigint = :classid AND objid::bigint = :objid"
                ),
                {"classid": classid, "objid": objid},
            ).scalar_one()
        except SQLAlchemyError as exc:
            log.warning("the leadership connection failed: %s", exc)
            self._drop()
            return False
        return bool(held)

    def _try_acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed or self._conn.invalidated:
                self._drop()
                self._conn = self._engine.connect()
            got = self._conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar_one()
        except SQLAlchemyError as exc:
            log.warning("cannot reach the database to take scheduler leadership: %s", exc)
            self._drop()
            return False
        return bool(got)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # its session (and any lock it held) is gone or going
                conn.close()
            except SQLAlchemyError:
                pass

    def release(self) -> None:
        with self._lock:
            if self._held and self._conn is not None:
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}
                    )
            self._held = False
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(SQLAlchemyError):
                    conn.close()
            self._engine.dispose()

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self.key}"

    @property
    def backend_pid(self) -> int | None:
        """The server process of the dedicated connection (for tests and diagnostics)."""
        with self._lock:
            if self._conn is None:
                return None
            pid = self._conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            return int(pid)


class FileLockLeader:
    """Leadership by an exclusive flock on a file: one scheduling process per SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._warned = False

    def is_leader(self) -> bool:
        with self._lock:
            if self._file is not None:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+b")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                if not self._warned:
                    log.warning(
                        "another process schedules jobs on this database (%s is locked): "
                        "this one serves the API only",
                        self.path,
                    )
                    self._warned = True
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n".encode())
            handle.flush()
            self._file = handle
            log.info("scheduler leadership taken (lock file %s)", self.path)
            return True

    def release(self) -> None:
        with self._lock:
            handle, self._file = self._file, None
            if handle is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                handle.close()

    def describe(self) -> str:
        return f"lock file {self.path}"


def lock_file_of(url: str) -> Path | None:
    """The lock file next to a SQLite database file; None for an in-memory one."""
    database = sa.engine.make_url(normalise_url(url)).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).with_name(Path(database).name + ".scheduler.lock")


def leadership_for(url: str, key: int) -> Leadership:
    """The leadership that fits the database behind `url`."""
    if is_sqlite(normalise_url(url)):
        path = lock_file_of(url)
        return SoleLeader() if path is None else FileLockLeader(path)
    return AdvisoryLockLeader(url, key)
