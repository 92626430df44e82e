"""Reconciliation's reads, set-based: one query per kind of fact for a whole range of accounts.

Every query answers for all accounts whose id lies in [lo, hi] (and a
company, or a list of ids, when asked) at once; nothing here runs a query
per account. The ledger as of an instant is the ledger account's running
balance less what took effect after that instant: recent transfers only,
found through the (account, effective_at) indexes of `transfer`, so the cost
does not grow with an account's history. Rows are plain tuples: a report
covers a million accounts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from gasbill.adapters.db.id_lists import IdIn
from gasbill.adapters.db.repositories.reconciliation_commands import CommandFacts
from gasbill.adapters.db.repositories.reconciliation_sql import (
    FROZEN,
    account_t,
    after_instant,
    binding_t,
    decision_t,
    hold_sums,
    holds_at,
    inbox_t,
    join_sums,
    ledger_t,
    meter_t,
    reading_t,
    same_keys,
    scalar_of,
    scope_where,
)
from gasbill.adapters.db.repositories.reconciliation_system import SystemStore
from gasbill.adapters.db.repositories.reconciliation_verdicts import VerdictStore
from gasbill.domain.ledger import AccountKind
from gasbill.service.reconciliation_rows import (
    AccountRow,
    ReadingRow,
    Scope,
)

ONE_INSTANT = "REPEATABLE READ, READ ONLY"
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")  # pg_export_snapshot()'s form


class ReconciliationStore(CommandFacts, VerdictStore):
    """Accounts, readings and coverage here; commands' answers and holds in `CommandFacts`;
    the first pass, compared in the database, in `VerdictStore`."""

    def prepare(self, *, snapshot: str | None = None) -> None:
        """PostgreSQL: one instant for every read of the report (a read-only REPEATABLE
        READ transaction; with `snapshot`, the one another transaction exported, see
        `snapshot_readers`), no JIT (the planner's costs for a range of accounts call for
        it, and compiling takes several times what the queries run), no parallel workers
        (a report's parallelism is its own connections, `snapshot_readers`; a worker
        started per query only competes with them, and its CPU is nobody's to count), and
        timestamps read in UTC. Before any other statement of the transaction."""
        if self.pg:
            self.session.execute(sa.text(f"SET TRANSACTION ISOLATION LEVEL {ONE_INSTANT}"))
            if snapshot is not None:
                if not SNAPSHOT_ID.fullmatch(snapshot):
                    raise ValueError(f"not a PostgreSQL snapshot id: {snapshot!r}")
                self.session.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            self.session.execute(sa.text("SET LOCAL jit = off"))
            self.session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
            self.session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
            self.session.execute(sa.text("SET LOCAL TIME ZONE 'UTC'"))

    def id_range(self, scope: Scope) -> tuple[int, int] | None:
        """The smallest and largest account id in scope with an active meter."""
        if scope.company_no is None:  # the active bindings' index alone: two index steps
            b = binding_t
            query = sa.select(sa.func.min(b.c.account_id), sa.func.max(b.c.account_id)).where(
                scope_where(scope, b.c.account_id, None), b.c.unbound_at.is_(None)
            )
            lo, hi = self.session.execute(query).one()
            return None if lo is None else (int(lo), int(hi))
        query = (
            sa.select(sa.func.min(account_t.c.id), sa.func.max(account_t.c.id))
            .join(binding_t, binding_t.c.account_id == account_t.c.id)
            .where(scope_where(scope, account_t.c.id, account_t.c.company_no))
            .where(binding_t.c.unbound_at.is_(None))
        )
        lo, hi = self.session.execute(query).one()
        return None if lo is None else (int(lo), int(hi))

    def accounts(self, scope: Scope) -> list[AccountRow]:
        """Accounts with their active meter, ledger accounts and recorded cut-off, by id."""
        prepaid, credit = ledger_t.alias("lp"), ledger_t.alias("lc")
        a, b = account_t, binding_t
        query = (
            sa.select(
                a.c.id,
                a.c.number,
                a.c.company_no,
                a.c.billing_mode,
                a.c.tariff_id,
                a.c.persons,
                a.c.opened_on,
                a.c.cutoff_fen,
                a.c.reopen_fen,
                b.c.meter_id,
                meter_t.c.comm_no,
                self._time(b.c.bound_at),
                b.c.opening_litres,
                prepaid.c.id,
                sa.func.coalesce(prepaid.c.credits_posted_fen - prepaid.c.debits_posted_fen, 0),
                credit.c.id,
                sa.func.coalesce(credit.c.credits_posted_fen - credit.c.debits_posted_fen, 0),
                self._time(decision_t.c.below_cutoff_since),
            )
            .join(b, sa.and_(b.c.account_id == a.c.id, b.c.unbound_at.is_(None)))
            .join(meter_t, meter_t.c.id == b.c.meter_id)
            .outerjoin(
                prepaid,
                sa.and_(prepaid.c.account_id == a.c.id, prepaid.c.kind == str(AccountKind.PREPAID)),
            )
            .outerjoin(
                credit,
                sa.and_(
                    credit.c.account_id == a.c.id, credit.c.kind == str(AccountKind.METER_CREDIT)
                ),
            )
            .outerjoin(decision_t, decision_t.c.account_id == a.c.id)
            .where(scope_where(scope, a.c.id, a.c.company_no))
            .order_by(a.c.id)
        )
        return [AccountRow(*row) for row in self.session.execute(query).all()]

    # -- meter mode: readings and answers -------------------------------------------------
    def latest_readings(
        self, scope: Scope, as_of: datetime, *, comparable: bool = False
    ) -> dict[int, ReadingRow]:
        """Each meter-mode account's latest frozen reading with a balance (by `as_of`), of
        whichever meter it had then; with `comparable`, the latest with no hold in flight."""
        if comparable:
            latest = self._latest_comparable(scope, as_of)
        else:
            latest = self._latest_by_index(scope, as_of)
        # computed once, not inlined into every use of `at`
        cte = latest.cte("latest").prefix_with("MATERIALIZED", dialect="postgresql")
        rows = self.session.execute(self._readings_at(cte)).all()
        found: dict[int, ReadingRow] = {}
        for a_id, comm, at, remain, price, credit, flight in rows:
            reading = ReadingRow(a_id, comm, at, remain, price, int(credit), int(flight))
            held = found.get(reading.account_id)
            if held is None or reading.at > held.at:  # a replaced meter's and the new one's
                found[reading.account_id] = reading
        return found

    def _readings_at(self, cte: Any) -> Any:
        """The readings at the instants `cte` found, each with meter_credit then (its
        balance now less what took effect after) and the holds in flight then."""
        la = ledger_t
        r2 = reading_t.alias("r2")
        at_reading = sa.and_(
            r2.c.company_no == cte.c.company_no,
            r2.c.meter_comm_no == cte.c.comm_no,
            r2.c.data_type == FROZEN,
            r2.c.acquisition_time == cte.c.at,
        )
        keys = (cte.c.account_id, cte.c.comm_no)
        credits = after_instant(cte, keys, "credit_account_id")
        debits = after_instant(cte, keys, "debit_account_id")
        flight = hold_sums(cte, keys, cte.c.at, lateral=self.pg)
        return (
            sa.select(
                cte.c.account_id,
                cte.c.comm_no,
                self._time(cte.c.at),
                r2.c.remain_money,
                r2.c.curr_price,
                sa.func.coalesce(la.c.credits_posted_fen - la.c.debits_posted_fen, 0)
                - sa.func.coalesce(credits.c.fen, 0)
                + sa.func.coalesce(debits.c.fen, 0),
                sa.func.coalesce(flight.c.fen, 0),
            )
            .select_from(
                join_sums(cte.join(r2, at_reading), flight, keys, lateral=self.pg)
                .outerjoin(la, la.c.id == cte.c.la)
                .outerjoin(credits, same_keys(credits, keys))
                .outerjoin(debits, same_keys(debits, keys))
            )
            .where(cte.c.at.is_not(None))
        )

    def _latest_comparable(self, scope: Scope, as_of: datetime) -> Any:
        """Per binding of a meter-mode account, its meter's latest frozen reading with a
        balance and no hold in flight into meter_credit at its time."""
        a, b, r, la = account_t, binding_t, reading_t, ledger_t
        latest = (
            sa.select(
                b.c.account_id.label("account_id"),
                la.c.id.label("la"),
                r.c.company_no.label("company_no"),
                r.c.meter_comm_no.label("comm_no"),
                sa.func.max(r.c.acquisition_time).label("at"),
            )
            .select_from(
                a.join(b, b.c.account_id == a.c.id)
                .join(meter_t, meter_t.c.id == b.c.meter_id)
                .join(
                    r,
                    sa.and_(
                        r.c.company_no == meter_t.c.company_no,
                        r.c.meter_comm_no == meter_t.c.comm_no,
                        r.c.data_type == FROZEN,
                        r.c.acquisition_time >= b.c.bound_at,
                        sa.or_(b.c.unbound_at.is_(None), r.c.acquisition_time < b.c.unbound_at),
                        r.c.acquisition_time <= as_of,
                        r.c.remain_money.is_not(None),
                    ),
                )
                .outerjoin(
                    la,
                    sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.METER_CREDIT)),
                )
            )
            .where(scope_where(scope, a.c.id, a.c.company_no), a.c.billing_mode == "meter")
            .group_by(b.c.account_id, la.c.id, r.c.company_no, r.c.meter_comm_no)
        )
        flight = scalar_of(holds_at(la.c.id, r.c.acquisition_time), 0)
        return latest.where(flight == 0)

    def _latest_by_index(self, scope: Scope, as_of: datetime) -> Any:
        """Per binding of a meter-mode account, its meter's latest frozen reading with a
        balance: one backward step on the readings' primary key per meter, so the cost
        follows the number of meters, not the length of their history."""
        a, b, r, la = account_t, binding_t, reading_t.alias("rl"), ledger_t
        probe = (
            sa.select(r.c.acquisition_time)
            .where(
                r.c.company_no == meter_t.c.company_no,
                r.c.meter_comm_no == meter_t.c.comm_no,
                r.c.data_type == FROZEN,
                r.c.acquisition_time <= as_of,
                r.c.acquisition_time >= b.c.bound_at,
                sa.or_(b.c.unbound_at.is_(None), r.c.acquisition_time < b.c.unbound_at),
                r.c.remain_money.is_not(None),
            )
            .order_by(r.c.acquisition_time.desc())
            .limit(1)
            .scalar_subquery()
        )
        return (
            sa.select(
                b.c.account_id.label("account_id"),
                la.c.id.label("la"),
                meter_t.c.company_no.label("company_no"),
                meter_t.c.comm_no.label("comm_no"),
                probe.label("at"),
            )
            .select_from(
                a.join(b, b.c.account_id == a.c.id)
                .join(meter_t, meter_t.c.id == b.c.meter_id)
                .outerjoin(
                    la,
                    sa.and_(la.c.account_id == a.c.id, la.c.kind == str(AccountKind.METER_CREDIT)),
                )
            )
            .where(scope_where(scope, a.c.id, a.c.company_no), a.c.billing_mode == "meter")
        )

    def coverage(
        self, account_ids: Sequence[int], as_of: datetime
    ) -> dict[int, tuple[int, datetime, datetime, int]]:
        """Per account's active meter: frozen readings by `as_of` (count, first, last) since
        it was bound, and those stored but not yet billed."""
        if not account_ids:
            return {}
        m, b = meter_t, binding_t
        bound = sa.and_(b.c.meter_id == m.c.id, b.c.unbound_at.is_(None))
        counts = (
            sa.select(
                b.c.account_id,
                sa.func.count(),
                sa.func.min(reading_t.c.acquisition_time),
                sa.func.max(reading_t.c.acquisition_time),
            )
            .select_from(
                reading_t.join(
                    m,
                    sa.and_(
                        m.c.company_no == reading_t.c.company_no,
                        m.c.comm_no == reading_t.c.meter_comm_no,
                    ),
                ).join(b, bound)
            )
            .where(
                IdIn(b.c.account_id, account_ids),
                reading_t.c.data_type == FROZEN,
                reading_t.c.acquisition_time <= as_of,
            )
            .group_by(b.c.account_id)
        )
        unbilled = (
            sa.select(b.c.account_id, sa.func.count())
            .select_from(
                inbox_t.join(
                    m,
                    sa.and_(
                        m.c.company_no == inbox_t.c.company_no,
                        m.c.comm_no == inbox_t.c.meter_comm_no,
                    ),
                ).join(b, bound)
            )
            .where(
                IdIn(b.c.account_id, account_ids),
                inbox_t.c.handled_at.is_(None),
                inbox_t.c.acquisition_time <= as_of,
            )
            .group_by(b.c.account_id)
        )
        waiting = {int(a): int(n) for a, n in self.session.execute(unbilled).all()}
        return {
            int(a): (int(n), first, last, waiting.get(int(a), 0))
            for a, n, first, last in self.session.execute(counts).all()
        }


class SnapshotReader:
    """Reconciliation's two stores on a session of their own (`snapshot_readers`)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def reconciliation(self) -> ReconciliationStore:
        return ReconciliationStore(self.session)

    @property
    def reconciliation_system(self) -> SystemStore:
        return SystemStore(self.session)


@contextmanager
def snapshot_readers(session: Session, count: int) -> Iterator[list[SnapshotReader]]:
    """`count` more readers for a report whose transaction `session` holds, each on a
    connection of its own that sees exactly what that transaction sees, for the block.

    PostgreSQL: the transaction (REPEATABLE READ, see `ReconciliationStore.prepare`)
    exports its snapshot, and each reader's transaction imports it before its first
    query, so a transfer committed meanwhile is seen by none of them. SQLite has no way
    to share a snapshot: no readers, the report stays on its one connection."""
    if count < 1 or session.get_bind().dialect.name != "postgresql":
        yield []
        return
    snapshot = session.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
    opened: list[Session] = []
    try:
        for _ in range(count):
            other = Session(bind=session.get_bind())
            opened.append(other)
            ReconciliationStore(other).prepare(snapshot=snapshot)
        yield [SnapshotReader(other) for other in opened]
    finally:
        for other in opened:
            other.close()  # read only: nothing to keep; the connection goes back rolled back
