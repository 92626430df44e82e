"""A top-up the meter refused (0xbb) is topped up again by the clerk's retry: the same
amount, from the money its void put back in prepaid, once; or the clerk is told why not."""

from __future__ import annotations

import pytest

from gasbill.domain.outbox import CommandStatus
from gasbill.service.accounts import Conflict
from gasbill.service.commands.actions import retry_command
from gasbill.service.ledger import refund
from tests.integration.test_outbox import (
    POLICY,
    REFUSED,
    T0,
    ScriptedPlatform,
    account,  # noqa: F401 - fixture: a meter-mode account with 1000.00 yuan in prepaid
    balances,
    command,
    report,
    run,
    top_up,
)


def refused_top_up(uow, engine, platform, account_id, fen=20_000, key="t1"):
    command_id = top_up(uow, account_id, fen, key)
    run(engine, platform)
    ctrl_id = max(platform.records)
    report(uow, platform.finish(ctrl_id, 3, REFUSED))
    assert command(uow, command_id).status == CommandStatus.REFUSED
    return command_id


def again(uow, platform, command_id):
    return retry_command(uow, platform, command_id, actor="clerk", now=T0, policy=POLICY)


def test_a_refused_top_up_is_topped_up_again_once(uow, engine, account):  # noqa: F811
    platform = ScriptedPlatform()
    refused = refused_top_up(uow, engine, platform, account)
    assert balances(uow, account)[0].available == 100_000  # voided: back in prepaid

    new = again(uow, platform, refused)
    assert new.id != refused and new.amount_fen == 20_000
    assert new.status == CommandStatus.QUEUED and str(refused) in new.reason
    prepaid, meter_credit = balances(uow, account)
    assert (prepaid.available, meter_credit.pending) == (80_000, 20_000)
    with pytest.raises(Conflict, match=f"already topped up again as command {new.id}"):
        again(uow, platform, refused)


def test_a_refused_top_up_whose_money_is_gone_is_not_topped_up_again(
    uow,
    engine,
    account,  # noqa: F811
):
    platform = ScriptedPlatform()
    refused = refused_top_up(uow, engine, platform, account)
    refund(
        uow,
        account_id=account,
        amount_fen=90_000,
        channel="cash",
        reason="moving away",
        actor="clerk",
        idempotency_key="rf-1",
    )
    with pytest.raises(Conflict, match="only 10000 fen of the 20000"):
        again(uow, platform, refused)
    assert balances(uow, account)[1].pending == 0  # nothing held, nothing queued


def test_a_queued_top_up_is_not_retried(uow, engine, account):  # noqa: F811
    queued = top_up(uow, account, 5_000, "q1")
    with pytest.raises(Conflict, match="needing attention"):
        again(uow, ScriptedPlatform(), queued)
