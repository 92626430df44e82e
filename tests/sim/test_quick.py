"""The simulation's quick run inside `make test`: 50 seeds, a few operations each.

The long run is `make reliability` (tests/sim/run.py). Here every seed must
keep every property, and a crash at every site must be recovered from; a
failure names the seed and the command that replays it.
"""

from __future__ import annotations

import pytest

from gasbill.crashpoints import SITES
from tests.sim.checks import PROPERTIES
from tests.sim.harness import run_seed
from tests.sim.run import failure_text

pytestmark = pytest.mark.db

QUICK_SEEDS = range(1, 51)
QUICK_OPS = 10
QUICK_SETTLE = 1


def _judged(result, site=None) -> None:
    assert not result.failure and not sum(result.tally.violations.values()), failure_text(
        result, site, QUICK_OPS, None, QUICK_SETTLE
    )


def test_fifty_seeds_keep_every_property(db_url_factory) -> None:
    checked = dict.fromkeys(PROPERTIES, 0)
    for seed in QUICK_SEEDS:
        result = run_seed(seed, db_url_factory(), ops=QUICK_OPS, settle_days=QUICK_SETTLE)
        _judged(result)
        for name in PROPERTIES:
            checked[name] += result.tally.checks[name]
    assert all(checked.values()), checked  # every property was judged at least once


@pytest.mark.parametrize("site", SITES)
def test_a_crash_at_each_site_is_recovered(db_url_factory, site: str) -> None:
    # the first time the site is reached it crashes (then by chance, at most three times);
    # a seed whose faults keep the run from the site (every AddMulti reply lost) gives way
    # to the next
    for seed in range(1, 6):
        result = run_seed(
            seed,
            db_url_factory(),
            ops=QUICK_OPS,
            crash_site=site,
            settle_days=QUICK_SETTLE,
            crash_chance=1,
        )
        _judged(result, site)
        if result.crashes:
            return
    raise AssertionError(f"{site} was never reached in seeds 1 to 5")


def test_a_planted_bug_is_caught(db_url_factory, monkeypatch) -> None:
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
    result = run_seed(2, db_url_factory(), ops=30, settle_days=3)
    assert result.tally.violations["hold posted iff meter loaded it"], result.tally
