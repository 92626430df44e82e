"""`gasbill exceptions list|accept|dismiss`: the queue and the two decisions from a terminal."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gasbill.cli import app
from gasbill.service.push_conflicts import list_conflicts
from tests.integration.billing_helpers import daily_series, make_account
from tests.integration.billing_helpers import store_readings as store_series
from tests.integration.test_billing import prepaid_fen
from tests.integration.test_cli_staff import write_config
from tests.integration.test_conflict_review import push

runner = CliRunner()
pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("GASBILL_CONFIG", "GASBILL_DATABASE__URL", "GASBILL_APP__ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


def run(config, *args):
    return runner.invoke(app, [*args, "--config", config])


def test_conflicts_are_listed_accepted_and_dismissed_from_the_terminal(
    tmp_path, db_url, uow, catalog
):
    from datetime import date

    account = make_account(uow, catalog)
    series = daily_series(date(2025, 1, 1), [1_000, 2_000, 3_000, 1_500])
    store_series(uow, "12345678901234", series)
    push(uow, series[2][0], series[2][1] + 2_000)
    push(uow, series[3][0], series[3][1] + 9_000)
    config = write_config(tmp_path, db_url)

    listed = run(config, "exceptions", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.count('"push_conflict"') == 2
    first, second = (c.conflict.id for c in list_conflicts(uow))

    blank = run(config, "exceptions", "dismiss", str(second), "--reason", " ")
    assert blank.exit_code == 2 and "reason" in blank.output
    before = prepaid_fen(uow, account)
    dismissed = run(config, "exceptions", "dismiss", str(second), "--reason", "misread")
    assert dismissed.exit_code == 0, dismissed.output
    assert prepaid_fen(uow, account) == before
    accepted = run(config, "exceptions", "accept", str(first), "--reason", "platform fixed it")
    assert accepted.exit_code == 0, accepted.output
    assert "accepted; re-rated" in accepted.stdout
    assert run(config, "exceptions", "accept", str(first), "--reason", "x").exit_code == 2
    assert list_conflicts(uow) == []
