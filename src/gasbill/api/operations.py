"""For operators: `/health` for load balancers and `/metrics` for Prometheus.

Neither needs a staff token (probes and scrapers carry none): serve them to
the internal network only. `/health` answers 200 when the database answers
and its schema is the one this code needs, else 503 saying which; 200 with
status "degraded" while the platform refuses our login (no command reaches a
meter). `/metrics` also counts this process's platform errors by kind. `/metrics`
is the Prometheus text format: what waits in the database (readings to
bill, commands in flight, exceptions, push conflicts), this process's push
transactions, and, where this process runs the jobs, each job's runs and
failures.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from gasbill.adapters.db.migrations import current_revision, head_revision
from gasbill.api.deps import AppContext
from gasbill.domain.outbox import OPEN

router = APIRouter(tags=["operations"])
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@lru_cache(maxsize=1)
def _head() -> str | None:
    return head_revision()  # read from the migration files once


def _context(request: Request) -> AppContext:
    ctx = request.app.state.gasbill
    assert isinstance(ctx, AppContext)
    return ctx


@router.get("/health", summary="200 when the database answers and its schema is current")
def health(request: Request) -> JSONResponse:
    try:
        current = current_revision(_context(request).engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {reason}"}, status_code=503
        )
    if current != _head():
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "ok",
                "schema": f"at {current or 'nothing'}, this code needs {_head()}: "
                "run `gasbill db upgrade`",
            },
            status_code=503,
        )
    body = {"status": "ok", "database": "ok", "schema": current}
    services = _context(request).services
    refused = services.platform_health.login_refused if services is not None else None
    if refused:
        # still serving (200), but no command reaches a meter until the login is fixed
        body |= {"status": "degraded", "platform": f"login refused: {refused}"}
    return JSONResponse(body)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    ctx = _context(request)
    text = Exposition()
    _database_metrics(text, ctx.engine)
    _push_metrics(text, getattr(request.app.state, "platform", None))
    if ctx.services is not None:
        _platform_metrics(text, ctx.services.platform_health.snapshot())
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        _job_metrics(text, jobs.status())
    return Response(text.render(), media_type=PROMETHEUS_TEXT)


def _database_metrics(text: Exposition, engine: sa.Engine) -> None:
    """What is waiting in the database: unbilled readings, commands in flight, exceptions
    and push conflicts open."""
    with engine.connect() as conn:
        text.gauge(
            "gasbill_inbox_pending",
            "Frozen readings stored and not billed yet.",
            [({}, _scalar(conn, "SELECT COUNT(*) FROM billing_inbox WHERE handled_at IS NULL"))],
        )
        open_statuses = sorted(str(status) for status in OPEN)
        rows = conn.execute(
            sa.text(
                "SELECT status, COUNT(*) FROM command WHERE status IN :statuses GROUP BY status"
            ).bindparams(sa.bindparam("statuses", expanding=True)),
            {"statuses": open_statuses},
        ).all()
        found = {str(status): int(n) for status, n in rows}
        text.gauge(
            "gasbill_commands_in_flight",
            "Commands to meters queued, being sent or sent and not ended, by status.",
            [({"status": status}, found.get(status, 0)) for status in open_statuses],
        )
        exceptions = conn.execute(
            sa.text(
                "SELECT kind, COUNT(*) FROM billing_exception WHERE status = 'open' GROUP BY kind"
            )
        ).all()
        text.gauge(
            "gasbill_exceptions_open",
            "Exceptions waiting for a clerk, by kind.",
            [({"kind": str(kind)}, int(n)) for kind, n in exceptions],
        )
        text.gauge(
            "gasbill_push_conflicts_unreviewed",
            "Re-pushes that differed from what was stored, not reviewed yet: one per record "
            "and value however often it came.",
            [
                (
                    {},
                    _scalar(conn, "SELECT COUNT(*) FROM push_conflict WHERE status = 'open'"),
                )
            ],
        )


def _push_metrics(text: Exposition, platform: object) -> None:
    """The push counters of this process's platform API, if it serves one."""
    readings = getattr(platform, "readings", None)
    if readings is not None:
        text.counter(
            "gasbill_push_readings",
            "Readings pushed to this process and written (stored or found stored).",
            [({}, readings.items)],
        )
        text.counter(
            "gasbill_push_transactions",
            "Transactions those readings were written in (group commit).",
            [({}, readings.batches)],
        )


def _scalar(conn: sa.Connection, sql: str, **params: Any) -> int:
    return int(conn.execute(sa.text(sql), params).scalar_one())


def _platform_metrics(text: Exposition, health: dict[str, Any]) -> None:
    text.counter(
        "gasbill_platform_errors",
        "Calls of this process to the platform's remote control that failed, by kind "
        "(login_refused, unreachable, refused).",
        [({"kind": kind}, n) for kind, n in sorted(health["errors"].items())],
    )
    text.counter(
        "gasbill_platform_calls", "Calls of this process to the platform.", [({}, health["calls"])]
    )
    text.gauge(
        "gasbill_platform_login_refused",
        "1 while the platform refuses this process's login.",
        [({}, int(bool(health["login_refused"])))],
    )


def _job_metrics(text: Exposition, status: dict[str, Any]) -> None:
    jobs: dict[str, dict[str, Any]] = status.get("jobs", {})
    text.gauge(
        "gasbill_jobs_leader",
        "1 when this process holds the jobs' leadership.",
        [({}, int(bool(status.get("leader"))))],
    )
    for key, kind, help_text in (
        ("runs", "counter", "Runs of a scheduled job that ended well, in this process."),
        ("failures", "counter", "Runs of a scheduled job that failed, in this process."),
        ("consecutive_failures", "gauge", "Failures of a job since its last good run."),
    ):
        samples = [({"job": name}, int(stats.get(key) or 0)) for name, stats in jobs.items()]
        (text.counter if kind == "counter" else text.gauge)(
            f"gasbill_job_{key}", help_text, samples
        )
    text.gauge(
        "gasbill_job_last_ok_timestamp_seconds",
        "When a job last ended well (Unix time).",
        [
            ({"job": name}, datetime.fromisoformat(stats["last_ok_at"]).timestamp())
            for name, stats in jobs.items()
            if stats.get("last_ok_at")
        ],
    )


Sample = tuple[dict[str, str], int | float]


class Exposition:
    """The Prometheus text format, written by hand: a few lines need no client library."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def gauge(self, name: str, help_text: str, samples: Iterable[Sample]) -> None:
        self._family(name, "gauge", help_text, samples)

    def counter(self, name: str, help_text: str, samples: Iterable[Sample]) -> None:
        self._family(f"{name}_total", "counter", help_text, samples)

    def _family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            shown = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            self.lines.append(f"{name}{{{shown}}} {value}" if shown else f"{name} {value}")

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
