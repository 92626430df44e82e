"""Customers: a clerk creates and finds them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gasbill.api.deps import CurrentUser, UowDep
from gasbill.api.edge import NO_NUL
from gasbill.api.errors import not_found
from gasbill.api.policy import API
from gasbill.api.staff.schemas import CustomerIn, CustomerOut, Offset, PathId
from gasbill.service.accounts import create_customer
from gasbill.service.ports import CustomerRecord

router = APIRouter(prefix=f"{API}/customers", tags=["customers"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def customer_out(customer: CustomerRecord) -> CustomerOut:
    return CustomerOut.model_validate(customer, from_attributes=True)


@router.post("", status_code=201, summary="Create a customer")
def create(body: CustomerIn, user: CurrentUser, uow: UowDep) -> CustomerOut:
    customer = create_customer(
        uow, name=body.name, phone=body.phone, address=body.address, actor=user.username
    )
    return customer_out(customer)


@router.get("", summary="Customers, by name or phone")
def find(
    uow: UowDep,
    search: Annotated[str, Query(max_length=100, pattern=NO_NUL)] = "",
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[CustomerOut]:
    with uow:
        found = uow.accounts.customers(search=search, offset=offset, limit=limit)
    return [customer_out(c) for c in found]


@router.get("/{customer_id}", summary="One customer")
def get(customer_id: PathId, uow: UowDep) -> CustomerOut:
    with uow:
        customer = uow.accounts.customer(customer_id)
    if customer is None:
        raise not_found(f"no customer {customer_id}")
    return customer_out(customer)
