"""The periodic sweep over every active account, and the decider other use cases call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from gasbill.config import DecisionSettings, Settings
from gasbill.domain.decisions import ValveOff, ValveOn
from gasbill.service.accounts import NotFound
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.decisions.account import DecisionRun, decide_account, decide_on
from gasbill.service.decisions.outcomes import SweepOutcome
from gasbill.service.decisions.policies import WINDOW_DAYS
from gasbill.service.ports import UnitOfWork

# accounts whose decision facts are loaded (and locked) at once
FACTS_WINDOW = 100

log = logging.getLogger("gasbill.decisions")


def sweep(
    uow_factory: Callable[[], UnitOfWork],
    *,
    settings: DecisionSettings,
    command_policy: CommandPolicy,
    now: datetime,
    zone: str,
    batch: int = 500,
) -> SweepOutcome:
    """Decide every active account, `batch` accounts at a time (`decide_batch`)."""
    run = DecisionRun(settings, command_policy, now, zone)
    outcome = SweepOutcome()
    after = 0
    while True:
        with uow_factory() as uow:
            ids = uow.accounts.active_ids(after=after, limit=batch)
            if not ids:
                return outcome
            decide_batch(uow, ids, run, outcome)
        outcome.batches += 1
        after = ids[-1]


def decide_batch(
    uow: UnitOfWork, account_ids: Sequence[int], run: DecisionRun, outcome: SweepOutcome
) -> None:
    """Decide these accounts and commit, in as few transactions as the decisions allow.

    Their facts are loaded (and locked) together and the decisions made in
    one transaction, which is committed right after a valve decision, since
    that appends to the audit chain, whose lock is held until commit; the
    rest go on in a new one. If a decision fails, its transaction is rolled
    back and the accounts not yet committed are decided again one per
    transaction (a savepoint each), so that the failing account is logged and
    reported alone and the others go on.
    """
    pending = sorted(set(account_ids))
    try:
        while pending:
            # facts for a window, not all pending: each valve decision commits and the
            # rest are loaded (and locked) again, so k valve decisions among n accounts
            # cost k loads of the window, not of n (quadratic on a night of cut-offs)
            window = pending[:FACTS_WINDOW]
            facts = uow.decision_states.facts(window, window_days=WINDOW_DAYS)
            taken, made = 0, []
            for account_id in window:
                taken += 1
                one = facts.get(account_id)
                if one is None:
                    continue  # gone or no longer active
                decisions = decide_on(uow, one, run)
                made.append(decisions)
                if any(isinstance(d, ValveOn | ValveOff) for d in decisions):
                    break  # the audit chain's lock: commit now
            uow.commit()
            for decisions in made:
                outcome.accounts += 1
                outcome.count(decisions)
            pending = pending[taken:]
    except Exception:
        log.info("decisions: a batch failed; its accounts are decided one by one", exc_info=True)
        uow.rollback()
        _decide_one_by_one(uow, pending, run, outcome)


def _decide_one_by_one(
    uow: UnitOfWork, account_ids: Sequence[int], run: DecisionRun, outcome: SweepOutcome
) -> None:
    for account_id in account_ids:
        try:
            with uow.savepoint():
                decisions = decide_account(
                    uow,
                    account_id,
                    settings=run.settings,
                    command_policy=run.command_policy,
                    now=run.now,
                    zone=run.zone,
                )
        except NotFound:
            continue
        except Exception as exc:  # one account must not stop the others
            log.exception("decisions: account %s failed", account_id)
            outcome.failures.append((account_id, f"{type(exc).__name__}: {exc}"))
            continue
        uow.commit()  # each account at once: a valve decision holds the audit lock
        outcome.accounts += 1
        outcome.count(decisions)


class AccountDecider:
    """`decide_account` with these settings, for the services that change a balance;
    `each` decides many accounts after billing (`decide_batch`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        policy: CommandPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or CommandPolicy.from_settings(settings.commands)

    def __call__(self, uow: UnitOfWork, account_id: int, now: datetime) -> object:
        return decide_account(
            uow,
            account_id,
            settings=self.settings.decisions,
            command_policy=self.policy,
            now=now,
            zone=self.settings.app.timezone,
        )

    def each(self, uow: UnitOfWork, account_ids: Sequence[int], now: datetime) -> SweepOutcome:
        """Decide these accounts inside `uow` (entered), committing as `decide_batch` does."""
        outcome = SweepOutcome()
        run = DecisionRun(self.settings.decisions, self.policy, now, self.settings.app.timezone)
        decide_batch(uow, account_ids, run, outcome)
        return outcome


def account_decider(settings: Settings, *, policy: CommandPolicy | None = None) -> AccountDecider:
    """`decide_account` with these settings, for the services that change a balance."""
    return AccountDecider(settings, policy=policy)
