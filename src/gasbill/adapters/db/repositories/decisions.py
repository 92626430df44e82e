"""Decisions' records: each account's decision state, and the warning log.

Implements the service's `DecisionStateRepository` and `WarningRepository`
ports (gasbill.service.ports), and loads what the decisions read for many
accounts at once (`SqlDecisionStates.facts`). The state row is created with an
insert-or-nothing, so two transactions deciding for a new account at once
both end up on the one row; warnings are claimed with `SKIP LOCKED` and
stamped with a conditional update, so a stamp is never lost nor doubled.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.id_lists import IdIn
from gasbill.adapters.db.repositories.ledger.store import SqlLedger
from gasbill.adapters.db.tables.accounts import Account, Customer, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.tables.decisions import BalanceWarning, DecisionState
from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import AccountCode, Balance
from gasbill.domain.money import Money, Price, Volume
from gasbill.service.ports import DecisionStateRecord, NewWarning, WarningNotice


class SqlDecisionStates:
    def __init__(self, session: Session) -> None:
        self.session = session

    def locked(self, account_id: int) -> DecisionState:
        query = (
            select(DecisionState)
            .where(DecisionState.account_id == account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = self.session.exec(query).first()
        if row is None:
            self.session.execute(self._insert_ignore().values(account_id=account_id))
            row = self.session.exec(query).one()
        return row

    def locked_many(self, account_ids: Sequence[int]) -> dict[int, DecisionState]:
        """`locked` for many accounts: their rows in ascending account order, missing ones made."""
        ids = sorted(set(account_ids))
        if not ids:
            return {}

        def query() -> dict[int, DecisionState]:
            rows = self.session.exec(
                select(DecisionState)
                .where(IdIn(col(DecisionState.account_id), ids))
                .order_by(col(DecisionState.account_id))
                .with_for_update()
                .execution_options(populate_existing=True)
            ).all()
            return {row.account_id: row for row in rows}

        found = query()
        missing = [i for i in ids if i not in found]
        if missing:
            self.session.execute(self._insert_ignore(), [{"account_id": i} for i in missing])
            found = query()
        return found

    def facts(self, account_ids: Sequence[int], *, window_days: int) -> dict[int, DecisionFacts]:
        """What the decisions read, for those of `account_ids` that are active, locked: the
        accounts (ascending id), then their states. A fixed number of statements for any
        number of accounts, in chunks of `CHUNK` (`load_facts`)."""
        return load_facts(self.session, account_ids, window_days=window_days)

    def recent_use(self, account_id: int, *, window_days: int) -> tuple[list[Volume], Price]:
        """Litres per frozen day (the last `window_days` billed, oldest first) and the
        highest tier's price on the last day charged (0 if none)."""
        days = self.session.execute(
            sa.select(col(ChargeDay.day), sa.func.sum(col(ChargeDay.litres)))
            .where(col(ChargeDay.account_id) == account_id)
            .group_by(col(ChargeDay.day))
            .order_by(col(ChargeDay.day).desc())
            .limit(window_days)
        ).all()
        daily = [Volume.of_litres(int(litres)) for _, litres in reversed(days)]
        lines = self.session.exec(
            select(ChargeDay.lines)
            .where(ChargeDay.account_id == account_id, ChargeDay.lines != "[]")
            .order_by(col(ChargeDay.day).desc(), col(ChargeDay.cycle_key).desc())
            .limit(1)
        ).first()
        price = Price(0)
        if lines:
            # [[version, tier, price_milli, litres, cost_micro], ...]: the highest tier reached
            top = max(json.loads(lines), key=lambda line: (int(line[1]), int(line[2])))
            price = Price.of_milli(int(top[2]))
        return daily, price

    def latest_remain(
        self, company_no: str, comm_no: str, *, since: datetime
    ) -> tuple[Money, datetime] | None:
        """The meter's latest reported balance at or after `since`, and when."""
        found = self.session.execute(
            sa.select(col(MeterReading.remain_money), col(MeterReading.acquisition_time))
            .where(
                col(MeterReading.company_no) == company_no,
                col(MeterReading.meter_comm_no) == comm_no,
                col(MeterReading.acquisition_time) >= since,
                col(MeterReading.remain_money).is_not(None),
            )
            .order_by(col(MeterReading.acquisition_time).desc())
            .limit(1)
        ).first()
        if found is None:
            return None
        thousandths, at = found
        return Money(Decimal(int(thousandths)).scaleb(-3)), at

    def save(self, state: DecisionStateRecord) -> None:
        self.session.add(state)
        self.session.flush()

    def _insert_ignore(self) -> sa.Insert:
        table = DecisionState.__table__  # type: ignore[attr-defined]
        if self.session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing(index_elements=["account_id"])
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=["account_id"])


class SqlWarnings:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, warning: NewWarning) -> None:
        self.session.add(
            BalanceWarning(
                account_id=warning.account_id,
                level=warning.level,
                reason=warning.reason,
                balance_fen=warning.balance_fen,
                balance_source=warning.balance_source,
                days_left=warning.days_left,
                message=warning.message[:500],
                at=warning.at,
                next_attempt_at=warning.at,
            )
        )

    def claim_due(self, *, now: datetime, batch: int, lease_until: datetime) -> list[WarningNotice]:
        rows = self.session.exec(
            select(BalanceWarning)
            .where(
                col(BalanceWarning.delivered_at).is_(None),
                col(BalanceWarning.next_attempt_at).is_not(None),
                col(BalanceWarning.next_attempt_at) <= now,
            )
            .order_by(col(BalanceWarning.next_attempt_at), col(BalanceWarning.id))
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        people = {
            account.id: (account, customer)
            for account, customer in self.session.exec(
                select(Account, Customer)
                .join(Customer, col(Customer.id) == col(Account.customer_id))
                .where(col(Account.id).in_({row.account_id for row in rows}))
            ).all()
        }
        notices = []
        for row in rows:
            assert row.id is not None
            row.attempts += 1
            row.next_attempt_at = lease_until
            self.session.add(row)
            account, customer = people[row.account_id]
            notices.append(
                WarningNotice(
                    id=row.id,
                    account_id=row.account_id,
                    account_number=account.number,
                    customer_name=customer.name,
                    customer_phone=customer.phone,
                    level=row.level,
                    reason=row.reason,
                    balance_fen=row.balance_fen,
                    balance_source=row.balance_source,
                    days_left=row.days_left,
                    message=row.message,
                    at=row.at,
                    attempt=row.attempts,
                )
            )
        self.session.flush()
        return notices

    def stamp_delivered(self, warning_id: int, *, at: datetime) -> bool:
        values = {"delivered_at": at, "next_attempt_at": None, "given_up_at": None}
        return self._update(warning_id, values, attempts=None)

    def stamp_failed(
        self, warning_id: int, *, attempt: int, error: str, at: datetime, retry_at: datetime | None
    ) -> bool:
        values: dict[str, Any] = {"last_error": error[:1000], "next_attempt_at": retry_at}
        if retry_at is None:
            values["given_up_at"] = at
        return self._update(warning_id, values, attempts=attempt)

    def _update(self, warning_id: int, values: dict[str, Any], *, attempts: int | None) -> bool:
        table = BalanceWarning.__table__  # type: ignore[attr-defined]
        where = [table.c.id == warning_id, table.c.delivered_at.is_(None)]
        if attempts is not None:
            where.append(table.c.attempts == attempts)
        result = self.session.execute(sa.update(table).where(*where).values(**values))
        return bool(getattr(result, "rowcount", 0))


# -- what the decisions read, for many accounts at once -------------------------------
# Deciding one account read its account, decision state, meter, balances, latest
# reported balance and recent use in about ten statements; after a billing batch that
# was ten statements per account, most of the decisions' time. Now a fixed number of
# statements per chunk, each with its ids as one parameter (`IdIn`: the statement's
# text is the same for any ids, so it is compiled once and psycopg neither renders
# nor parses a placeholder per id), and the account and its meter as plain rows: the
# decisions only read them, and an ORM object cost more to build than its query.
CHUNK = 500  # accounts per statement

ACCOUNT = Account.__table__  # type: ignore[attr-defined]
METER = Meter.__table__  # type: ignore[attr-defined]
BINDING = MeterBinding.__table__  # type: ignore[attr-defined]
CHARGE_DAY = ChargeDay.__table__  # type: ignore[attr-defined]
READING = MeterReading.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class DecidedAccountRow:
    """An account as its decision reads it (never changed by the decision)."""

    id: int | None
    number: str
    customer_id: int
    company_no: str
    billing_mode: str
    tariff_id: str
    persons: int
    opened_on: date
    status: str
    warning_fen: int
    cutoff_fen: int
    reopen_fen: int


ACCOUNT_COLUMNS = tuple(DecidedAccountRow.__slots__)


@dataclass(slots=True)
class BoundMeter:
    """The meter bound to an account, as commands address it."""

    id: int | None
    company_no: str
    comm_no: str


@dataclass(slots=True)
class DecisionFacts:
    """One active account as its decision sees it, locked for the caller's transaction."""

    account: DecidedAccountRow
    row: DecisionState
    meter: BoundMeter | None
    balances: dict[AccountCode, Balance]
    # the meter's latest reported balance since it was bound to the account, and when
    remain: tuple[Money, datetime] | None
    daily: list[Volume]  # litres per frozen day, the last `window_days` billed, oldest first
    price: Price  # the highest tier's price on the last day with a charge


def load_facts(
    session: Session, account_ids: Sequence[int], *, window_days: int
) -> dict[int, DecisionFacts]:
    """The facts of those of `account_ids` that are active (the others are left out)."""
    ids = sorted(set(account_ids))
    found: dict[int, DecisionFacts] = {}
    for start in range(0, len(ids), CHUNK):
        found.update(_load_chunk(session, ids[start : start + CHUNK], window_days))
    return found


def _load_chunk(session: Session, ids: list[int], window_days: int) -> dict[int, DecisionFacts]:
    accounts = session.execute(
        sa.select(*(ACCOUNT.c[name] for name in ACCOUNT_COLUMNS))
        .where(IdIn(ACCOUNT.c.id, ids))
        .order_by(ACCOUNT.c.id)
        .with_for_update()
    ).all()
    active = {int(a.id): DecidedAccountRow(*a) for a in accounts if a.status == "active"}
    if not active:
        return {}
    active_ids = sorted(active)
    rows = SqlDecisionStates(session).locked_many(active_ids)
    bound = {
        int(account_id): BoundMeter(int(meter_id), company_no, comm_no)
        for account_id, meter_id, company_no, comm_no in session.execute(
            sa.select(BINDING.c.account_id, METER.c.id, METER.c.company_no, METER.c.comm_no)
            .join(METER, METER.c.id == BINDING.c.meter_id)
            .where(IdIn(BINDING.c.account_id, active_ids), BINDING.c.unbound_at.is_(None))
        ).all()
    }
    balances = SqlLedger(session).balances_of_accounts(active_ids)
    remains = _remains(
        session, [i for i in active_ids if active[i].billing_mode == BillingMode.METER]
    )
    daily, prices = _recent_use(session, active_ids, window_days)
    return {
        i: DecisionFacts(
            account=active[i],
            row=rows[i],
            meter=bound.get(i),
            balances=balances.get(i, {}),
            remain=remains.get(i),
            daily=daily.get(i, []),
            price=prices.get(i, Price(0)),
        )
        for i in active_ids
    }


def _remains(session: Session, ids: list[int]) -> dict[int, tuple[Money, datetime]]:
    """Each account's meter's latest reported balance since its binding (one statement)."""
    if not ids:
        return {}

    def latest(column: Any) -> sa.ScalarSelect[Any]:
        return (
            sa.select(column)
            .where(
                READING.c.company_no == METER.c.company_no,
                READING.c.meter_comm_no == METER.c.comm_no,
                READING.c.acquisition_time >= BINDING.c.bound_at,
                READING.c.remain_money.is_not(None),
            )
            .order_by(READING.c.acquisition_time.desc(), READING.c.data_type)
            .limit(1)
            .correlate(METER, BINDING)
            .scalar_subquery()
        )

    remain = latest(READING.c.remain_money)
    at = latest(READING.c.acquisition_time)
    found: dict[int, tuple[Money, datetime]] = {}
    for account_id, thousandths, when in session.execute(
        sa.select(BINDING.c.account_id, remain, at)
        .join(METER, METER.c.id == BINDING.c.meter_id)
        .where(IdIn(BINDING.c.account_id, ids), BINDING.c.unbound_at.is_(None))
    ).all():
        if thousandths is not None and when is not None:
            found[int(account_id)] = (Money(Decimal(int(thousandths)).scaleb(-3)), _instant(when))
    return found


def _instant(value: datetime | str) -> datetime:
    """A scalar subquery's datetime: SQLite hands it back as the stored text."""
    if isinstance(value, datetime):
        return value
    return READING.c.acquisition_time.type.process_result_value(  # type: ignore[no-any-return]
        value, None
    )


def _recent_use(
    session: Session, ids: list[int], window_days: int
) -> tuple[dict[int, list[Volume]], dict[int, Price]]:
    """Each account's litres per day over its last `window_days` billed days, and last price.

    Two statements of fixed text: the last priced day's lines per account, and each
    account's daily sums numbered back from its last day."""
    accounts = sa.select(ACCOUNT.c.id).where(IdIn(ACCOUNT.c.id, ids)).subquery("given")
    lines = (
        sa.select(CHARGE_DAY.c.lines)
        .where(CHARGE_DAY.c.account_id == accounts.c.id, CHARGE_DAY.c.lines != "[]")
        .order_by(CHARGE_DAY.c.day.desc(), CHARGE_DAY.c.cycle_key.desc())
        .limit(1)
        .correlate(accounts)
        .scalar_subquery()
    )
    prices: dict[int, Price] = {}
    for account_id, last_lines in session.execute(sa.select(accounts.c.id, lines)).all():
        if last_lines:
            # [[version, tier, price_milli, litres, cost_micro], ...]: the highest tier reached
            top = max(json.loads(last_lines), key=lambda line: (int(line[1]), int(line[2])))
            prices[int(account_id)] = Price.of_milli(int(top[2]))
    sums = (
        sa.select(
            CHARGE_DAY.c.account_id,
            CHARGE_DAY.c.day,
            sa.func.sum(CHARGE_DAY.c.litres).label("litres"),
            sa.func.row_number()
            .over(partition_by=CHARGE_DAY.c.account_id, order_by=CHARGE_DAY.c.day.desc())
            .label("back"),
        )
        .where(IdIn(CHARGE_DAY.c.account_id, ids))
        .group_by(CHARGE_DAY.c.account_id, CHARGE_DAY.c.day)
        .subquery("sums")
    )
    daily: dict[int, list[Volume]] = defaultdict(list)
    for account_id, litres in session.execute(
        sa.select(sums.c.account_id, sums.c.litres)
        .where(sums.c.back <= window_days)
        .order_by(sums.c.account_id, sums.c.day)
    ).all():
        daily[int(account_id)].append(Volume.of_litres(int(litres)))
    return dict(daily), prices
