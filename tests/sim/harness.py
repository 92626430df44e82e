"""One seed: one random generator drives the clerk, the network's faults, the clock and the jobs.

`run_seed(seed, db_url)` opens accounts through the staff API, then runs
`ops` operations drawn from the mix (payments and meter top-ups, the same
request sent again, time passing with readings and reports pushed, pushes
delivered again, tariff changes, valve thresholds, reversals, refused
top-ups retried, the jobs run out of turn), with the simulator's faults
switched on or off at random for the seed. The `Model` predicts what the
ledger must hold, including payments whose answer was lost (unknown until
the clerk sends them again). After every step the properties of `checks`
are judged. The same seed replays the same run.
"""

from __future__ import annotations

import random
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from iotsim.faults import COMMAND_FATES, FaultSettings
from iotsim.settings import SimulatorSettings
from tests.sim.checks import (
    Tally,
    applied_twice,
    counters_by_account,
    frozen_days_by_account,
    holds_match_meters,
    ledger_properties,
    payments_by_account,
    simulator_state,
)
from tests.sim.world import STAFF, STAFF_PASSWORD, CrashPlan, Process, World, world_settings

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 3, 1, 9, tzinfo=ZONE)
API = "/api/v1"
TARIFFS = ("beijing-residential", "shanghai-residential")
SETTLE_DAYS = 6  # after the last operation, for commands to end (checked while they do)
HARNESS_FAULTS = ("push_lost_reply", "staff_lost_reply")


def draw_faults(rng: random.Random) -> tuple[FaultSettings, dict[str, float]]:
    """Each fault kind on or off for this seed, at a drawn rate."""
    rates = (Decimal("0.05"), Decimal("0.1"), Decimal("0.2"), Decimal("0.3"))
    chosen: dict[str, Any] = {}
    fates_left = Decimal(1)
    for name in (
        "lost_reply",
        "slow_reply",
        "batch_result_false",
        "push_duplicate",
        "push_reorder",
        "charge_refused",
        "missed_wake",
        *COMMAND_FATES,
    ):
        if rng.random() < 0.5:
            rate = rng.choice(rates)
            if name in COMMAND_FATES:
                rate = min(rate, fates_left)
                fates_left -= rate
            chosen[name] = rate
    if "slow_reply" in chosen:
        chosen["slow_reply_ms"] = rng.choice((1_000, 45_000))  # the client waits 30 s
    own = {
        name: (float(rng.choice(rates)) if rng.random() < 0.5 else 0.0) for name in HARNESS_FAULTS
    }
    return FaultSettings(**chosen), own


@dataclass
class Payment:
    account_id: int
    key: str
    amount_fen: int
    state: str = "unknown"  # ok, refused, unknown (no answer yet)
    transfer_id: str | None = None
    reversed: str = ""  # "", "unknown", "ok"
    reversal_key: str = ""


@dataclass
class Account:
    id: int
    comm_no: str
    mode: str
    number: str


@dataclass
class Model:
    """What the ledger must hold, as far as the clerk knows."""

    accounts: dict[int, Account] = field(default_factory=dict)
    payments: list[Payment] = field(default_factory=list)

    def bounds(self, account_id: int) -> tuple[int, int]:
        """The least and most the ledger may hold as paid in (unknown answers either way)."""
        low = high = 0
        for p in self.payments:
            if p.account_id != account_id or p.state == "refused":
                continue
            counted = 0 if p.reversed == "ok" else p.amount_fen
            if p.state == "ok" and p.reversed != "unknown":
                low += counted
                high += counted
            elif p.state == "ok":  # reversed or not: not known yet
                high += p.amount_fen
            else:
                high += p.amount_fen
        return low, high


@dataclass
class SeedResult:
    seed: int
    ops: int
    tally: Tally
    counts: dict[str, int]
    faults: dict[str, int]
    crashes: list[str]
    restarts: int
    failure: str = ""


class Harness:
    def __init__(
        self,
        seed: int,
        db_url: str,
        *,
        ops: int = 300,
        crash_site: str | None = None,
        settle_days: int = SETTLE_DAYS,
        crash_chance: float = 0.5,
        crash_limit: int = 3,
    ):
        self.seed = seed
        self.ops = ops
        self.rng = random.Random(seed)
        faults, own = draw_faults(self.rng)
        self.own_faults = own
        self.fault_rng = random.Random(f"{seed}/harness-faults")
        self.fault_counts: dict[str, int] = dict.fromkeys(HARNESS_FAULTS, 0)
        meters = self.rng.randint(2, 4)
        sim_settings = SimulatorSettings(seed=seed, meters=meters, start=START, faults=faults)
        from iotsim.fleet import Simulator

        self.world = World(
            world_settings(db_url, sim_settings),
            Simulator(sim_settings),
            CrashPlan(
                crash_site,
                random.Random(f"{seed}/crash"),
                chance=crash_chance,
                limit=crash_limit,
            ),
            lost_push_reply=lambda: self._fault("push_lost_reply"),
            lost_staff_reply=lambda: self._fault("staff_lost_reply"),
        )
        self.world.step = timedelta(hours=self.rng.choice((4, 6)))
        self.settle_days = settle_days
        self.model = Model()
        self.tally = Tally()
        self.counts: dict[str, int] = {}
        self.pushes: list[tuple[str, bytes, dict[str, str]]] = []
        self._judged: dict[str, tuple[object, ...]] = {}  # each group's inputs when judged
        self._record_pushes()

    # -- faults of our own: replies lost after the work was done --------------------
    def _fault(self, name: str) -> bool:
        rate = self.own_faults[name]
        if rate and self.fault_rng.random() < rate:
            self.fault_counts[name] += 1
            return True
        return False

    def _record_pushes(self) -> None:
        """Keep what the simulator pushed, so a push can be delivered again later."""
        client = self.world.sim.pusher.client
        assert client is not None
        inner = client.post
        pushes = self.pushes

        def post(url: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
            if len(pushes) < 2_000:
                pushes.append((url, content, headers))
            return inner(url, content=content, headers=headers)

        client.post = post  # type: ignore[method-assign]

    # -- the staff API ------------------------------------------------------------------
    def call(
        self, method: str, path: str, *, role: str = "clerk", **kwargs: Any
    ) -> httpx.Response | None:
        """A clerk's (or auditor's) request; None when no answer came (lost, gasbill died)."""
        self.world.ensure_up()
        if role not in self.world.tokens:
            self._login(role)
        extra = kwargs.pop("headers", {})
        for _ in range(3):
            headers = {"Authorization": f"Bearer {self.world.tokens[role]}", **extra}
            try:
                response = self.world.staff.request(method, API + path, headers=headers, **kwargs)
            except httpx.TransportError:
                self.world.ensure_up()
                return None
            if response.status_code != 401:
                break
            self._login(role)
        self.tally.judge(
            "no 5xx from gasbill",
            [f"{method} {path}: {response.status_code} {response.text[:200]}"]
            if response.status_code >= 500
            else [],
        )
        return response

    def answered(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request the clerk repeats until an answer comes (reads, and idempotent writes)."""
        for _ in range(20):
            response = self.call(method, path, **kwargs)
            if response is not None:
                return response
        raise AssertionError(f"{method} {path}: no answer in 20 attempts")

    def _login(self, role: str) -> None:
        for _ in range(10):
            self.world.ensure_up()
            try:
                response = self.world.staff.post(
                    f"{API}/auth/login",
                    json={"username": f"{STAFF}-{role}", "password": STAFF_PASSWORD},
                )
            except httpx.TransportError:
                continue
            if response.status_code == 200:
                self.world.tokens[role] = response.json()["access_token"]
                return
        raise AssertionError(f"the {role} cannot log in")

    # -- opening --------------------------------------------------------------------------
    def open_accounts(self) -> None:
        for i, comm_no in enumerate(self.world.sim.comm_nos()):
            mode = "meter" if i % 2 == 0 else "system"
            self._open(i, comm_no, mode)

    def _open(self, i: int, comm_no: str, mode: str) -> None:
        number = f"S{i:03d}"
        # a lost answer leaves a customer without an account: harmless, as at a counter
        customer = self.answered("POST", "/customers", json={"name": f"household {i}"})
        assert customer.status_code == 201, customer.text
        initial = self.rng.randrange(5_000, 30_000, 100)
        body = {
            "customer_id": customer.json()["id"],
            "number": number,
            "company_no": self.world.sim.settings.company_no,
            "billing_mode": mode,
            "tariff_id": self.rng.choice(TARIFFS),
            "opened_on": self.world.now.astimezone(ZONE).date().isoformat(),
            "meter_comm_no": comm_no,
            "opening_register": str(self.world.sim.meter(comm_no).std_sum),
            "bound_at": self.world.now.isoformat(),
            "persons": self.rng.randint(1, 5),
            "initial_fen": initial,
            "channel": "counter",
            "cutoff_fen": 0,
            "reopen_fen": 1_000,
        }
        for _ in range(10):
            response = self.call("POST", "/accounts", json=body)
            if response is not None and response.status_code == 201:
                break
            found = self.call("GET", "/accounts", params={"number": number})
            if found is not None and found.status_code == 200 and found.json():
                break
        else:
            raise AssertionError(f"account {number} could not be opened")
        found = self.answered("GET", "/accounts", params={"number": number})
        assert found.status_code == 200 and found.json(), found.text
        account_id = found.json()[0]["id"]
        self.model.accounts[account_id] = Account(account_id, comm_no, mode, number)
        self.model.payments.append(Payment(account_id, f"open-{number}", initial, "ok"))

    # -- the operation mix -----------------------------------------------------------------
    OPS = (
        ("pay", 24),
        ("advance", 26),
        ("resend", 6),
        ("retry_unknown", 6),
        ("repush", 8),
        ("tariff", 4),
        ("valve", 6),
        ("reverse", 5),
        ("retry_refused", 3),
        ("jobs", 6),
        ("balance", 6),
    )

    def step(self) -> None:
        names = [name for name, _ in self.OPS]
        name = self.rng.choices(names, weights=[w for _, w in self.OPS])[0]
        self.counts[name] = self.counts.get(name, 0) + 1
        getattr(self, f"op_{name}")()
        self.check()

    def _account(self) -> Account:
        return self.model.accounts[self.rng.choice(sorted(self.model.accounts))]

    def op_pay(self) -> None:
        account = self._account()
        amount = self.rng.randrange(500, 20_000, 100)
        payment = Payment(account.id, str(uuid.UUID(int=self.rng.getrandbits(128))), amount)
        self.model.payments.append(payment)
        self._send_payment(payment)

    def _send_payment(self, payment: Payment) -> None:
        response = self.call(
            "POST",
            f"/accounts/{payment.account_id}/payments",
            json={"amount_fen": payment.amount_fen, "channel": "counter"},
            headers={"Idempotency-Key": payment.key},
        )
        if response is None:
            return  # no answer: the clerk does not know whether it was taken
        problems = []
        if response.status_code == 201:
            transfer_id = response.json()["id"]
            if payment.transfer_id not in (None, transfer_id):
                problems.append(
                    f"key {payment.key} answered {transfer_id}, first {payment.transfer_id}"
                )
            payment.state, payment.transfer_id = "ok", transfer_id
        elif response.status_code < 500:
            if payment.state == "ok":
                problems.append(f"key {payment.key} taken, then answered {response.status_code}")
            else:
                payment.state = "refused"
        self.tally.judge("payments recorded exactly once", problems)

    def op_resend(self) -> None:
        taken = [
            p for p in self.model.payments if p.state == "ok" and not p.key.startswith("open-")
        ]
        if taken:
            self._send_payment(self.rng.choice(taken))

    def op_retry_unknown(self) -> None:
        unknown = [p for p in self.model.payments if p.state == "unknown"]
        if unknown:
            self._send_payment(self.rng.choice(unknown))
        reversals = [p for p in self.model.payments if p.reversed == "unknown"]
        if reversals:
            self._reverse(self.rng.choice(reversals))

    def op_advance(self) -> None:
        hours = self.rng.choice((1, 2, 3, 6, 12))
        self.world.advance(self.world.now + timedelta(hours=hours))

    def op_repush(self) -> None:
        if not self.pushes:
            return
        url, content, headers = self.rng.choice(self.pushes)
        self.world.ensure_up()
        door = self.world.sim.pusher.client
        assert door is not None
        try:
            response = httpx.Client.post(door, url, content=content, headers=headers)
        except httpx.TransportError:
            self.world.ensure_up()
            return
        self.tally.judge(
            "no 5xx from gasbill",
            [f"push {url}: {response.status_code}"] if response.status_code >= 500 else [],
        )

    def op_tariff(self) -> None:
        account = self._account()
        self.call("PATCH", f"/accounts/{account.id}", json={"tariff_id": self.rng.choice(TARIFFS)})

    def op_valve(self) -> None:
        account = self._account()
        cutoff = -self.rng.choice((0, 0, 500, 2_000))
        reopen = cutoff + self.rng.choice((0, 1_000, 3_000))
        self.call(
            "PATCH", f"/accounts/{account.id}", json={"cutoff_fen": cutoff, "reopen_fen": reopen}
        )

    def op_reverse(self) -> None:
        taken = [
            p
            for p in self.model.payments
            if p.state == "ok" and p.reversed == "" and not p.key.startswith("open-")
        ]
        if taken:
            payment = self.rng.choice(taken)
            payment.reversal_key = str(uuid.UUID(int=self.rng.getrandbits(128)))
            self._reverse(payment)

    def _reverse(self, payment: Payment) -> None:
        response = self.call(
            "POST",
            f"/transfers/{payment.transfer_id}/reversal",
            role="auditor",
            json={"reason": "paid in error"},
            headers={"Idempotency-Key": payment.reversal_key},
        )
        if response is None:
            payment.reversed = "unknown"
        elif response.status_code == 201:
            payment.reversed = "ok"
        elif response.status_code < 500:
            payment.reversed = ""  # refused (the money is spent or on its way to the meter)

    def op_retry_refused(self) -> None:
        response = self.call("GET", "/commands", params={"status": "attention"})
        if response is None or response.status_code != 200 or not response.json():
            return
        command = self.rng.choice(response.json())
        self.call("POST", f"/commands/{command['id']}/retry")

    def op_jobs(self) -> None:
        self.world.jobs(out_of_turn=True)

    def op_balance(self) -> None:
        self.call("GET", f"/accounts/{self._account().id}/balance")

    # -- the properties ----------------------------------------------------------------------
    def check(self) -> None:
        """Judge every property whose inputs the step may have changed.

        A property is a function of what it reads: the database (changed only by a
        commit, counted on the process's engine), the simulator's command records
        and meter counters, and the model of what the clerk was told. A group is
        judged again when one of its inputs changed since it was last judged, so
        each verdict is the one a check after every step would give.
        """
        self.world.ensure_up()
        process = self.world.process
        assert isinstance(process, Process)
        engine = process.services.engine
        db = (id(process), process.commits)
        sim = simulator_state(self.world.sim)
        model = tuple((p.state, p.reversed) for p in self.model.payments)
        seen = self._judged
        groups = {
            "ledger": (db,),
            "payments": (db, model),
            "meters": (db, sim),
            "simulator": (sim,),
        }
        due = {name for name, inputs in groups.items() if seen.get(name) != inputs}
        if not due:
            return
        ids = sorted(self.model.accounts)
        if "ledger" in due:
            ledger_properties(engine, self.tally)
        with engine.connect() as conn:
            if "ledger" in due:
                for problems in frozen_days_by_account(conn, ids).values():
                    self.tally.judge("each frozen day billed once", problems)
            if "payments" in due:
                for account_id, got in payments_by_account(conn, ids).items():
                    low, high = self.model.bounds(account_id)
                    self.tally.judge(
                        "payments recorded exactly once",
                        []
                        if low <= got <= high
                        else [f"account {account_id}: ledger {got} fen paid, model {low}..{high}"],
                    )
            if "meters" in due:
                meters = {
                    a.id: a.comm_no for a in self.model.accounts.values() if a.mode == "meter"
                }
                for problems in counters_by_account(conn, self.world.sim, meters).values():
                    self.tally.judge("meter counters = ledger (settled)", problems)
                self.tally.judge(
                    "hold posted iff meter loaded it", holds_match_meters(conn, self.world.sim)
                )
        if "simulator" in due:
            self.tally.judge("nothing applied twice on a meter", applied_twice(self.world.sim))
        for name in due:
            seen[name] = groups[name]

    def settle(self) -> None:
        """The clerk learns every unknown answer; the world runs on until commands end."""
        for _ in range(20):
            unknown = [p for p in self.model.payments if p.state == "unknown"]
            reversals = [p for p in self.model.payments if p.reversed == "unknown"]
            if not unknown and not reversals:
                break
            for payment in unknown:
                self._send_payment(payment)
            for payment in reversals:
                self._reverse(payment)
            self.check()
        self.world.step = timedelta(hours=8)
        for _ in range(self.settle_days):
            self.world.advance(self.world.now + timedelta(days=1))
            self.check()

    def run(self) -> SeedResult:
        failure = ""
        try:
            self.open_accounts()
            self.check()
            for _ in range(self.ops):
                self.step()
            self.settle()
        except Exception as exc:  # the harness could not go on: the seed fails, named
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failure = f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
        faults = {k: v for k, v in self.world.sim.faults.counts.items() if v}
        faults |= {k: v for k, v in self.fault_counts.items() if v}
        result = SeedResult(
            self.seed,
            sum(self.counts.values()),
            self.tally,
            dict(self.counts),
            faults,
            list(self.world.crash_sites),
            self.world.restarts,
            failure,
        )
        self.world.close()
        return result


def run_seed(
    seed: int,
    db_url: str,
    *,
    ops: int = 300,
    crash_site: str | None = None,
    settle_days: int = SETTLE_DAYS,
    crash_chance: float = 0.5,
    crash_limit: int = 3,
) -> SeedResult:
    harness = Harness(
        seed,
        db_url,
        ops=ops,
        crash_site=crash_site,
        settle_days=settle_days,
        crash_chance=crash_chance,
        crash_limit=crash_limit,
    )
    return harness.run()
