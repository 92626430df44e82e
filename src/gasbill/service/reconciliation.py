"""Reconcile every account against the books (DESIGN §9): read, compare, report.

Meter-mode accounts: the meter's balance, top-up counters and price against
meter_credit, the confirmed top-ups and the tariff. System-mode accounts:
the ledger's balance against its payments and charges, the valve against
the cut-off and reopen policy. Replaced meters: the register handed over.

Set-based and read-only: accounts go by ranges of ids (`CHUNK`). For each
range the database compares first (two queries: the system-mode checks
entirely, the meter-mode integer checks with what needs the codec or the
tariffs grouped by its values, so that each distinct charge state and price
is decoded once) and counts the accounts that agree. The rest take the full
path: one query per kind of fact for all of them, checked again, and each
that differs (or every one, with `include_agreeing`) gets its findings
built, with evidence and a suggested action. Nothing here writes or commits.

On PostgreSQL the ranges may be read on several connections at once
(`connections`, `[reconcile] connections`): as many ranges as a multiple of
the connections, each running both passes on whichever connection is free,
every one of them reading the same instant of the database (the unit of
work's snapshot, exported to the others), and the ranges' tallies and lines
are put together in account order, so the report is the one a single
connection makes.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from gasbill.config import DecisionSettings
from gasbill.domain.commands import CtrlType
from gasbill.domain.errors import GasbillError
from gasbill.domain.reconciliation import AccountLine, Finding, Tally, Tolerance, Totals
from gasbill.domain.reconciliation_system import with_action
from gasbill.service.ports import CommandCodec, TariffBook
from gasbill.service.reconciliation_meter import MeterChecks, MeterFacts
from gasbill.service.reconciliation_ports import (
    ReconciliationReads,
    ReconciliationRepository,
    ReconciliationUnitOfWork,
    SystemRepository,
)
from gasbill.service.reconciliation_rows import AccountRow, ReplacementRow, Scope, ValveRow
from gasbill.service.reconciliation_system import (
    SystemChecks,
    base_valve_policy,
    replacement_findings,
)


class AsOfError(GasbillError, ValueError):
    """An `as_of` that is not an instant we can reconcile at."""


def parse_as_of(text: str | None, *, zone: str, now: datetime) -> datetime:
    """The instant a report is as of: `now` when not given.

    A date alone means the end of that day in the utility's zone (the report
    sees everything of that day; today: up to now); a date-time without an offset is in that
    zone. An instant after `now` is refused: the books are not known yet.
    """
    if text is None or not text.strip():
        return now
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)
            local = datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(zone))
            found = min(local.astimezone(UTC), max(now, start))  # today: up to now
        else:
            found = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if found.tzinfo is None:
                found = found.replace(tzinfo=ZoneInfo(zone))
            found = found.astimezone(UTC)
    except ValueError as exc:
        raise AsOfError(
            f"as_of {raw!r} is neither a date (2026-03-31) nor a date-time "
            "(2026-03-31T23:59:59+08:00)"
        ) from exc
    if found > now:
        raise AsOfError(f"as_of {raw!r} is in the future: the books are not known yet")
    return found


CHUNK = 100_000  # accounts per range: bounds memory, not the number of queries per account
PART_MIN = 5_000  # ids a connection takes at least: below that another is not worth opening


@dataclass(frozen=True, slots=True)
class Report:
    """The reconciliation as of an instant: the lines, and totals over every account checked.

    `lines` holds each account that differs, in account order; agreeing
    accounts too when `include_agreeing` (they are always counted in `totals`).
    """

    as_of: datetime
    company_no: str | None
    tolerance: Tolerance
    lines: tuple[AccountLine, ...]
    totals: Totals
    include_agreeing: bool = False

    @property
    def differs(self) -> bool:
        return self.totals.differing > 0


def reconcile(
    uow: ReconciliationUnitOfWork,
    catalog: TariffBook,
    *,
    codec: CommandCodec,
    as_of: datetime,
    company_no: str | None = None,
    account_ids: Sequence[int] | None = None,
    tolerance: Tolerance = Tolerance(),
    decisions: DecisionSettings | None = None,
    include_agreeing: bool = False,
    first_pass: bool = True,
    connections: int = 1,
) -> Report:
    """Every account with an active meter (of a company, or these ids) as of `as_of`.

    Unless every account is to be listed, a first pass in the database counts
    the accounts that agree (`first_pass`; off only to compare against the
    full path); the rest take the full path, which checks them again and
    builds their findings. `codec` reads the meters' replies (the composition root's).

    With `connections` above 1 the ranges of accounts are read on that many
    connections at once (threads), all seeing the one instant of the unit of
    work's (`snapshot_readers`), at least `PART_MIN` ids each; the report is
    the same as on one. Where the database cannot share an instant (SQLite),
    on one.
    """
    meter = MeterChecks(catalog, codec, tolerance, as_of)
    policy = base_valve_policy(decisions or DecisionSettings(), catalog.default_zone)
    work = _Work(as_of, meter, SystemChecks(policy, as_of), include_agreeing, first_pass)
    tally, lines = Tally(), []
    with uow:
        store = uow.reconciliation
        store.prepare()
        wide = Scope(None, None, company_no, account_ids)
        span = None if account_ids == [] else store.id_range(wide)
        if span is not None:
            width = span[1] - span[0] + 1
            extra = min(connections, -(-width // PART_MIN)) - 1
            with uow.snapshot_readers(max(extra, 0)) as others:
                readers: list[ReconciliationReads] = [uow, *others]
                ranges = _ranges(span, len(readers), company_no, account_ids)
                for part in _each(readers, ranges, work.range):
                    tally.absorb(part.tally)
                    lines.extend(part.lines)
        uow.rollback()
    return Report(as_of, company_no, tolerance, tuple(lines), tally.totals(), include_agreeing)


def _ranges(
    span: tuple[int, int], readers: int, company_no: str | None, account_ids: Sequence[int] | None
) -> list[Scope]:
    """The span's ids cut evenly in ranges of at most `CHUNK` ids, as few as can be but a
    multiple of the readers (so each has as many), in order. Each range costs a few
    queries' planning and a few whole-index steps beside what its accounts do (~0.2 s of
    CPU at 1,000,000 accounts), so not more than the readers need."""
    width = span[1] - span[0] + 1
    chunks = -(-width // CHUNK)
    count = -(-chunks // readers) * readers
    cuts = [span[0] + width * k // count for k in range(count + 1)]
    return [
        Scope(start, end - 1, company_no, account_ids)
        for start, end in itertools.pairwise(cuts)
        if start < end
    ]


T = TypeVar("T")


def _each(
    readers: Sequence[ReconciliationReads],
    ranges: Sequence[Scope],
    work: Callable[[ReconciliationReads, Scope], T],
) -> Iterator[T]:
    """`work` on each range, its results in the ranges' order: on the one reader in turn,
    or on every reader at once (a thread each; a range takes whichever reader is free)."""
    if len(readers) == 1:
        for scope in ranges:
            yield work(readers[0], scope)
        return
    free: queue.SimpleQueue[ReconciliationReads] = queue.SimpleQueue()
    for reader in readers:
        free.put(reader)

    def run(scope: Scope) -> T:
        reader = free.get()
        try:
            return work(reader, scope)
        finally:
            free.put(reader)

    pool = ThreadPoolExecutor(len(readers), thread_name_prefix="reconcile")
    try:
        yield from pool.map(run, ranges)
    finally:
        # on an error: the ranges not started are dropped, the running ones awaited (their
        # connections are in use until then)
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class _Part:
    """One range reconciled: its tally, and its lines in account order."""

    tally: Tally
    lines: list[AccountLine]


@dataclass(frozen=True, slots=True)
class _Work:
    as_of: datetime
    meter: MeterChecks
    system: SystemChecks
    include_agreeing: bool
    first_pass: bool

    def range(self, reader: ReconciliationReads, scope: Scope) -> _Part:
        """A range of accounts on one reader: the first pass counts those that agree (unless
        every account is to be listed); the rest take the full path."""
        store, tally = reader.reconciliation, Tally()
        if self.first_pass and not self.include_agreeing:
            unsure = _first_pass(store, scope, self.as_of, self.meter)
            tally.agree(unsure.agreeing)
            if not unsure.ids:
                return _Part(tally, [])
            scope = Scope(scope.lo, scope.hi, scope.company_no, unsure.ids)
        systems = reader.reconciliation_system
        chunk = _Chunk(store, systems, scope, self.as_of, self.meter, self.system)
        return _Part(tally, chunk.lines(self.include_agreeing, tally))


@dataclass(frozen=True, slots=True)
class _Unsure:
    agreeing: int
    ids: list[int]


def _first_pass(
    store: ReconciliationRepository,
    scope: Scope,
    as_of: datetime,
    meter: MeterChecks,
) -> _Unsure:
    """The range's accounts the database shows to agree, counted (meter-mode groups
    finished here: the counters decoded and the price checked once per group); the ids of
    the others, in order."""
    found = store.verdicts(scope, as_of, meter.balance_milli)
    agreeing, failed = found.system_agreeing, []
    reps = [g.first_id for g in found.groups if g.confirmed_key is not None]
    confirmed = store.confirmations(Scope(None, None, account_ids=reps)) if reps else {}
    for group in found.groups:
        if meter.group_agrees(group, confirmed.get(group.first_id, {})):
            agreeing += group.count
        else:
            failed.append(group)
    ids = found.unsure + store.members(scope, as_of, meter.balance_milli, failed)
    return _Unsure(agreeing, sorted(set(ids)))


class _Chunk:
    """One range of accounts: its facts read in a few grouped queries, then compared."""

    def __init__(
        self,
        store: ReconciliationRepository,
        systems: SystemRepository,
        scope: Scope,
        as_of: datetime,
        meter: MeterChecks,
        system: SystemChecks,
    ) -> None:
        self.store, self.systems, self.scope, self.as_of = store, systems, scope, as_of
        self.meter, self.system = meter, system
        self.accounts = store.accounts(scope)
        modes = {a.mode for a in self.accounts}
        self.facts: dict[int, MeterFacts] = {}
        if "meter" in modes:
            self._meter_facts()
        self.sums = systems.ledger_sums(scope, as_of) if "system" in modes else {}
        self.valves: dict[int, list[ValveRow]] = {}
        if "system" in modes:
            for row in systems.valve_commands(scope, as_of):
                self.valves.setdefault(row.account_id, []).append(row)
        self.replaced: dict[int, list[ReplacementRow]] = {}
        for found in systems.replacements(scope, as_of):
            self.replaced.setdefault(found.account_id, []).append(found)

    def _meter_facts(self) -> None:
        store, scope, as_of = self.store, self.scope, self.as_of
        readings = store.latest_readings(scope, as_of)
        top_ups = store.replies(scope, CtrlType.REMOTE_CHARGE, as_of)
        states = store.replies(scope, CtrlType.GET_CHARGE_STATE, as_of)
        prices = store.replies(scope, CtrlType.GET_PRICE, as_of)
        confirmed = store.confirmations(scope)
        for a in self.accounts:
            if a.mode != "meter":
                continue
            i = a.account_id
            self.facts[i] = MeterFacts(
                readings.get(i),
                None,
                top_ups.get(i),
                states.get(i),
                prices.get(i),
                confirmed.get(i, {}),
            )

    def lines(self, include_agreeing: bool, tally: Tally) -> list[AccountLine]:
        """Agreeing accounts counted; the others (or all) built, with their evidence; those
        that differ (or all) listed."""
        full: list[AccountRow] = []
        for account in self.accounts:
            if not include_agreeing and self._quick(account):
                tally.agree()
                continue
            full.append(account)
        self._evidence([a for a in full if a.mode == "meter"])
        out = []
        for account in full:
            line = self._line(account)
            tally.add(line)
            if include_agreeing or not line.agrees:  # agreeing on the full path: counted
                out.append(line)
        return out

    def _quick(self, account: AccountRow) -> bool:
        i = account.account_id
        if i in self.replaced:
            return False
        if account.mode == "meter":
            return self.meter.quick(account, self.facts[i])
        return self.system.quick(account, self.sums.get(i), self.valves.get(i, []))

    def _evidence(self, accounts: list[AccountRow]) -> None:
        """For the meter-mode accounts that need findings: their holds, reading coverage,
        and (where the latest reading had a top-up in flight) the latest comparable one."""
        ids = [a.account_id for a in accounts]
        if not ids:
            return
        for hold in self.store.holds(ids, self.as_of):
            self.facts[hold.account_id].holds.append(hold)
        coverage = self.store.coverage(ids, self.as_of)
        scope = Scope(self.scope.lo, self.scope.hi, account_ids=ids)
        top_ups = self.store.replies(scope, CtrlType.REMOTE_CHARGE, self.as_of, ledger=True)
        states = self.store.replies(scope, CtrlType.GET_CHARGE_STATE, self.as_of, ledger=True)
        flying = [i for i in ids if (r := self.facts[i].reading) is not None and r.in_flight_fen]
        comparable = {}
        if flying:
            scope = Scope(self.scope.lo, self.scope.hi, account_ids=flying)
            comparable = self.store.latest_readings(scope, self.as_of, comparable=True)
        for i in ids:
            facts = self.facts[i]
            facts.coverage = coverage.get(i)
            facts.comparable = comparable.get(i)
            facts.top_up, facts.state = top_ups.get(i), states.get(i)

    def _line(self, account: AccountRow) -> AccountLine:
        i = account.account_id
        findings: tuple[Finding, ...]
        if account.mode == "meter":
            findings = self.meter.findings(account, self.facts[i])
        else:
            findings = self.system.findings(account, self.sums.get(i), self.valves.get(i, []))
        findings += replacement_findings(account, self.replaced.get(i, []))
        return AccountLine(
            i,
            account.number,
            account.company_no,
            account.comm_no,
            tuple(with_action(f) for f in findings),
            account.mode,
        )
