"""The platform pushing to an application: readings, alarms, events and command reports.

As the vendor describes it (§1.1): when the application does not answer
with success, the platform keeps the data and pushes it again later, for
`keep_days` (7) simulated days, then drops it. With the configured
probabilities a push is delivered twice (`push_duplicate`) or held back so
that later pushes overtake it (`push_reorder`). Reports go as arrays of up
to `report_batch` items; an item the application answers `result: false`
for is pushed again.

A transport error or a 5xx means the application is down: the rest waits for
the next attempt. A `failed` envelope or another 4xx concerns that push
alone. Time is the simulated clock's; `flush` is called as the world advances.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from iotsim.envelope import answer_of
from iotsim.faults import Faults
from iotsim.jsonwire import write_json

log = logging.getLogger(__name__)

Kind = Literal["reading", "alarm", "event", "report"]
PATHS: dict[Kind, str] = {
    "reading": "api/Data/MeterData/Add",
    "alarm": "api/Data/DeviceAlarm/Add",
    "event": "api/Data/DeviceEvent/Add",
    "report": "api/Conf/CtrlData/Report",
}


class PushTarget(BaseModel):
    """Where and how the platform pushes (the application's endpoints and push key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None  # the application's base URL; None: query mode, nothing pushed
    company_no: str = "1001"
    data_api_key: str = "496d1bac094f11e79d9c0a0027000010"
    retry_minutes: int = Field(default=10, ge=1)
    keep_days: int = Field(default=7, ge=1)
    report_batch: int = Field(default=20, ge=1, le=1000)
    reorder_hold_minutes: int = Field(default=180, ge=1)
    duplicate_within_minutes: int = Field(default=60, ge=1)
    # pushes in flight at once (a platform pushes from many connections); 1: one after another.
    # Above 1, a meter's readings may overtake each other, as with `push_reorder`; a report
    # (a command's outcome) is still pushed alone, after what came before it.
    concurrency: int = Field(default=1, ge=1, le=256)


class PushAnswer(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...


class PushHttp(Protocol):
    """What the pusher sends with: an `httpx.Client` (tests, in-process apps) or, on a real
    socket, `iotsim.push_http.KeepAliveClient`."""

    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> PushAnswer: ...


@dataclass(frozen=True, slots=True)
class Push:
    seq: int
    kind: Kind
    body: Any
    received: datetime  # when the platform got it; the cache counts from here
    due: datetime
    copy: bool = False


@dataclass
class PushStats:
    delivered: int = 0
    duplicates: int = 0
    failed_attempts: int = 0
    dropped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class _Down(Exception):
    """The application did not answer: stop this round."""


class Pusher:
    def __init__(self, settings: PushTarget, faults: Faults, client: PushHttp | None) -> None:
        self.settings = settings
        self.faults = faults
        self.client = client
        self.stats = PushStats()
        self._queue: list[Push] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def active(self) -> bool:
        return self.client is not None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def enqueue(self, kind: Kind, body: Any, at: datetime) -> None:
        if self.client is None:
            return
        due = at
        if self.faults.happens("push_reorder"):
            hold = self.faults.chance("push_reorder").randint(1, self.settings.reorder_hold_minutes)
            due += timedelta(minutes=hold)
        with self._lock:
            self._seq += 1
            self._queue.append(Push(self._seq, kind, body, at, due))

    def flush(self, now: datetime) -> None:
        """Push everything due by `now`; keep what fails for a later attempt."""
        if self.client is None:
            return
        with self._flushing:
            due = self._take_due(now)
            retry_at = now + timedelta(minutes=self.settings.retry_minutes)
            units = self._units(due)
            start = 0
            for wave in self._waves(units):
                start += len(wave)
                results = self._send_wave(wave)
                for unit, again in zip(wave, results, strict=True):
                    if again is not None:
                        self._requeue([replace(p, due=retry_at) for p in again])
                        self._maybe_duplicate(unit, now)
                down = [u for u, again in zip(wave, results, strict=True) if again is None]
                if down:  # the application is down: the rest waits for the next attempt
                    rest = down + units[start:]
                    self._requeue([replace(p, due=retry_at) for u in rest for p in u])
                    return

    def _waves(self, units: list[list[Push]]) -> list[list[list[Push]]]:
        """The units sent at once: up to `concurrency` readings, alarms and events, while a
        report goes alone, after what came before it and before what follows. Its outcome
        moves the application's books (a decision may read the meter's latest reading), so
        it is never raced against the readings of its meter's wake-up."""
        waves: list[list[list[Push]]] = []
        for unit in units:
            alone = unit[0].kind == "report"
            last = waves[-1] if waves else None
            if (
                last is None
                or alone
                or last[0][0].kind == "report"
                or len(last) >= self.settings.concurrency
            ):
                waves.append([unit])
            else:
                last.append(unit)
        return waves

    def _send_wave(self, wave: list[list[Push]]) -> list[list[Push] | None]:
        """Each unit's pushes to try again, or None where the application was down."""
        if len(wave) == 1:
            return [self._try(wave[0])]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.concurrency, "iotsim-push")
        return list(self._pool.map(self._try, wave))

    def _try(self, unit: list[Push]) -> list[Push] | None:
        try:
            return self._send(unit)
        except _Down:
            return None

    def _take_due(self, now: datetime) -> list[Push]:
        keep = timedelta(days=self.settings.keep_days)
        with self._lock:
            due = [p for p in self._queue if p.due <= now]
            self._queue = [p for p in self._queue if p.due > now]
        fresh = [p for p in due if now - p.received <= keep]
        self.stats.dropped += len(due) - len(fresh)
        return sorted(fresh, key=lambda p: (p.due, p.seq))

    def _units(self, pushes: list[Push]) -> list[list[Push]]:
        """One push per reading, alarm or event; reports in arrays of up to report_batch."""
        units: list[list[Push]] = []
        for push in pushes:
            last = units[-1] if units else None
            if (
                push.kind == "report"
                and last is not None
                and last[0].kind == "report"
                and len(last) < self.settings.report_batch
            ):
                last.append(push)
            else:
                units.append([push])
        return units

    def _requeue(self, pushes: list[Push]) -> None:
        if pushes:
            with self._lock:
                self._queue.extend(pushes)

    def _send(self, unit: list[Push]) -> list[Push]:
        """Push one unit; the pushes to try again (all, some report items, or none)."""
        assert self.client is not None
        kind = unit[0].kind
        body = [p.body for p in unit] if kind == "report" else unit[0].body
        headers = {
            "content-type": "application/json; charset=utf-8",
            "company_no": self.settings.company_no,
            "data_api_key": self.settings.data_api_key,
        }
        try:
            response = self.client.post(
                PATHS[kind], content=write_json(body).encode("utf-8"), headers=headers
            )
        except httpx.HTTPError as exc:
            self._count(failed_attempts=1)
            log.info("push to the application failed: %r", exc)
            raise _Down from None
        if response.status_code >= 500:
            self._count(failed_attempts=1)
            raise _Down
        try:
            ok, message, data = answer_of(response.text)
        except ValueError:
            ok, message, data = False, response.text[:200], None
        if not ok:
            self._count(failed_attempts=1)
            log.info("the application refused a %s push: %s", kind, message)
            return unit
        again = self._refused_items(unit, data) if kind == "report" else []
        self._count(delivered=len(unit) - len(again), kind=kind)
        return again

    def _count(self, *, failed_attempts: int = 0, delivered: int = 0, kind: str = "") -> None:
        with self._lock:  # pushes may be sent from several threads
            self.stats.failed_attempts += failed_attempts
            self.stats.delivered += delivered
            if kind:
                self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + delivered

    @staticmethod
    def _refused_items(unit: list[Push], data: Any) -> list[Push]:
        """Report items answered `result: false` or not at all (by position): pushed again."""
        if not isinstance(data, list):
            return unit
        again = []
        for position, push in enumerate(unit):
            item = data[position] if position < len(data) else None
            accepted = (
                isinstance(item, dict)
                and item.get("result") is True
                and item.get("ctrl_id") == push.body["ctrl_id"]
            )
            if not accepted:
                again.append(push)
        return again

    def _maybe_duplicate(self, unit: list[Push], now: datetime) -> None:
        copies = []
        for push in unit:
            if push.copy or not self.faults.happens("push_duplicate"):
                continue
            later = self.faults.chance("push_duplicate").randint(
                0, self.settings.duplicate_within_minutes
            )
            copies.append(replace(push, due=now + timedelta(minutes=later), copy=True))
        self.stats.duplicates += len(copies)
        self._requeue(copies)
