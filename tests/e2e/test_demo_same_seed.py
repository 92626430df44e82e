"""The same seed, the same demo: simulated time moves on only when the product has drained.

The product's jobs run on the demo's clock, and the simulated world steps on
only once `/metrics` says nothing is left to bill and a run of the queues
changes nothing (`gasbill.demo.product.Product.drain`). Two runs of one seed
then give the same summary to the fen, however loaded the machine is; before,
a job's wall-clock time moved its batches' stamps, and a command queued by
billing could wait a simulated day for the next dispatch.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gasbill.cli import app
from gasbill.demo.product import queue_state
from tests.conftest import ROOT

runner = CliRunner()


def _demo(tmp_path, monkeypatch, name: str) -> dict[str, object]:
    where = tmp_path / name
    where.mkdir()
    monkeypatch.chdir(where)
    config = where / "config.toml"
    config.write_text(f'[tariffs]\ndir = "{ROOT / "tariffs"}"\n', encoding="utf-8")
    ran = runner.invoke(
        app,
        ["demo", "--exit", "--json", "--meters", "8", "--days", "6", "--config", str(config)],
    )
    assert ran.exit_code == 0, ran.output
    summary: dict[str, object] = json.loads(ran.stdout)
    return summary


def test_two_runs_of_one_seed_give_the_same_summary(tmp_path, monkeypatch):
    for name in ("GASBILL_CONFIG", "GASBILL_DATABASE__URL"):
        monkeypatch.delenv(name, raising=False)
    first = _demo(tmp_path, monkeypatch, "first")
    second = _demo(tmp_path, monkeypatch, "second")
    assert first["readings"] and first["charges_fen"] and first["top_ups_confirmed"]
    assert first == second


def test_the_queue_state_is_read_from_the_gauges_exactly():
    metrics = "\n".join(
        [
            "# HELP gasbill_inbox_pending Frozen readings stored and not billed yet.",
            "gasbill_inbox_pending 3",
            'gasbill_commands_in_flight{status="queued"} 2',
            'gasbill_commands_in_flight{status="sent"} 0',
            "gasbill_exceptions_open 7",
        ]
    )
    assert queue_state(metrics) == {
        "gasbill_inbox_pending": 3,
        'gasbill_commands_in_flight{status="queued"}': 2,
        'gasbill_commands_in_flight{status="sent"}': 0,
    }
