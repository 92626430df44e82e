"""Honest status and draining jobs: a refused login says so on the command, costs no
attempt, degrades /health and counts in /metrics; a run bills until the inbox is empty;
readings stored elsewhere wake billing (PostgreSQL NOTIFY)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.repositories.inbox import InboxStore
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.client import LOGIN_PATH, PlatformRefused
from gasbill.api.app import create_app
from gasbill.bootstrap import bootstrap
from gasbill.config import Settings
from gasbill.domain.accounts import BillingMode
from gasbill.jobs import JobContext
from gasbill.jobs.registry import run_dispatch, run_inbox
from gasbill.jobs.wakeup import BillingListener, BillingNotifier
from gasbill.service.commands.progress import command_progress
from gasbill.service.payments import take_payment
from tests.conftest import ROOT
from tests.integration.billing_helpers import daily_series, make_account
from tests.integration.test_inbox import push_series

pytestmark = pytest.mark.db
NOW = datetime(2025, 3, 1, 2, tzinfo=UTC)


class WrongPassword:
    """A platform that refuses our login on every call."""

    calls = 0

    def add_commands(self, commands):
        WrongPassword.calls += 1
        raise PlatformRefused("用户名或密码错误", status=200, path=LOGIN_PATH, login=True)

    def find_by_define_no(self, define_no):
        return []

    def get_model(self, ctrl_id):
        return None


def settings_for(url: str, **jobs) -> Settings:
    return Settings(
        database={"url": url},
        tariffs={"dir": ROOT / "tariffs"},
        app={"environment": "demo"},
        jobs=jobs,
    )


def test_a_refused_login_is_the_reason_costs_no_attempt_and_degrades_health(
    db_url, engine, catalog
):
    services = bootstrap(
        settings_for(db_url), engine=engine, catalog=catalog, platform=WrongPassword(),
        clock=lambda: NOW,
    )  # fmt: skip
    uow = UnitOfWork(engine)
    account = make_account(uow, catalog, mode=BillingMode.METER)
    outcome = take_payment(
        uow, account_id=account, amount_fen=5_000, channel="cash", idempotency_key="p-1",
        actor="clerk", now=NOW, policy=services.command_policy,
    )  # fmt: skip
    context = JobContext.of(services)
    WrongPassword.calls = 0
    for day in range(1, 11):  # more than max_attempts: a login problem never gives up a command
        run_dispatch(context, NOW.replace(day=day + 1))
    assert WrongPassword.calls == 10
    with UnitOfWork(engine) as uow:
        command = CommandStore(uow.session).get(outcome.top_up_id)
        assert command is not None
        view = command_progress(command)
    assert command.status == "queued" and command.attempts == 0
    assert "refused our login" in view["reason"] and "用户名或密码错误" in view["reason"]
    assert view["next_attempt_at"] is not None
    app = create_app(settings_for(db_url), services=services)
    with TestClient(app) as http:
        health = http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert "login refused" in health.json()["platform"]
        metrics = http.get("/metrics").text
        assert 'gasbill_platform_errors_total{kind="login_refused"} 10' in metrics
        assert "gasbill_platform_login_refused 1" in metrics


def test_a_run_bills_until_the_inbox_is_empty(db_url, engine, catalog):
    settings = settings_for(db_url, inbox_batch=2)
    services = bootstrap(settings, engine=engine, catalog=catalog, clock=lambda: NOW)
    uow = UnitOfWork(engine)
    make_account(uow, catalog)
    push_series(uow, daily_series(date(2025, 1, 1), [1500, 2500, 800, 3000, 1200, 900]))
    drained = run_inbox(JobContext.of(services), NOW)
    assert drained.emptied and drained.batches == 4 and drained.items == 7
    with UnitOfWork(engine) as uow:
        assert InboxStore(uow.session).pending() == 0


def test_readings_stored_elsewhere_wake_billing_by_notify(db_url, engine):
    if not engine.url.get_backend_name().startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    woken = threading.Event()
    listener = BillingListener(db_url, woken.set)
    listener.start()
    try:
        notify = BillingNotifier(engine, every=0)
        for _ in range(50):  # until the listener is listening
            notify()
            if woken.wait(0.2):
                break
        assert woken.is_set()
    finally:
        listener.stop()
