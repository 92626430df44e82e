"""Finding an account as a customer names it (service.lookup.find_account) on fakes: by its
number, or by its meter's, bound now or last. The SQL behind `by_number` and
`account_of_meter` is held to the same answers in tests/integration/test_accounts.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gasbill.service.accounts import NotFound
from gasbill.service.lookup import find_account
from tests.fakes import FakeAccount, FakeBinding, FakeMeter, FakeStore, FakeUnitOfWork

T0, T1 = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)


def world() -> FakeStore:
    store = FakeStore()
    store.accounts[1] = FakeAccount(1, number="A-1", status="closed")
    store.accounts[2] = FakeAccount(2, number="A-2")
    store.meters[10] = FakeMeter(10, comm_no="88600000000010")
    store.meters[11] = FakeMeter(11, comm_no="88600000000011")
    # meter 10 moved from account 1 to account 2; meter 11 was account 1's, now unbound
    store.bindings += [
        FakeBinding(1, 10, bound_at=T0, unbound_at=T1),
        FakeBinding(2, 10, bound_at=T1),
        FakeBinding(1, 11, bound_at=T0, unbound_at=T1),
    ]
    return store


def test_an_account_is_found_by_its_number_trimmed():
    assert find_account(FakeUnitOfWork(world()), number=" A-2 ").id == 2


def test_a_meter_finds_the_account_it_is_bound_to_now_else_the_last_one():
    store = world()
    assert find_account(FakeUnitOfWork(store), meter="88600000000010").id == 2
    assert find_account(FakeUnitOfWork(store), meter="88600000000011").id == 1


@pytest.mark.parametrize(
    ("number", "meter"), [("A-9", None), (None, "88600000000099"), (None, None)]
)
def test_nothing_found_is_said_plainly(number, meter):
    with pytest.raises(NotFound):
        find_account(FakeUnitOfWork(world()), number=number, meter=meter)
