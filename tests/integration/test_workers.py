"""Three workers on one PostgreSQL database: each reading billed once, each command sent once.

Each worker is what `gasbill worker` builds — its own engine, services and
scheduler, leadership by the advisory lock — run in its own thread. One of
them leads; all three work the queues at once, in small batches so that
their claims meet.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.repositories.inbox import InboxStore
from gasbill.adapters.db.tables.accounts import Meter
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.platform.wire import BatchOutcome, BatchResultItem, CtrlDataRecord
from gasbill.config import Settings
from gasbill.domain.commands import SetValveOff
from gasbill.domain.ledger import AccountCode
from gasbill.domain.outbox import CommandStatus
from gasbill.jobs import JOBS, Job, JobContext, JobScheduler
from gasbill.jobs.leader import AdvisoryLockLeader
from gasbill.jobs.registry import run_dispatch, run_inbox
from gasbill.service.commands.queue import CommandPolicy, queue_command
from tests.conftest import ROOT
from tests.integration.billing_helpers import daily_series, make_account
from tests.integration.test_inbox import push_series

pytestmark = pytest.mark.db
NOW = datetime(2025, 3, 1, 2, tzinfo=UTC)
ACCOUNTS, DAYS, WORKERS = 24, 8, 3
QUEUES = ("inbox", "dispatch")


class CountingPlatform:
    """The platform's AddMulti, shared by the workers, recording every command handed over."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.handed: list[str] = []

    def add_commands(self, commands):
        with self.lock:
            outcomes = []
            for position, command in enumerate(commands):
                self.handed.append(command.define_no)
                item = BatchResultItem(
                    ctrl_id=len(self.handed),
                    target_comm_no=command.meter_comm_no,
                    result=True,
                    message="",
                )
                outcomes.append(BatchOutcome(position, item, True))
            return outcomes

    def find_by_define_no(self, define_no) -> list[CtrlDataRecord]:
        return []

    def get_model(self, ctrl_id):
        return None

    def cancel(self, ctrl_id):
        return 0

    def retry(self, ctrl_id):
        return 0


class Tally:
    """A queue job that also counts what each of its runs claimed (Drained.items)."""

    def __init__(self, run) -> None:
        self.run = run
        self.items = 0
        self.lock = threading.Lock()

    def __call__(self, context, now):
        outcome = self.run(context, now)
        with self.lock:
            self.items += outcome.items
        return outcome


def settings_for(url: str, key: int) -> Settings:
    jobs = {job.name: {"enabled": job.name in QUEUES, "interval_seconds": 3600} for job in JOBS}
    return Settings(
        database={"url": url},
        tariffs={"dir": ROOT / "tariffs"},
        commands={"batch_size": 2},  # a claim takes 8 meters: the workers' claims meet
        # a slice long enough to drain the queues on a loaded machine: the test is about
        # claims, not about how much one slice gets through
        jobs={**jobs, "inbox_batch": 3, "advisory_lock_key": key, "slice_seconds": 600},
    )


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_workers_bill_each_reading_once_and_send_each_command_once(uow, catalog, db_url):
    readings = 0
    for n in range(ACCOUNTS):
        comm_no = f"9{n:013d}"
        make_account(uow, catalog, number=f"W{n}", comm_no=comm_no, opened=date(2025, 1, 1))
        series = daily_series(date(2025, 1, 1), [random.randint(500, 3000) for _ in range(DAYS)])
        push_series(uow, series, comm_no=comm_no)
    with uow:
        readings = InboxStore(uow.session).pending()
    with uow:
        for meter in uow.session.exec(select(Meter)).all():
            queue_command(uow, SetValveOff(), meter=meter, now=NOW, policy=CommandPolicy())
        uow.commit()

    key = random.randint(1, 2**62)
    platform = CountingPlatform()
    tallies = {name: Tally(run) for name, run in (("inbox", run_inbox), ("dispatch", run_dispatch))}
    jobs = tuple(Job(name, tally, name, queue=True) for name, tally in tallies.items())
    workers = []
    for _ in range(WORKERS):
        settings = settings_for(db_url, key)
        context = JobContext.build(
            settings, make_engine(db_url), platform_factory=lambda: platform, clock=lambda: NOW
        )
        context.owns_services = True
        workers.append(JobScheduler(context, AdvisoryLockLeader(db_url, key), jobs=jobs))
    start = threading.Barrier(WORKERS)

    def work(scheduler: JobScheduler) -> None:
        start.wait()
        for name in QUEUES:
            scheduler.run_now(name)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=900)
        boards = [w.status()["jobs"] for w in workers]
    finally:
        for scheduler in workers:
            scheduler.shutdown()

    # every worker worked the queues, leader or not
    assert sum(1 for w in workers if w.status()["leader"]) <= 1
    for board in boards:
        for name in QUEUES:
            assert (board[name]["runs"], board[name]["failures"], board[name]["skipped"]) == (
                1,
                0,
                0,
            )
    # each reading claimed by one worker only, and all of them billed
    assert tallies["inbox"].items == readings == ACCOUNTS * (DAYS + 1)
    with uow:
        assert InboxStore(uow.session).pending() == 0
        balances = [
            uow.ledger.balances_of(account)[AccountCode.prepaid(str(account))].posted
            for account in range(1, ACCOUNTS + 1)
        ]
        statuses = Counter(c.status for c in uow.session.exec(select(Command)).all())
    assert all(balance < 0 for balance in balances)  # each account charged its days
    # each command handed to the platform once
    assert len(platform.handed) == len(set(platform.handed)) == ACCOUNTS
    assert tallies["dispatch"].items == ACCOUNTS
    assert statuses == {CommandStatus.SENT: ACCOUNTS}
