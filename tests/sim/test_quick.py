"""The simulation's quick run inside `make test`: 50 seeds, a few operations each.

The long run is `make reliability` (tests/sim/run.py). Here every seed must
keep every property, and every crash site must be reached and recovered
from: seed n crashes at the n-th of (no crash, every site...) in turn, the
first time the site is reached (once a run), so each site gets three or
four seeds and every property is judged in all of them. The seeds run in
two processes (`--jobs 2`; on PostgreSQL the second process has its own
database, `<name>_w1`, when the server lets it create one). A failure
names the seed and the command that replays it.
"""

from __future__ import annotations

import pytest

from gasbill.crashpoints import SITES
from tests.sim.checks import PROPERTIES
from tests.sim.harness import run_seed
from tests.sim.run import Plan, failure_text, results_of

pytestmark = pytest.mark.db

QUICK_SEEDS = range(1, 51)
QUICK_OPS = 10
QUICK_SETTLE = 1
TURNS: tuple[str | None, ...] = (None, *SITES)


def test_fifty_seeds_keep_every_property_and_recover_at_every_site(db_url: str) -> None:
    sqlite = db_url.startswith("sqlite")
    tasks = [(seed, TURNS[seed % len(TURNS)]) for seed in QUICK_SEEDS]
    plan = Plan(QUICK_OPS, QUICK_SETTLE, crash_chance=1, crash_limit=1)
    checked = dict.fromkeys(PROPERTIES, 0)
    crashed: dict[str, int] = {}
    failures = []
    pg_url = None if sqlite else db_url
    for _seed, site, result in results_of(tasks, plan, pg_url=pg_url, jobs=2, prepare=False):
        assert result is not None
        if result.failure or sum(result.tally.violations.values()):
            failures.append(failure_text(result, site, QUICK_OPS, pg_url, QUICK_SETTLE))
        for name in PROPERTIES:
            checked[name] += result.tally.checks[name]
        for hit in result.crashes:
            crashed[hit] = crashed.get(hit, 0) + 1
    assert not failures, "\n".join(failures)
    assert all(checked.values()), checked  # every property was judged at least once
    assert set(crashed) == set(SITES), f"never reached: {set(SITES) - set(crashed)}"


def test_a_planted_bug_is_caught(db_url: str, monkeypatch) -> None:
    """The properties can fail: top-ups the meter applied, booked as not applied."""
    from gasbill.domain.commands import CtrlType
    from gasbill.domain.outbox import Verdict
    from gasbill.service.commands import money_endings

    real = money_endings.verdict

    def wrong(ctrl_type, *args, **kwargs):
        ending = real(ctrl_type, *args, **kwargs)
        applied = ctrl_type is CtrlType.REMOTE_CHARGE and ending is Verdict.APPLIED
        return Verdict.NOT_APPLIED if applied else ending

    monkeypatch.setattr(money_endings, "verdict", wrong)
    result = run_seed(2, db_url, ops=30, settle_days=3)
    assert result.tally.violations["hold posted iff meter loaded it"], result.tally
