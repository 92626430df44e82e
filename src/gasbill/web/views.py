"""What the pages show, read from the database: searches and summaries, never a change.

Every change a page makes goes through a use case in `gasbill.service`; this
module only reads, and composes what the service already decides (balances,
gas left, top-up progress) into what one page needs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.tables.accounts import Account, Customer, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.tables.decisions import DecisionState
from gasbill.adapters.db.tables.ledger import LedgerAccount, TransferRow
from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.config import Settings
from gasbill.domain.decisions import gas_left
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money, Price, Volume
from gasbill.service.decisions.balance import judge_balance, meter_of, recent_use
from gasbill.service.payments import owed_on_closing, top_up_progress
from gasbill.service.ports import MeterRecord

FROZEN = 1  # data_type of a daily frozen reading
SEARCH_LIMIT = 50


@dataclass
class Found:
    customer: Customer
    accounts: list[tuple[Account, str]] = field(default_factory=list)  # (account, meter comm_no)


def find_customers(uow: UnitOfWork, query: str, limit: int = SEARCH_LIMIT) -> list[Found]:
    """Customers whose name, phone, address, account number or meter number contains `query`."""
    like = f"%{query.strip()}%"
    with uow:
        session = uow.session
        by_account = (
            select(Account.customer_id)
            .join(MeterBinding, col(MeterBinding.account_id) == col(Account.id), isouter=True)
            .join(Meter, col(Meter.id) == col(MeterBinding.meter_id), isouter=True)
            .where(sa.or_(col(Account.number).ilike(like), col(Meter.comm_no).ilike(like)))
        )
        customers = session.exec(
            select(Customer)
            .where(
                sa.or_(
                    col(Customer.name).ilike(like),
                    col(Customer.phone).ilike(like),
                    col(Customer.address).ilike(like),
                    col(Customer.id).in_(by_account),
                )
            )
            .order_by(col(Customer.id))
            .limit(limit)
        ).all()
        found = {c.id: Found(c) for c in customers}
        rows = session.exec(
            select(Account, Meter.comm_no)
            .join(
                MeterBinding,
                sa.and_(
                    col(MeterBinding.account_id) == col(Account.id),
                    col(MeterBinding.unbound_at).is_(None),
                ),
                isouter=True,
            )
            .join(Meter, col(Meter.id) == col(MeterBinding.meter_id), isouter=True)
            .where(col(Account.customer_id).in_(list(found)))
            .order_by(col(Account.id))
        ).all()
        for account, comm_no in rows:
            found[account.customer_id].accounts.append((account, comm_no or ""))
        return list(found.values())


@dataclass
class AccountView:
    account: Account
    customer: Customer | None
    meter: MeterRecord | None
    binding: MeterBinding | None
    balances: dict[str, dict[str, int]]
    balance: Money | None
    balance_source: str
    days_left: Decimal | None
    valve: str
    valve_reason: str
    tariff_name: str
    version_label: str
    tiers: list[dict[str, Any]]
    readings: list[dict[str, Any]]
    transfers: list[dict[str, Any]]
    commands: list[dict[str, Any]]

    @property
    def owed_fen(self) -> int:
        """What a closed account still owes: a payment up to it settles it (0 if active)."""
        if self.account.status == "active":
            return 0
        available = {kind: b["available"] for kind, b in self.balances.items()}
        return owed_on_closing(available.get("prepaid", 0), available.get("meter_credit", 0))


def account_view(
    uow: UnitOfWork, account_id: int, *, settings: Settings, catalog: TariffCatalog, now: datetime
) -> AccountView | None:
    with uow:
        account = uow.accounts.get(account_id)
        if account is None:
            return None
        binding = uow.accounts.active_binding(account_id)
        meter = meter_of(uow, account_id)
        judged = judge_balance(uow, account, meter, settings=settings.decisions, now=now)
        daily, price = recent_use(uow, account_id)
        left = gas_left(judged.balance, daily, price).days
        state = uow.session.get(DecisionState, account_id)
        balances = {
            str(code.kind): {"posted": b.posted, "pending": b.pending, "available": b.available}
            for code, b in uow.ledger.balances_of(account_id).items()
        }
        tariff_name, label, tiers = _tiers(uow, account, catalog, now)
        return AccountView(
            account=account,
            customer=uow.accounts.customer(account.customer_id),
            meter=meter,
            binding=binding,
            balances=balances,
            balance=judged.balance,
            balance_source=judged.source,
            days_left=left,
            valve=state.valve_position if state else "open",
            valve_reason=state.valve_reason if state else "",
            tariff_name=tariff_name,
            version_label=label,
            tiers=tiers,
            readings=readings_of(uow, meter, binding),
            transfers=transfer_rows(uow, account_id=account_id, limit=20),
            commands=command_rows(uow, account_id, limit=20),
        )


def _tiers(
    uow: UnitOfWork, account: Account, catalog: TariffCatalog, now: datetime
) -> tuple[str, str, list[dict[str, Any]]]:
    """The tariff in force, its tiers for this household, and the m³ used in each this cycle."""
    try:
        tariff = catalog.get(account.tariff_id)
        version = tariff.version_at(now)
    except GasbillError:
        return account.tariff_id, "", []
    assert account.id is not None
    latest = uow.session.exec(
        select(ChargeDay.cycle_key)
        .where(ChargeDay.account_id == account.id)
        .order_by(col(ChargeDay.day).desc())
        .limit(1)
    ).first()
    used: dict[int, int] = defaultdict(int)
    if latest is not None:
        for lines in uow.session.exec(
            select(ChargeDay.lines).where(
                ChargeDay.account_id == account.id, ChargeDay.cycle_key == latest
            )
        ).all():
            for _version, tier, _price, litres, _cost in json.loads(lines):
                used[int(tier)] += int(litres)
    local = now.astimezone(ZoneInfo(tariff.zone))
    prices = version.prices_in_month(local.month)
    bounds = version.thresholds_for(account.persons)
    tiers = []
    for index, price in enumerate(prices):
        tiers.append(
            {
                "tier": index + 1,
                "from": bounds[index - 1] if index > 0 else Volume.zero(),
                "to": bounds[index] if index < len(bounds) else None,
                "price": price,
                "used_litres": used.get(index + 1, 0),
            }
        )
    return tariff.name, version.label, tiers


def readings_of(
    uow: UnitOfWork, meter: MeterRecord | None, binding: MeterBinding | None, days: int = 30
) -> list[dict[str, Any]]:
    """The meter's latest frozen readings (oldest first), with each day's use in litres."""
    if meter is None or binding is None:
        return []
    rows = uow.session.exec(
        select(MeterReading)
        .where(
            MeterReading.company_no == meter.company_no,
            MeterReading.meter_comm_no == meter.comm_no,
            MeterReading.data_type == FROZEN,
            col(MeterReading.acquisition_time) >= binding.bound_at,
        )
        .order_by(col(MeterReading.acquisition_time).desc())
        .limit(days + 1)
    ).all()
    rows = list(reversed(rows))
    out = []
    previous = None
    for row in rows:
        use = None
        if previous is not None and row.std_sum is not None and previous.std_sum is not None:
            use = row.std_sum - previous.std_sum
        out.append(
            {
                "at": row.acquisition_time,
                "std_sum": row.std_sum,
                "use": use,
                "remain": None if row.remain_money is None else Decimal(row.remain_money) / 1000,
                "state": row.meter_state,
            }
        )
        previous = row
    return out[-days:]


def command_rows(uow: UnitOfWork, account_id: int, limit: int = 20) -> list[dict[str, Any]]:
    commands = CommandStore(uow.session).of_account(account_id, limit)
    out = []
    for command in commands:
        view = top_up_progress(command)
        view["type"] = command.ctrl_type.rsplit(".", 1)[-1]
        view["why"] = command.reason
        view["attempts"] = command.attempts
        out.append(view)
    return out


def transfer_rows(
    uow: UnitOfWork,
    *,
    account_id: int | None = None,
    account_number: str = "",
    kinds: tuple[str, ...] = (),
    actor: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    seq: int | None = None,
) -> list[dict[str, Any]]:
    """Ledger lines with both sides' codes, newest first, filtered as asked."""
    debit: Any = aliased(LedgerAccount)
    credit: Any = aliased(LedgerAccount)
    query = (
        sa.select(
            TransferRow,
            debit.code.label("debit_code"),
            credit.code.label("credit_code"),
            sa.func.coalesce(debit.account_id, credit.account_id).label("account_id"),
        )
        .join(debit, debit.id == col(TransferRow.debit_account_id))
        .join(credit, credit.id == col(TransferRow.credit_account_id))
        .order_by(col(TransferRow.seq).desc())
        .limit(limit)
    )
    if account_number:
        wanted = (
            sa.select(col(Account.id))
            .where(col(Account.number) == account_number)
            .scalar_subquery()
        )
        query = query.where(sa.or_(debit.account_id == wanted, credit.account_id == wanted))
    if account_id is not None:
        query = query.where(sa.or_(debit.account_id == account_id, credit.account_id == account_id))
    if seq is not None:
        query = query.where(col(TransferRow.seq) == seq)
    if kinds:
        query = query.where(col(TransferRow.kind).in_(kinds))
    if actor:
        query = query.where(col(TransferRow.actor) == actor)
    if since is not None:
        query = query.where(col(TransferRow.effective_at) >= since)
    if until is not None:
        query = query.where(col(TransferRow.effective_at) < until)
    rows = uow.session.execute(query).all()
    wanted_ids = {r.account_id for r in rows if r.account_id}
    numbers: dict[int, str] = {
        int(i): str(n)
        for i, n in uow.session.execute(
            sa.select(col(Account.id), col(Account.number)).where(col(Account.id).in_(wanted_ids))
        ).all()
    }
    return [_transfer(r, numbers) for r in rows]


def _transfer(row: Any, numbers: dict[int, str]) -> dict[str, Any]:
    transfer: TransferRow = row[0]
    channel = ""
    if row.debit_code.startswith("cash:"):
        channel = row.debit_code.partition(":")[2]
    elif transfer.kind == "refund":
        channel = transfer.reason.partition(":")[0]
    return {
        "id": transfer.id,
        "seq": transfer.seq,
        "kind": transfer.kind,
        "status": transfer.status,
        "debit": row.debit_code,
        "credit": row.credit_code,
        "amount_fen": transfer.amount_fen,
        "reason": transfer.reason,
        "actor": transfer.actor,
        "at": transfer.effective_at,
        "reverses": transfer.reverses,
        "account_id": row.account_id,
        "account_number": numbers.get(row.account_id, ""),
        "channel": channel,
    }


def local_day(day: date, zone: str) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), ZoneInfo(zone))
    return start, datetime.combine(day + timedelta(days=1), time(), ZoneInfo(zone))


@dataclass
class DayEnd:
    day: date
    actor: str
    rows: list[dict[str, Any]]
    by_channel: dict[str, dict[str, int]]
    payments_fen: int
    refunds_fen: int
    count: int


def day_end(uow: UnitOfWork, day: date, actor: str, zone: str) -> DayEnd:
    """A clerk's payments and refunds of one local day, by channel, with totals (日结)."""
    start, end = local_day(day, zone)
    with uow:
        rows = transfer_rows(
            uow, kinds=("payment", "refund"), actor=actor, since=start, until=end, limit=10_000
        )
    rows.reverse()
    by_channel: dict[str, dict[str, int]] = defaultdict(
        lambda: {"payments": 0, "refunds": 0, "count": 0}
    )
    for row in rows:
        slot = by_channel[row["channel"] or "-"]
        slot["payments" if row["kind"] == "payment" else "refunds"] += row["amount_fen"]
        slot["count"] += 1
    payments = sum(r["amount_fen"] for r in rows if r["kind"] == "payment")
    refunds = sum(r["amount_fen"] for r in rows if r["kind"] == "refund")
    return DayEnd(day, actor, rows, dict(by_channel), payments, refunds, len(rows))


def price_text(price: Price) -> str:
    return f"{price.value:.2f}"
