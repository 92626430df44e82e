"""The simulated world: a fleet of meters, the platform in front of them, and the clock.

`Simulator.advance(until)` steps the world in `step_minutes` steps aligned to
local midnight: households use gas, meters deduct money and close valves,
freeze at midnight, wake once a day at their own time to send their frozen
readings and take their waiting commands; commands time out. After each step
the pusher pushes what is due. Everything is deterministic for a seed: each
meter draws from its own seeded stream, each fault from another.

Thread-safe: the API's handlers and `advance` take `lock`; pushes are sent
outside it, so an application in the same process may call the platform
while it receives a push.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from iotsim.clock import SimulatedClock
from iotsim.cycles import local_midnight
from iotsim.datastore import DataStore
from iotsim.faults import Faults, FaultSettings
from iotsim.firmware import execute, opened_directly
from iotsim.meter import PPM, Meter, MeterSpec, MeterStatus, Uplink, micro_of
from iotsim.platform import CtrlStore
from iotsim.pusher import Pusher, PushHttp
from iotsim.readings import DEVICE_TYPE_METER, reading
from iotsim.records import CtrlRecord
from iotsim.settings import SimulatorSettings
from iotsim.times import write_time
from iotsim.tokens import Tokens, wall_clock
from iotsim.vendor import REMOTE_CHARGE, LadderPrice, Param

COMM_NO_DIGITS = 14


def default_ladder(year: int) -> LadderPrice:
    """A plausible residential ladder: 3 tiers over a calendar year."""
    prices = ("3.000", "3.600", "4.500", "4.500", "4.500")
    ladders = ("300", "500", "500", "500")
    return LadderPrice(
        tuple(Decimal(p) for p in prices), tuple(Decimal(v) for v in ladders), date(year, 1, 1), 12
    )


@dataclass(frozen=True, slots=True)
class FleetSummary:
    now: datetime
    meters: int
    opened: int
    valves_closed: int
    exhausted: int
    balance_total: Decimal
    commands: dict[int, int]  # ctrl_state -> count
    readings: int
    alarms: int
    events: int
    pushes_delivered: int
    pushes_pending: int
    pushes_dropped: int
    push_failures: int
    push_duplicates: int
    faults: dict[str, int]


class Simulator:
    def __init__(
        self, settings: SimulatorSettings | None = None, *, push_client: PushHttp | None = None
    ) -> None:
        self.settings = settings = settings or SimulatorSettings()
        self.zone = ZoneInfo(settings.zone)
        self.clock = SimulatedClock(settings.start)
        self.lock = threading.RLock()
        self.faults = Faults(settings.faults, settings.seed)
        self.pusher = Pusher(settings.push, self.faults, push_client)
        self.data = DataStore(settings.company_no)
        self.tokens = Tokens(
            timedelta(seconds=settings.token_lifetime_seconds),
            wall_clock if settings.token_clock == "wall" else self.clock,
        )
        self._meters: dict[str, Meter] = {}
        self.platform = CtrlStore(
            company_no=settings.company_no,
            zone=self.zone,
            has_meter=lambda comm_no: comm_no in self._meters,
            on_change=self._reported,
            clock=self.clock,
            default_timeout=timedelta(hours=settings.default_timeout_hours),
        )
        for _ in range(settings.meters):
            self.add_meter()

    @property
    def now(self) -> datetime:
        return self.clock.now

    def connect(self, client: PushHttp | None) -> None:
        """Push to the application behind `client` (its base_url); None: query mode."""
        self.pusher.client = client

    def set_faults(self, faults: FaultSettings) -> None:
        """Inject these faults from now on (same seed; e.g. one lost reply in a demo)."""
        with self.lock:
            self.faults = Faults(faults, self.settings.seed)
            self.pusher.faults = self.faults

    # -- the fleet -------------------------------------------------------------------------
    def add_meter(
        self,
        comm_no: str | None = None,
        *,
        opened: bool = False,
        balance: Decimal | None = None,
        ladder: LadderPrice | None = None,
        scale_percent: int | None = None,
        wake: time | None = None,
    ) -> MeterStatus:
        """Install a meter (seeded); `opened` installs it opened, with `ladder` and `balance`."""
        with self.lock:
            comm_no = comm_no or self._next_comm_no()
            if len(comm_no) != COMM_NO_DIGITS or not comm_no.isdigit():
                raise ValueError(f"an IoT meter's comm_no has 14 digits, not {comm_no!r}")
            if comm_no in self._meters:
                raise ValueError(f"meter {comm_no} is already installed")
            rng = random.Random(f"{self.settings.seed}/meter/{comm_no}")
            drawn_scale, drawn_wake = rng.randint(60, 160), rng.randrange(600, 85_800)
            if wake is not None:
                drawn_wake = wake.hour * 3600 + wake.minute * 60 + wake.second
            spec = MeterSpec(
                comm_no=comm_no,
                scale_percent=drawn_scale if scale_percent is None else scale_percent,
                wake_seconds=drawn_wake,
                factor_permille=rng.randint(1_000, 1_030),
                start_litres=rng.randrange(2_000_000),
                battery_mv=rng.randint(3_560, 3_660),
                rssi=rng.randint(-95, -65),
                low_balance_micro=micro_of(self.settings.low_balance),
                magnetic_attack_ppm=int(self.settings.magnetic_attack_per_day * PPM),
            )
            meter = Meter(spec, self.zone, rng, self.now)
            if opened:
                ladder = ladder or default_ladder(self.now.astimezone(self.zone).year)
                opened_directly(meter, ladder, balance or Decimal(0), self.now)
            self._meters[comm_no] = meter
            self._collect(meter)
            return meter.status()

    def _next_comm_no(self) -> str:
        prefix = self.settings.comm_no_prefix
        number = len(self._meters) + 1
        while True:
            comm_no = f"{prefix}{number:0{COMM_NO_DIGITS - len(prefix)}d}"
            if comm_no not in self._meters:
                return comm_no
            number += 1

    def comm_nos(self) -> list[str]:
        with self.lock:
            return list(self._meters)

    def meter(self, comm_no: str) -> MeterStatus:
        with self.lock:
            found = self._meters.get(comm_no)
            if found is None:
                raise KeyError(f"no simulated meter {comm_no}")
            return found.status()

    def card_top_up(self, comm_no: str, value: Decimal) -> MeterStatus:
        """An IC-card top-up at the meter (moves the card_* counters, not the remote ones)."""
        with self.lock:
            meter = self._meters[comm_no]
            meter.card.add(micro_of(value))
            meter.credit(micro_of(value), self.now)
            self._collect(meter)
            return meter.status()

    # -- time --------------------------------------------------------------------------------
    def advance(self, until: datetime) -> None:
        """Step the world to `until`, pushing what is due after each step."""
        if until.tzinfo is None:
            raise ValueError("advance needs an aware datetime")
        while True:
            with self.lock:
                start = self.clock.now
                if start >= until:
                    return
                end = min(self._next_boundary(start), until)
                self._step(start, end)
                self.clock.move_to(end)
            self.pusher.flush(end)

    def advance_by(self, delta: timedelta) -> None:
        self.advance(self.now + delta)

    def flush(self) -> None:
        """Push what is due now (e.g. after the application came back)."""
        self.pusher.flush(self.now)

    def _next_boundary(self, now: datetime) -> datetime:
        day = now.astimezone(self.zone).date()
        midnight = local_midnight(day, self.zone)
        step = timedelta(minutes=self.settings.step_minutes)
        following = midnight + ((now - midnight) // step + 1) * step
        return min(following, local_midnight(day + timedelta(days=1), self.zone))

    def _step(self, start: datetime, end: datetime) -> None:
        for meter in self._meters.values():
            for at, kind in meter.happenings(start, end):
                meter.flow_to(at)
                self._collect(meter)
                if kind == "wake":
                    self._wake(meter, at)
                else:
                    meter.attack(at)
                self._collect(meter)
            meter.flow_to(end)
            self._collect(meter)
            if end >= meter.day_end:
                meter.roll_day(reading)
        self.platform.expire(end)

    def _wake(self, meter: Meter, at: datetime) -> None:
        frozen = meter.wake()
        if self.faults.happens("missed_wake"):
            meter.frozen[:0] = frozen
            return
        for uplink in frozen:
            self._receive(meter, uplink, at)

        def run(ctrl_type: str, param: Param, when: datetime) -> Any:
            refuse = ctrl_type == REMOTE_CHARGE and self.faults.happens("charge_refused")
            return execute(meter, ctrl_type, param, when, refuse_charge=refuse)

        self.platform.deliver(meter.comm_no, at, run, self.faults)
        if self.settings.realtime_readings:
            meter.uplinks.append(Uplink("reading", at, reading(meter, at, 0)))

    # -- what the platform receives ----------------------------------------------------------
    def _collect(self, meter: Meter) -> None:
        for uplink in meter.take_uplinks():
            self._receive(meter, uplink, uplink.at)

    def _receive(self, meter: Meter, uplink: Uplink, received: datetime) -> None:
        when = write_time(uplink.at, self.zone)
        receive_time = write_time(received, self.zone)
        if uplink.kind == "reading":
            body = {**uplink.body, "receive_time": receive_time}
            self.data.add_reading(body, uplink.at, received)
        else:
            kind = uplink.kind
            body = {
                "device_comm_no": meter.comm_no,
                "device_type": str(DEVICE_TYPE_METER),
                f"{kind}_time": when,
                "receive_time": receive_time,
                **uplink.body,
            }
            self.data.add_device_record(kind, body, uplink.at, received)
        self.pusher.enqueue(uplink.kind, body, received)

    def _reported(self, record: CtrlRecord, at: datetime) -> None:
        self.pusher.enqueue("report", record.report(self.zone), at)

    # -- for tests and the demo ----------------------------------------------------------------
    def summary(self) -> FleetSummary:
        with self.lock:
            meters = list(self._meters.values())
            states = Counter(int(r.ctrl_state) for r in self.platform.records.values())
            stats = self.pusher.stats
            return FleetSummary(
                now=self.now,
                meters=len(meters),
                opened=sum(m.opened for m in meters),
                valves_closed=sum(not m.valve_open for m in meters),
                exhausted=sum(m.exhausted for m in meters),
                balance_total=sum((m.status().balance for m in meters), Decimal(0)),
                commands=dict(sorted(states.items())),
                readings=len(self.data.readings),
                alarms=len(self.data.alarms),
                events=len(self.data.events),
                pushes_delivered=stats.delivered,
                pushes_pending=self.pusher.pending,
                pushes_dropped=stats.dropped,
                push_failures=stats.failed_attempts,
                push_duplicates=stats.duplicates,
                faults={k: v for k, v in self.faults.counts.items() if v},
            )
