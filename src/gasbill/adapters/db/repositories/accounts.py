"""Customers, accounts, meters and bindings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.accounts import Account, Customer, Meter, MeterBinding
from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.domain.tariff import VolumeBasis
from gasbill.service.ports import AccountRecord, BindingRecord, NewAccountRow, NewBinding

FROZEN = 1  # data_type of a daily frozen reading


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # customers
    def add_customer(self, *, name: str, phone: str = "", address: str = "") -> Customer:
        customer = Customer(name=name, phone=phone, address=address)
        self.session.add(customer)
        self.session.flush()
        return customer

    def customer(self, customer_id: int) -> Customer | None:
        return self.session.get(Customer, customer_id)

    def customers(
        self, *, search: str = "", offset: int = 0, limit: int = 100
    ) -> Sequence[Customer]:
        query = select(Customer).order_by(col(Customer.id)).offset(offset).limit(limit)
        if search:
            like = f"%{search}%"
            query = query.where(
                sa.or_(col(Customer.name).ilike(like), col(Customer.phone).ilike(like))
            )
        return self.session.exec(query).all()

    # accounts
    def add(self, new: NewAccountRow) -> Account:
        account = Account(**{f: getattr(new, f) for f in NewAccountRow.__dataclass_fields__})
        self.session.add(account)
        self.session.flush()
        return account

    def get(self, account_id: int, *, lock: bool = False) -> Account | None:
        if lock:
            return self.session.exec(
                select(Account).where(Account.id == account_id).with_for_update()
            ).first()
        return self.session.get(Account, account_id)

    def by_number(self, number: str) -> Account | None:
        return self.session.exec(select(Account).where(Account.number == number)).first()

    def find(
        self, *, customer_id: int | None = None, offset: int = 0, limit: int = 100
    ) -> Sequence[Account]:
        query = select(Account).order_by(col(Account.id)).offset(offset).limit(limit)
        if customer_id is not None:
            query = query.where(Account.customer_id == customer_id)
        return self.session.exec(query).all()

    def active_ids(self, *, after: int = 0, limit: int | None = None) -> list[int]:
        """The active accounts' ids in order; those above `after`, at most `limit` (a page)."""
        query = (
            select(Account.id)
            .where(Account.status == "active", col(Account.id) > after)
            .order_by(col(Account.id))
        )
        if limit is not None:
            query = query.limit(limit)
        return [i for i in self.session.exec(query).all() if i is not None]

    # meters
    def meter(self, company_no: str, comm_no: str) -> Meter | None:
        return self.session.exec(
            select(Meter).where(Meter.company_no == company_no, Meter.comm_no == comm_no)
        ).first()

    def meter_by_id(self, meter_id: int) -> Meter | None:
        return self.session.get(Meter, meter_id)

    def add_meter(self, company_no: str, comm_no: str) -> Meter:
        meter = Meter(company_no=company_no, comm_no=comm_no)
        self.session.add(meter)
        self.session.flush()
        return meter

    # bindings
    def active_binding(self, account_id: int) -> MeterBinding | None:
        return self.session.exec(
            select(MeterBinding).where(
                MeterBinding.account_id == account_id, col(MeterBinding.unbound_at).is_(None)
            )
        ).first()

    def binding_of_meter(self, meter_id: int) -> MeterBinding | None:
        return self.session.exec(
            select(MeterBinding).where(
                MeterBinding.meter_id == meter_id, col(MeterBinding.unbound_at).is_(None)
            )
        ).first()

    def bindings(self, account_id: int) -> Sequence[MeterBinding]:
        return self.session.exec(
            select(MeterBinding)
            .where(MeterBinding.account_id == account_id)
            .order_by(col(MeterBinding.bound_at))
        ).all()

    def bindings_between(
        self, account_id: int, start: datetime, end: datetime
    ) -> Sequence[MeterBinding]:
        """Bindings that overlap [start, end]."""
        return self.session.exec(
            select(MeterBinding)
            .where(
                MeterBinding.account_id == account_id,
                col(MeterBinding.bound_at) <= end,
                sa.or_(
                    col(MeterBinding.unbound_at).is_(None), col(MeterBinding.unbound_at) >= start
                ),
            )
            .order_by(col(MeterBinding.bound_at))
        ).all()

    def add_binding(self, new: NewBinding) -> MeterBinding:
        binding = MeterBinding(
            account_id=new.account_id,
            meter_id=new.meter_id,
            bound_at=new.bound_at,
            opening_litres=new.opening_litres,
            reason=new.reason,
        )
        self.session.add(binding)
        self.session.flush()
        return binding

    def account_of_meter(self, comm_no: str) -> Account | None:
        """The account the meter is bound to now, else the last one it was bound to."""
        row = self.session.exec(
            select(MeterBinding)
            .join(Meter, col(Meter.id) == col(MeterBinding.meter_id))
            .where(Meter.comm_no == comm_no)
            .order_by(
                col(MeterBinding.unbound_at).is_(None).desc(), col(MeterBinding.bound_at).desc()
            )
            .limit(1)
        ).first()
        return self.get(row.account_id) if row is not None else None

    def readings_while_bound(
        self, account_id: int, *, frozen_only: bool, offset: int, limit: int
    ) -> Sequence[MeterReading]:
        """The account's readings, newest first: each meter's while it was bound to it."""
        clauses = []
        for binding in self.bindings(account_id):
            meter = self.meter_by_id(binding.meter_id)
            assert meter is not None
            clause = (
                (col(MeterReading.company_no) == meter.company_no)
                & (col(MeterReading.meter_comm_no) == meter.comm_no)
                & (col(MeterReading.acquisition_time) > binding.bound_at)
            )
            if binding.unbound_at is not None:
                clause = clause & (col(MeterReading.acquisition_time) <= binding.unbound_at)
            clauses.append(clause)
        if not clauses:
            return []
        query = select(MeterReading).where(sa.or_(*clauses))
        if frozen_only:
            query = query.where(MeterReading.data_type == FROZEN)
        return self.session.exec(
            query.order_by(col(MeterReading.acquisition_time).desc()).offset(offset).limit(limit)
        ).all()

    def latest_remain_thousandths(self, company_no: str, comm_no: str) -> int | None:
        return self.session.exec(
            select(MeterReading.remain_money)
            .where(
                MeterReading.company_no == company_no,
                MeterReading.meter_comm_no == comm_no,
                col(MeterReading.remain_money).is_not(None),
            )
            .order_by(col(MeterReading.acquisition_time).desc())
            .limit(1)
        ).first()

    def save(self, record: AccountRecord | BindingRecord) -> None:
        self.session.add(record)
        self.session.flush()

    def latest_frozen_litres(
        self,
        company_no: str,
        comm_no: str,
        *,
        since: datetime,
        until: datetime,
        basis: VolumeBasis,
    ) -> int | None:
        """The meter's register on `basis` at its latest frozen reading in (since, until]
        that has it: one backward range scan of the primary key (company, meter, data
        type, time), the first row kept."""
        register = MeterReading.std_sum if basis is VolumeBasis.STD_SUM else MeterReading.work_sum
        return self.session.exec(
            select(register)
            .where(
                MeterReading.company_no == company_no,
                MeterReading.meter_comm_no == comm_no,
                MeterReading.data_type == FROZEN,
                col(MeterReading.acquisition_time) > since,
                col(MeterReading.acquisition_time) <= until,
                col(register).is_not(None),
            )
            .order_by(col(MeterReading.acquisition_time).desc())
            .limit(1)
        ).first()
