"""Set-up for billing tests: an account with a meter, and readings stored as ingest would."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.accounts import BillingMode
from gasbill.domain.money import Volume
from gasbill.service.accounts import NewAccount, create_customer, open_account
from tests.factories import ZONE

COMPANY = "1001"


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC)


def make_account(
    uow: UnitOfWork,
    catalog: TariffCatalog,
    *,
    number: str = "A1",
    comm_no: str = "12345678901234",
    mode: BillingMode = BillingMode.SYSTEM,
    tariff: str = "beijing-residential",
    opened: date = date(2025, 1, 1),
    opening_litres: int = 0,
) -> int:
    customer = create_customer(uow, name=f"customer {number}", actor="test")
    account = open_account(
        uow,
        NewAccount(
            customer_id=customer.id,
            number=number,
            company_no=COMPANY,
            billing_mode=mode,
            tariff_id=tariff,
            opened_on=opened,
            meter_comm_no=comm_no,
            opening_register=Volume.of_litres(opening_litres),
            bound_at=midnight(opened),
            persons=3,
        ),
        catalog=catalog,
        actor="test",
    )
    assert account.id is not None
    return account.id


def store_readings(uow: UnitOfWork, comm_no: str, readings: Sequence[tuple[datetime, int]]) -> None:
    """Frozen readings (time, std_sum litres), stored once each as the push endpoint would."""
    with uow:
        for at, litres in readings:
            uow.session.merge(
                MeterReading(
                    company_no=COMPANY,
                    meter_comm_no=comm_no,
                    data_type=1,
                    acquisition_time=at,
                    data_guid=os.urandom(16),
                    std_sum=litres,
                    work_sum=litres,
                )
            )
        uow.commit()


def daily_series(
    first: date, litres_per_day: Sequence[int], start: int = 0
) -> list[tuple[datetime, int]]:
    register = start
    out = [(midnight(first), register)]
    for offset, used in enumerate(litres_per_day, start=1):
        register += used
        out.append((midnight(first + timedelta(days=offset)), register))
    return out
