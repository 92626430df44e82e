"""The database ledger driven at random, step for step against the pure in-memory `Ledger`.

Payments (through the service, with replayed and conflicting keys), refunds,
charges (one by one and in batches), holds, posts, voids, reversals, groups,
exact replays and altered replays, and a few concurrent requests from
threads with their own units of work. After every step: the database
verifies (kept balances equal their transfers, everything sums to zero,
nothing resolves or reverses twice), and its transfers and balances are
exactly the model's.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.repositories.ledger import SqlLedger
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.errors import (
    HoldAlreadyResolved,
    IdempotencyConflict,
    LedgerError,
    OverdraftRefused,
    ReversalRefused,
)
from gasbill.domain.ledger import (
    ZERO_BALANCE,
    AccountCode,
    HoldAction,
    Ledger,
    Transfer,
    TransferKind,
    TransferStatus,
    new_transfer_id,
    resolve_hold,
    reverse,
)
from gasbill.service import ledger as service
from tests.integration.test_ledger_db import add_account, in_threads

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
REVENUE = AccountCode.revenue("gas")
ACCOUNTS = 2
KEYS = [f"k{i}" for i in range(4)]  # payment keys, reused on purpose

SETTINGS = settings(
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

amounts = st.integers(min_value=1, max_value=5_000)
account_indexes = st.integers(min_value=0, max_value=ACCOUNTS - 1)
# Which hold or transfer a step acts on. Concurrent steps end differently from run
# to run (which of a post and a void wins), so no draw or precondition may depend
# on the state: a fixed-range pick, taken modulo what there is, keeps draws stable.
picks = st.integers(min_value=0, max_value=999)


def chosen(items: Sequence[Transfer], pick: int) -> Transfer | None:
    return items[pick % len(items)] if items else None


class LedgerMachine(RuleBasedStateMachine):
    """Subclassed per database with `fresh_database` returning an empty migrated engine."""

    fresh_database: Callable[[], Engine]
    release_database: Callable[[Engine], None]

    def __init__(self) -> None:
        super().__init__()
        self.engine = self.fresh_database()
        self.uow = UnitOfWork(self.engine)
        self.model = Ledger()
        self.accounts = [add_account(self.uow, f"S{i}") for i in range(ACCOUNTS)]
        for account in self.accounts:
            self.model.set_overdraft_allowance(self.prepaid(account), 0)
        self.clock = T0
        self.serial = 0

    def teardown(self) -> None:
        self.release_database(self.engine)

    # -- helpers ----------------------------------------------------------------------
    def prepaid(self, account: int) -> AccountCode:
        return AccountCode.prepaid(str(account))

    def next_key(self, prefix: str) -> str:
        self.serial += 1
        self.clock += timedelta(seconds=1)
        return f"{prefix}:{self.serial}"

    def transfer(
        self,
        prefix: str,
        debit: AccountCode,
        credit: AccountCode,
        amount: int,
        kind: TransferKind,
        status: TransferStatus = TransferStatus.POSTED,
    ) -> Transfer:
        return Transfer(
            id=new_transfer_id(),
            idempotency_key=self.next_key(prefix),
            debit_account=debit,
            credit_account=credit,
            amount=amount,
            kind=kind,
            effective_at=self.clock,
            recorded_at=self.clock,
            status=status,
            actor="test",
        )

    def both(
        self,
        model: Callable[[Ledger], Any],
        database: Callable[[SqlLedger], Any],
    ) -> None:
        """Apply one operation to the model and to the database: same answer or same error."""
        try:
            expected, refused = model(self.model), None
        except LedgerError as exc:
            expected, refused = None, type(exc)
        got, error = None, None
        try:
            with self.uow:
                got = database(SqlLedger(self.uow.session))
                self.uow.commit()
        except LedgerError as exc:
            error = exc
        assert type(error) is (refused or type(None)), f"database: {error!r}, model: {refused}"
        assert got == expected

    def record(
        self, transfer: Transfer, *, enforce_limits: bool = True, batch: bool = False
    ) -> None:
        if batch:
            self.both(
                lambda m: [m.apply(transfer, enforce_limits=enforce_limits)],
                lambda db: db.record_many([transfer], enforce_limits=enforce_limits),
            )
        else:
            self.both(
                lambda m: m.apply(transfer, enforce_limits=enforce_limits),
                lambda db: db.record(transfer, enforce_limits=enforce_limits),
            )

    # -- through the service ------------------------------------------------------------
    @rule(index=account_indexes, amount=amounts, key=st.sampled_from(KEYS))
    def payment(self, index: int, amount: int, key: str) -> None:
        account = self.accounts[index]
        self.clock += timedelta(seconds=1)
        first = self.model.transfer_by_key(f"payment:{key}")
        try:
            got = service.record_payment(
                self.uow,
                account_id=account,
                amount_fen=amount,
                channel="wechat",
                idempotency_key=key,
                actor="clerk",
                at=self.clock,
            )
        except IdempotencyConflict:
            assert first is not None
            assert (first.amount, first.credit_account) != (amount, self.prepaid(account))
            return
        if first is not None:
            assert got == first
        else:
            assert self.model.apply(got) is got

    @rule(index=account_indexes, amount=amounts)
    def refund(self, index: int, amount: int) -> None:
        account = self.accounts[index]
        available = self.model.balance(self.prepaid(account)).available
        try:
            got = service.refund(
                self.uow,
                account_id=account,
                amount_fen=amount,
                channel="wechat",
                reason="closing",
                actor="clerk",
                idempotency_key=self.next_key("r"),
            )
        except OverdraftRefused:
            assert amount > available
            return
        assert amount <= available
        assert self.model.apply(got) is got

    # -- through the repository ------------------------------------------------------------
    @rule(
        charges=st.lists(st.tuples(account_indexes, amounts), min_size=1, max_size=3),
        batch=st.booleans(),
    )
    def charge(self, charges: list[tuple[int, int]], batch: bool) -> None:
        made = [
            self.transfer(
                "charge", self.prepaid(self.accounts[i]), REVENUE, amount, TransferKind.CHARGE
            )
            for i, amount in charges
        ]
        if batch:
            self.both(
                lambda m: [m.apply(t, enforce_limits=False) for t in made],
                lambda db: db.record_many(made),
            )
        else:
            for t in made:
                self.record(t, enforce_limits=False)

    @rule(index=account_indexes, amount=amounts, batch=st.booleans())
    def hold(self, index: int, amount: int, batch: bool) -> None:
        account = self.accounts[index]
        self.record(
            self.transfer(
                "hold",
                self.prepaid(account),
                AccountCode.meter_credit(str(account)),
                amount,
                TransferKind.TOP_UP,
                TransferStatus.PENDING,
            ),
            batch=batch,
        )

    @rule(index=account_indexes, paid=amounts, held=amounts)
    def payment_and_hold_together(self, index: int, paid: int, held: int) -> None:
        account = self.accounts[index]
        group = [
            self.transfer(
                "pay", AccountCode.cash("bank"), self.prepaid(account), paid, TransferKind.PAYMENT
            ),
            self.transfer(
                "hold",
                self.prepaid(account),
                AccountCode.meter_credit(str(account)),
                held,
                TransferKind.TOP_UP,
                TransferStatus.PENDING,
            ),
        ]
        self.both(lambda m: m.apply_group(group), lambda db: db.record_group(group))

    def holds(self) -> list[Transfer]:
        return [t for t in self.model.transfers if t.is_hold]

    @rule(
        pick=picks,
        action=st.sampled_from(HoldAction),
        share=st.integers(1, 100),
        batch=st.booleans(),
    )
    def resolve(self, pick: int, action: HoldAction, share: int, batch: bool) -> None:
        hold = chosen(self.holds(), pick)
        if hold is None:
            return
        amount = max(1, hold.amount * share // 100) if action is HoldAction.POST else None
        resolution = resolve_hold(
            hold, action, amount, key=self.next_key(str(action)), at=self.clock, actor="job"
        )
        self.record(resolution, batch=batch)

    @rule(pick=picks)
    def reversal(self, pick: int) -> None:
        original = chosen(self.model.transfers, pick)
        if original is None:
            return
        try:
            undo = reverse(
                original, reason="mistake", actor="auditor", key=self.next_key("rev"), at=self.clock
            )
        except ReversalRefused:
            assert (
                original.is_hold
                or original.kind is TransferKind.REVERSAL
                or (original.status is TransferStatus.VOID_PENDING)
            )
            return
        self.record(undo)

    @rule(pick=picks, altered=st.booleans(), batch=st.booleans(), limits=st.booleans())
    def replay(self, pick: int, altered: bool, batch: bool, limits: bool) -> None:
        first = chosen(self.model.transfers, pick)
        if first is None:
            return
        self.clock += timedelta(seconds=1)
        again = replace(first, id=new_transfer_id(), recorded_at=self.clock)
        if altered:
            again = replace(again, amount=first.amount + 1)
        self.record(again, enforce_limits=limits, batch=batch)

    # -- concurrent requests ---------------------------------------------------------------
    @rule(index=account_indexes, paid=st.lists(amounts, min_size=2, max_size=3), same=st.booleans())
    def concurrent_payments(self, index: int, paid: list[int], same: bool) -> None:
        account = self.accounts[index]
        key = self.next_key("c")
        at = self.clock

        def work(i: int) -> Transfer:
            return service.record_payment(
                UnitOfWork(self.engine),
                account_id=account,
                amount_fen=paid[0] if same else paid[i],
                channel="alipay",
                idempotency_key=key if same else f"{key}-{i}",
                actor="clerk",
                at=at,
            )

        results = in_threads(len(paid), work)
        assert all(isinstance(r, Transfer) for r in results), results
        if same:
            assert len({r.id for r in results}) == 1
            results = results[:1]
        for r in results:
            assert self.model.apply(r) is r

    @rule(pick=picks)
    def concurrent_post_and_void(self, pick: int) -> None:
        hold = chosen(self.model.open_holds(), pick)
        if hold is None:
            return
        keys = [self.next_key("race") for _ in range(2)]

        def work(i: int) -> Transfer:
            unit = UnitOfWork(self.engine)
            if i == 0:
                return service.post_hold(unit, hold_id=hold.id, idempotency_key=keys[0], actor="a")
            return service.void_hold(unit, hold_id=hold.id, idempotency_key=keys[1], actor="b")

        results = in_threads(2, work)
        won = [r for r in results if isinstance(r, Transfer)]
        assert len(won) == 1, results
        assert all(isinstance(r, HoldAlreadyResolved) for r in results if r is not won[0])
        assert self.model.apply(won[0]) is won[0]

    # -- after every step -------------------------------------------------------------------
    @invariant()
    def database_verifies_and_agrees_with_the_model(self) -> None:
        self.model.verify()
        with self.uow:
            ledger = SqlLedger(self.uow.session)
            report = ledger.verify()
            balances = ledger.balances()
            transfers = list(ledger.iter_transfers())
        assert report.ok, report.problems
        assert (report.posted_total, report.pending_total) == (0, 0)
        assert report.transfers == len(self.model.transfers)
        # concurrent requests land in either order: compare by id
        assert {t.id: t for t in transfers} == {t.id: t for t in self.model.transfers}
        model = self.model.balances()
        for code in balances.keys() | model.keys():
            assert balances.get(code, ZERO_BALANCE) == model.get(code, ZERO_BALANCE), code


# -- one machine per database ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(
    request: pytest.FixtureRequest, sqlite_template: Path, postgres_migrated: str | None
) -> Iterator[tuple[Callable[[], Engine], Callable[[Engine], None]]]:
    """(fresh, release): an empty migrated database per example, and its disposal."""
    if request.param == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="ledger-machine-"))
        made = iter(range(1_000_000))

        def fresh_sqlite() -> Engine:
            path = folder / f"{next(made)}.db"
            shutil.copyfile(sqlite_template, path)
            return make_engine(f"sqlite:///{path}")

        yield fresh_sqlite, lambda engine: engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
        return
    if postgres_migrated is None:
        pytest.skip("PostgreSQL: set GASBILL_TEST_DATABASE_URL to run")
    engine = make_engine(postgres_migrated)
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # audit_log's
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    def fresh_postgres() -> Engine:
        # what a run writes, emptied with DELETE: far quicker than TRUNCATE for a few
        # rows (the append-only audit log just grows)
        with engine.begin() as conn:
            for table in ("transfer", "ledger_account", "account", "customer"):
                conn.execute(sa.text(f'DELETE FROM "{table}"'))
        return engine

    yield fresh_postgres, lambda engine: None
    engine.dispose()


def test_the_database_ledger_behaves_like_the_model(
    databases: tuple[Callable[[], Engine], Callable[[Engine], None]],
) -> None:
    fresh, release = databases
    machine = type(
        "DatabaseLedgerMachine",
        (LedgerMachine,),
        {"fresh_database": staticmethod(fresh), "release_database": staticmethod(release)},
    )
    run_state_machine_as_test(machine, settings=SETTINGS)
