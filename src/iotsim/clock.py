"""The simulator's time: an injected clock the world is stepped on, never the wall's.

`SimulatedClock` is what the model, the platform and the pusher read. Only
the `gasbill simulate` loop looks at the wall, through `WallPace`, to decide
how far to advance the world.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal


class SimulatedClock:
    """Aware instants; moves forward only, when the world is advanced."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs an aware start")
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.now

    @property
    def now(self) -> datetime:
        with self._lock:
            return self._now

    def move_to(self, instant: datetime) -> None:
        with self._lock:
            if instant < self._now:
                raise ValueError(f"the clock cannot go back from {self._now} to {instant}")
            self._now = instant


class WallPace:
    """Maps elapsed wall time to simulated time at `speed` simulated seconds per wall second."""

    def __init__(self, start: datetime, speed: Decimal, wall_start_ns: int) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self.wall_start_ns = wall_start_ns

    def simulated_at(self, wall_ns: int) -> datetime:
        elapsed_us = Decimal(wall_ns - self.wall_start_ns) * self.speed / 1000
        return self.start + timedelta(microseconds=int(elapsed_us))
