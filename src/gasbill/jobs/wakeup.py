"""Waking billing when readings arrive, from any process (PostgreSQL LISTEN/NOTIFY).

In the process that runs the jobs a stored frozen reading wakes the inbox
job directly. Every other process that stores readings (uvicorn workers,
`gasbill import`) sends `NOTIFY gasbill_billing` instead, at most once a
second; the process running the jobs listens on a connection of its own and
wakes its inbox job. On SQLite there is one process per database file in
practice, and its own wake is enough (the inbox job's interval catches the
rest).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gasbill.adapters.db.engine import is_sqlite

log = logging.getLogger("gasbill.jobs.wakeup")

CHANNEL = "gasbill_billing"
NOTIFY_EVERY_SECONDS = 1.0


class BillingNotifier:
    """`NOTIFY gasbill_billing`, at most once per `every` seconds (pushes come by thousands)."""

    def __init__(self, engine: Engine, *, every: float = NOTIFY_EVERY_SECONDS) -> None:
        self.engine = engine
        self.every = every
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.every:
                return
            self._last = now
        with self.engine.connect() as conn:
            conn.execute(sa.text(f"NOTIFY {CHANNEL}"))
            conn.commit()


def billing_notifier(engine: Engine) -> Callable[[], None] | None:
    """The notifier for this database, or None where processes do not share one (SQLite)."""
    return None if is_sqlite(engine) else BillingNotifier(engine)


class BillingListener:
    """A thread that LISTENs on its own connection and calls `on_wake` for each notification."""

    def __init__(self, url: str, on_wake: Callable[[], None]) -> None:
        self.url = url
        self.on_wake = on_wake
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if is_sqlite(self.url) or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="gasbill-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(_libpq_url(self.url), autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    log.info("listening for readings stored elsewhere (%s)", CHANNEL)
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.on_wake()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("the billing listener lost its connection; again in 5 s")
                self._stop.wait(5)


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url
