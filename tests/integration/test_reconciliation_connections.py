"""Reconciliation on several connections at once (`[reconcile] connections`): on PostgreSQL
every connection reads the one instant of the report's first (its exported snapshot), and
the report is the one a single connection makes, byte for byte; SQLite reads on one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from gasbill.adapters.db.engine import is_sqlite
from gasbill.adapters.db.repositories.reconciliation import SnapshotReader
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.cli import app
from gasbill.config import Settings
from gasbill.domain.commands import CtrlType
from gasbill.domain.reconciliation import Cause, Check
from gasbill.jobs.context import JobContext
from gasbill.jobs.registry import run_reconcile
from gasbill.service import reconciliation
from gasbill.service.reconciliation import reconcile
from gasbill.service.reconciliation_report import render_csv, render_html, render_json
from gasbill.service.reconciliation_rows import Scope
from tests.conftest import ROOT
from tests.integration.billing_helpers import midnight
from tests.integration.test_reconciliation import DAY1, Books, daily
from tests.integration.test_reconciliation_system import (
    NO_QUIET,
    pay,
    system_account,
    valve_command,
)

pytestmark = pytest.mark.db

AS_OF = datetime(2025, 3, 20, tzinfo=UTC)
PAID = midnight(DAY1) + timedelta(hours=3)


@pytest.fixture(autouse=True)
def ranges_of_one_account(monkeypatch):
    """Two connections share even a handful of accounts (`PART_MIN` ids each otherwise)."""
    monkeypatch.setattr(reconciliation, "PART_MIN", 1)


def codec_of(catalog):
    return Codec(ZoneInfo(catalog.default_zone))


def closed_without_credit(uow, catalog, n):
    """`n` system-mode accounts with nothing paid and the valve closed: all agree."""
    accounts = []
    for i in range(n):
        account = system_account(uow, catalog, number=f"S{i}", comm_no=f"2000000000000{i}")
        valve_command(uow, account, CtrlType.SET_VALVE_OFF, midnight(DAY1))
        accounts.append(account)
    return accounts


def test_the_other_connections_read_the_instant_of_the_first(uow, catalog, engine):
    """A payment committed by a third connection after the report's first read is seen by
    neither the report's connection nor the one that starts after it (which would see it
    on an instant of its own); a unit of work afterwards sees it."""
    [account] = closed_without_credit(uow, catalog, 1)
    pay(uow, account, 5_000, midnight(DAY1))
    scope = Scope(None, None, account_ids=[account])
    with uow:
        store = uow.reconciliation
        store.prepare()
        assert store.accounts(scope)[0].prepaid_posted == 5_000  # the report's instant
        if is_sqlite(engine):  # no snapshot to share: the report stays on its connection
            with uow.snapshot_readers(1) as readers:
                assert readers == []
            return
        pay(UnitOfWork(engine), account, 2_000, PAID)  # committed meanwhile
        with uow.snapshot_readers(1) as readers:
            [other] = readers
            assert other.reconciliation.accounts(scope)[0].prepaid_posted == 5_000
            assert store.accounts(scope)[0].prepaid_posted == 5_000
            sums = uow.reconciliation_system.ledger_sums(scope, AS_OF)
            assert other.reconciliation_system.ledger_sums(scope, AS_OF) == sums
            assert sums[account].summed_fen == 5_000
    with uow:
        assert uow.reconciliation.accounts(scope)[0].prepaid_posted == 7_000


class PaidMeanwhile(UnitOfWork):
    """A report's unit of work during which every account is paid (committed on a
    connection of its own) after the report's first read, before its other connections
    start; it keeps the readers it handed out."""

    def __init__(self, engine, accounts):
        super().__init__(engine)
        self.paying = accounts
        self.readers: list[SnapshotReader] = []

    @contextmanager
    def snapshot_readers(self, count: int) -> Iterator[list[SnapshotReader]]:
        for account in self.paying:
            pay(UnitOfWork(self.engine), account, 5_000, PAID)
        with super().snapshot_readers(count) as readers:
            self.readers = list(readers)
            yield readers


def test_a_report_on_two_connections_is_of_one_instant_whatever_is_committed_meanwhile(
    uow, catalog, engine
):
    if is_sqlite(engine):
        pytest.skip("PostgreSQL: SQLite reads a report on one connection")
    accounts = closed_without_credit(uow, catalog, 4)
    during = PaidMeanwhile(engine, accounts)
    report = reconcile(
        during, catalog, codec=codec_of(catalog), as_of=AS_OF, decisions=NO_QUIET, connections=2
    )
    assert len(during.readers) == 1  # ids 1-2 on one connection, 3-4 on the other
    assert report.lines == () and report.totals.agreeing == 4  # as before the payments
    after = reconcile(uow, catalog, codec=codec_of(catalog), as_of=AS_OF, decisions=NO_QUIET)
    assert [line.finding(Check.VALVE).cause for line in after.lines] == [
        Cause.VALVE_CLOSED_WITH_CREDIT
    ] * 4


def fleet(uow, catalog):
    """Meter- and system-mode accounts, agreeing and not, with readings and answers after
    the earlier of the two instants the reports are made as of."""
    for n, shift in enumerate(("0", "-5", "0", "0.004")):
        books = Books(uow, catalog, f"M{n}", f"1000000000000{n}")
        books.funded()
        daily(books, DAY1, 4, 10_000, 300, remain_shift=shift)
        books.charge_state(midnight(DAY1) + timedelta(hours=2), 1 + (n == 2), "100.000")
    flying = Books(uow, catalog, "M9", "10000000000009")
    flying.funded()
    flying.pay(2_000)
    flying.top_up(2_000, midnight(DAY1) - timedelta(hours=1))  # in flight at every reading
    daily(flying, DAY1, 2, 10_000, 300)
    paid, closed, owing = closed_without_credit(uow, catalog, 3)
    pay(uow, paid, 5_000, PAID)
    pay(uow, closed, 3_000, midnight(DAY1) + timedelta(days=2))
    valve_command(uow, owing, CtrlType.SET_VALVE_ON, midnight(DAY1) + timedelta(days=1))


def test_reports_on_one_and_on_two_connections_render_byte_for_byte_alike(
    uow, catalog, monkeypatch
):
    fleet(uow, catalog)
    monkeypatch.setattr(reconciliation, "CHUNK", 3)  # several ranges, each cut in two
    codec = codec_of(catalog)
    for as_of in (AS_OF, midnight(DAY1) + timedelta(days=1, hours=12)):
        for listed in (False, True):
            made = [
                reconcile(
                    uow,
                    catalog,
                    codec=codec,
                    as_of=as_of,
                    decisions=NO_QUIET,
                    include_agreeing=listed,
                    connections=connections,
                )
                for connections in (1, 2)
            ]
            assert made[0].totals.accounts == 8
            assert made[0].differs
            for render in (render_json, render_csv, render_html):
                assert render(made[1]) == render(made[0])


runner = CliRunner()


def configured(tmp_path, db_url, connections):
    path = tmp_path / f"config-{connections}.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n[decisions]\nquiet_hours_start = ""\n'
        f'quiet_hours_end = ""\n[reconcile]\nconnections = {connections}\n',
        encoding="utf-8",
    )
    return path


def test_gasbill_reconcile_reads_on_the_configured_connections(
    uow, catalog, db_url, tmp_path, monkeypatch
):
    monkeypatch.delenv("GASBILL_CONFIG", raising=False)
    monkeypatch.delenv("GASBILL_DATABASE__URL", raising=False)
    monkeypatch.delenv("GASBILL_RECONCILE__CONNECTIONS", raising=False)
    fleet(uow, catalog)
    opened = []
    real = UnitOfWork.snapshot_readers

    def counted(self, count):
        opened.append(count)
        return real(self, count)

    monkeypatch.setattr(UnitOfWork, "snapshot_readers", counted)
    outputs = []
    for connections in (1, 2):
        config = configured(tmp_path, db_url, connections)
        for fmt in ("json", "csv", "html"):
            result = runner.invoke(
                app,
                ["reconcile", "--config", str(config), "--as-of", "2025-03-19", "--format", fmt],
            )
            assert result.exit_code == 1, result.output  # some differ
            outputs.append(result.stdout)
    assert outputs[:3] == outputs[3:]
    assert opened == [0] * 3 + [1] * 3


def test_the_nightly_job_reads_on_the_configured_connections(uow, catalog, db_url, engine):
    fleet(uow, catalog)
    opened = []

    class Counted(UnitOfWork):
        def snapshot_readers(self, count):
            opened.append(count)
            return super().snapshot_readers(count)

    outcomes = []
    for connections in (2, 1):
        settings = Settings(
            database={"url": db_url},
            tariffs={"dir": ROOT / "tariffs"},
            decisions={"quiet_hours_start": "", "quiet_hours_end": ""},
            reconcile={"connections": connections},
        )
        context = JobContext.build(settings, engine, uow_factory=lambda: Counted(engine))
        outcomes.append(run_reconcile(context, AS_OF))
    assert outcomes[0] == outcomes[1]
    assert opened == [1, 0]


def test_two_connections_by_default():
    assert Settings().reconcile.connections == 2
    assert Settings(reconcile={"connections": 1}).reconcile.connections == 1
    with pytest.raises(ValueError, match="connections"):
        Settings(reconcile={"connections": 0})
