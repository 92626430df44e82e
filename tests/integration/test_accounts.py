"""Customers, accounts, meters and replacements against a real database."""

from datetime import UTC, date, datetime

import pytest

from gasbill.domain.accounts import AccountError, BillingMode
from gasbill.domain.errors import TariffError
from gasbill.domain.money import Volume
from gasbill.service.accounts import (
    Conflict,
    NewAccount,
    NotFound,
    Replacement,
    create_customer,
    open_account,
    replace_meter,
    update_account,
)
from gasbill.service.lookup import find_account

METER = "12345678901234"


def new_account(customer_id: int, **overrides) -> NewAccount:
    fields = {
        "customer_id": customer_id,
        "number": "A0001",
        "company_no": "1001",
        "billing_mode": BillingMode.SYSTEM,
        "tariff_id": "beijing-residential",
        "opened_on": date(2025, 1, 1),
        "meter_comm_no": METER,
        "opening_register": Volume("12.5"),
        "bound_at": datetime(2024, 12, 31, 16, tzinfo=UTC),
        "persons": 3,
    }
    fields.update(overrides)
    return NewAccount(**fields)


def test_open_an_account_with_its_meter_and_ledger_accounts(uow, catalog):
    customer = create_customer(uow, name="王芳", phone="13800000000", actor="clerk1")
    account = open_account(uow, new_account(customer.id), catalog=catalog, actor="clerk1")
    with uow:
        binding = uow.accounts.active_binding(account.id)
        assert binding is not None
        assert binding.opening_litres == 12_500
        assert uow.accounts.meter_by_id(binding.meter_id).comm_no == METER
        entries = list(uow.audit.entries())
    assert [e.action for e in entries] == ["customer.create", "account.open"]
    assert entries[1].actor == "clerk1"


@pytest.mark.parametrize("comm_no", ["123", "1234567890123", "12345678901234a"])
def test_a_meter_number_must_be_10_or_14_digits(uow, catalog, comm_no):
    customer = create_customer(uow, name="x", actor="c")
    with pytest.raises(AccountError, match="14 digits"):
        open_account(
            uow, new_account(customer.id, meter_comm_no=comm_no), catalog=catalog, actor="c"
        )


def test_a_meter_is_bound_to_one_account_at_a_time(uow, catalog):
    customer = create_customer(uow, name="x", actor="c")
    open_account(uow, new_account(customer.id), catalog=catalog, actor="c")
    with pytest.raises(Conflict, match="bound to account"):
        open_account(uow, new_account(customer.id, number="A0002"), catalog=catalog, actor="c")
    with pytest.raises(Conflict, match="already in use"):
        open_account(
            uow, new_account(customer.id, meter_comm_no="1234567890"), catalog=catalog, actor="c"
        )


def test_meter_mode_refuses_a_tariff_a_meter_cannot_hold(uow, catalog, tmp_path):
    customer = create_customer(uow, name="x", actor="c")
    with pytest.raises(TariffError):
        open_account(
            uow,
            new_account(customer.id, tariff_id="no-such-tariff", billing_mode=BillingMode.METER),
            catalog=catalog,
            actor="c",
        )


def test_replacing_a_meter_closes_the_old_binding_at_its_final_reading(uow, catalog):
    customer = create_customer(uow, name="x", actor="c")
    account = open_account(uow, new_account(customer.id), catalog=catalog, actor="c")
    at = datetime(2025, 3, 5, 2, tzinfo=UTC)
    new = replace_meter(
        uow,
        Replacement(account.id, at, Volume("345"), "98765432109876", Volume("0.004")),
        actor="c",
        last_billed_litres=340_000,
    )
    with uow:
        bindings = uow.accounts.bindings(account.id)
    assert [(b.final_litres, b.unbound_at) for b in bindings] == [(345_000, at), (None, None)]
    assert new.opening_litres == 4
    with pytest.raises(AccountError, match="below the meter's last reading"):
        replace_meter(
            uow,
            Replacement(
                account.id,
                datetime(2025, 4, 1, tzinfo=UTC),
                Volume("1"),
                "11112222333344",
                Volume("0"),
            ),
            actor="c",
            last_billed_litres=5_000,
        )


def test_update_checks_thresholds_and_is_audited(uow, catalog):
    customer = create_customer(uow, name="x", actor="c")
    account = open_account(uow, new_account(customer.id), catalog=catalog, actor="c")
    update_account(
        uow, account.id, {"cutoff_fen": -500, "reopen_fen": 1000}, catalog=catalog, actor="admin1"
    )
    with pytest.raises(AccountError):
        update_account(uow, account.id, {"cutoff_fen": 100}, catalog=catalog, actor="a")
    with pytest.raises(AccountError, match="cannot change"):
        update_account(uow, account.id, {"number": "B"}, catalog=catalog, actor="a")
    with uow:
        last = list(uow.audit.entries())[-1]
        assert uow.accounts.get(account.id).cutoff_fen == -500
    assert last.action == "account.update"
    assert '"cutoff_fen":-500' in last.after


def test_an_account_is_found_by_its_number_or_by_a_meter_bound_now_or_last(uow, catalog):
    customer = create_customer(uow, name="x", actor="c")
    account = open_account(uow, new_account(customer.id), catalog=catalog, actor="c")
    at = datetime(2025, 3, 5, 2, tzinfo=UTC)
    replace_meter(
        uow, Replacement(account.id, at, Volume("345"), "98765432109876", Volume("0")), actor="c"
    )

    assert find_account(uow, number=" A0001 ").id == account.id
    assert find_account(uow, meter="98765432109876").id == account.id  # bound now
    assert find_account(uow, meter=METER).id == account.id  # bound last
    with pytest.raises(NotFound):
        find_account(uow, meter="11112222333344")
