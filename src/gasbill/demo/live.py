"""Time after the demo's story, while it serves: the simulated world keeps living.

Without it the simulated clock stops when the story ends, no job runs, and a
payment taken at the counter (in the browser or over the API) waits for a
meter that never wakes. `LiveClock` moves both worlds on in a thread of its
own: at the pace of the wall clock while nothing waits for a meter, and in a
hurry (two simulated hours a second by default) while a command does — as
the product's `/metrics` shows it — since a simulated meter, like a real
one, takes commands only at its daily wake-up. So a clerk watches a top-up
reach the meter within seconds, and days pass on the meters and in the books
as they would have.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from decimal import Decimal

import httpx

from gasbill.demo.stage import Stage

log = logging.getLogger("gasbill.demo")
IN_FLIGHT = "gasbill_commands_in_flight"


def commands_in_flight(metrics: str) -> int:
    """The sum of the `gasbill_commands_in_flight` gauge in a Prometheus exposition."""
    total = 0
    for line in metrics.splitlines():
        if line.startswith(IN_FLIGHT + "{") or line.startswith(IN_FLIGHT + " "):
            total += int(Decimal(line.rsplit(" ", 1)[1]))  # a count, read exactly
    return total


class LiveClock:
    def __init__(
        self,
        stage: Stage,
        *,
        hurry: timedelta = timedelta(hours=2),
        tick_seconds: float = 1.0,
    ) -> None:
        self.stage = stage
        self.hurry = hurry
        self.tick_seconds = tick_seconds
        self._metrics = httpx.Client(base_url=stage.product.url, timeout=30)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-live-clock", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._metrics.close()

    def waiting_on_meters(self) -> bool:
        answer = self._metrics.get("/metrics")
        answer.raise_for_status()
        return commands_in_flight(answer.text) > 0

    def tick(self, elapsed: timedelta) -> None:
        """One step: `elapsed` of wall time, or `hurry` while a command waits for its meter."""
        step = self.hurry if self.waiting_on_meters() else elapsed
        self.stage.advance(self.stage.now + step, step=self.hurry)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.tick_seconds):
            now = time.monotonic()
            elapsed, last = timedelta(seconds=now - last), now
            try:
                self.tick(elapsed)
            except Exception:  # a failed step is logged; the next one tries again
                log.exception("the demo's live clock failed a step")
