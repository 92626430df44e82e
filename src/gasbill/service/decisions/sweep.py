"""The periodic sweep over every active account, and the decider other use cases call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from gasbill.adapters.db.tables.accounts import Account
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.config import DecisionSettings, Settings
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.decisions.account import decide_account
from gasbill.service.decisions.outcomes import SweepOutcome

log = logging.getLogger("gasbill.decisions")


def sweep(
    uow_factory: Callable[[], UnitOfWork],
    *,
    settings: DecisionSettings,
    codec: Codec,
    command_policy: CommandPolicy,
    now: datetime,
    zone: str,
    batch: int = 500,
) -> SweepOutcome:
    """Decide every active account, one transaction per batch of accounts.

    An account whose decision fails is rolled back alone (a savepoint), logged
    and reported; the rest of its batch goes on.
    """
    outcome = SweepOutcome()
    after = 0
    while True:
        with uow_factory() as uow:
            ids = [
                int(i)
                for i in uow.session.exec(
                    select(Account.id)
                    .where(Account.status == "active", col(Account.id) > after)
                    .order_by(col(Account.id))
                    .limit(batch)
                ).all()
                if i is not None
            ]
            if not ids:
                return outcome
            for account_id in ids:
                try:
                    with uow.session.begin_nested():
                        decisions = decide_account(
                            uow,
                            account_id,
                            settings=settings,
                            codec=codec,
                            command_policy=command_policy,
                            now=now,
                            zone=zone,
                        )
                except Exception as exc:  # one account must not stop the sweep
                    log.exception("decisions: account %s failed", account_id)
                    outcome.failures.append((account_id, f"{type(exc).__name__}: {exc}"))
                    continue
                outcome.accounts += 1
                outcome.count(decisions)
                uow.commit()  # each account at once: a valve decision holds the audit lock
            uow.commit()
        outcome.batches += 1
        after = ids[-1]


def account_decider(
    settings: Settings, *, codec: Codec | None = None, policy: CommandPolicy | None = None
) -> Callable[[UnitOfWork, int, datetime], object]:
    """`decide_account` with these settings, for the services that change a balance."""
    codec = codec or Codec(ZoneInfo(settings.app.platform_timezone))
    policy = policy or CommandPolicy.from_settings(settings.commands)

    def decide(uow: UnitOfWork, account_id: int, now: datetime) -> object:
        return decide_account(
            uow,
            account_id,
            settings=settings.decisions,
            codec=codec,
            command_policy=policy,
            now=now,
            zone=settings.app.timezone,
        )

    return decide
