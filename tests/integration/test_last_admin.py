"""The last-admin rule, exact: with two active admins either may go, never both at once."""

from __future__ import annotations

import threading

import pytest

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.service.accounts import Conflict
from gasbill.service.staff import add_user, change_role, deactivate_user
from tests.e2e.staff_helpers import fast_passwords

pytestmark = pytest.mark.db


def admins(engine, n: int) -> list[int]:
    passwords = fast_passwords()
    return [
        add_user(
            UnitOfWork(engine),
            username=f"admin{i}",
            password="a long password",
            role="admin",
            passwords=passwords,
            actor="setup",
        ).id
        for i in range(n)
    ]


def test_with_two_admins_either_may_be_deactivated_then_not_the_last(engine):
    first, second = admins(engine, 2)
    assert deactivate_user(UnitOfWork(engine), second, actor="admin0").active is False
    with pytest.raises(Conflict, match="last active admin"):
        deactivate_user(UnitOfWork(engine), first, actor="admin0")
    with pytest.raises(Conflict, match="last active admin"):
        change_role(UnitOfWork(engine), first, "clerk", actor="admin0")


def test_two_admins_removing_each_other_at_once_leave_one(engine):
    ids = admins(engine, 2)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def remove(user_id: int) -> None:
        barrier.wait()
        try:
            deactivate_user(UnitOfWork(engine), user_id, actor="someone")
            outcomes.append("done")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=remove, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["done", "refused"]
