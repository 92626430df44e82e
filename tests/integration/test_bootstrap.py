"""One composition root: `gasbill serve`, its app and its jobs share what `bootstrap` built."""

from __future__ import annotations

import contextlib

from gasbill.adapters.platform.client import LOGIN_PATH, PlatformRefused, PlatformRetryable
from gasbill.bootstrap import bootstrap
from gasbill.cli.serve import build_runtime
from gasbill.config import Settings
from gasbill.service.platform_health import PlatformHealth, describe_error, error_kind, watched
from tests.conftest import ROOT


def settings_for(url: str) -> Settings:
    return Settings(database={"url": url}, tariffs={"dir": ROOT / "tariffs"})


def test_serve_app_and_jobs_share_one_world(db_url):
    runtime = build_runtime(settings_for(db_url))
    try:
        ctx = runtime.app.state.gasbill
        assert ctx.services is runtime.services
        assert runtime.scheduler is not None
        jobs = runtime.scheduler.context
        assert jobs.services is runtime.services
        assert ctx.engine is jobs.engine is runtime.engine
        assert ctx.catalog is jobs.catalog
        # retry and cancel reach the platform under `gasbill serve` (no more 503)
        assert ctx.platform is not None
        assert runtime.services.platform() is runtime.services.platform()  # made once
    finally:
        runtime.close()


def test_bootstrap_connects_nothing_until_used():
    services = bootstrap(settings_for("sqlite://"))
    try:
        assert services._made == {}  # no client, no login yet
    finally:
        services.close()


class Refusing:
    def __init__(self, error):
        self.error = error

    def add_commands(self, commands):
        raise self.error


def test_platform_errors_are_counted_by_kind_and_a_refused_login_degrades():
    health = PlatformHealth()
    login = PlatformRefused("用户名或密码错误", status=200, path=LOGIN_PATH, login=True)
    client = watched(Refusing(login), health)
    for _ in range(2):
        with contextlib.suppress(PlatformRefused):
            client.add_commands([])
    assert health.errors["login_refused"] == 2
    assert health.login_refused is not None
    assert "login" in describe_error(login)
    unreachable = PlatformRetryable("transport error", path="api/Conf/CtrlData/AddMulti")
    assert error_kind(unreachable) == "unreachable"
    refused = PlatformRefused("表号不存在", path="api/Conf/CtrlData/AddMulti")
    assert error_kind(refused) == "refused"
    health.failed(refused)  # we were let in: no longer degraded
    assert health.login_refused is None
    assert health.snapshot()["errors"] == {"login_refused": 2, "unreachable": 0, "refused": 1}
