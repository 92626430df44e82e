"""Billing's reads and writes, in batches: one query per kind of row, not per account."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlmodel import Session, col, select

from gasbill.adapters.db.bulk import array_param, copy_rows
from gasbill.adapters.db.repositories.campaigns import CampaignStore
from gasbill.adapters.db.tables.accounts import Account, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.tables.campaigns import TrueUpMark
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.tables.readings import BillingInbox, MeterReading
from gasbill.adapters.db.types import UTCDateTime
from gasbill.domain.commands import CtrlType
from gasbill.domain.meters import RegisterReading
from gasbill.domain.outbox import CommandStatus
from gasbill.service.billing_ports import Readings as Readings

FROZEN = 1
CHARGE_DAY: sa.Table = ChargeDay.__table__  # type: ignore[attr-defined]
DAY_KEY = ("account_id", "cycle_key", "day")
DAY_STAGING = "incoming_charge_day"
CREATE_DAY_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {DAY_STAGING} (LIKE charge_day) ON COMMIT DELETE ROWS"
)


# per account, its latest checkpoint before a time: LATERAL, so each is one index step
CHECKPOINTS_BEFORE = """
SELECT c.* FROM unnest(:ids, :before) AS given(account_id, before)
CROSS JOIN LATERAL (
    SELECT * FROM charge_day
    WHERE charge_day.account_id = given.account_id AND charge_day.state_at IS NOT NULL
      AND charge_day.state_at < given.before
    ORDER BY charge_day.state_at DESC LIMIT 1
) AS c
"""


@lru_cache(maxsize=8)
def _upsert_staged_days(columns: tuple[str, ...]) -> str:
    names = ", ".join(columns)
    updated = ", ".join(f"{n} = excluded.{n}" for n in columns if n not in DAY_KEY)
    return f"""
WITH staged AS (DELETE FROM {DAY_STAGING} RETURNING {names})
INSERT INTO charge_day ({names}) SELECT {names} FROM staged
ON CONFLICT ({", ".join(DAY_KEY)}) DO UPDATE SET {updated}
"""


class BillingStore:
    """Implements `service.billing_ports.BillingRepository`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def accounts(self, account_ids: Sequence[int], *, lock: bool = False) -> list[Account]:
        query = select(Account).where(col(Account.id).in_(account_ids)).order_by(col(Account.id))
        if lock:
            query = query.with_for_update()
        return list(self.session.exec(query).all())

    def bindings(self, account_ids: Sequence[int]) -> dict[int, list[tuple[MeterBinding, Meter]]]:
        rows = self.session.exec(
            select(MeterBinding, Meter)
            .join(Meter, col(Meter.id) == col(MeterBinding.meter_id))
            .where(col(MeterBinding.account_id).in_(account_ids))
            .order_by(col(MeterBinding.account_id), col(MeterBinding.bound_at))
        ).all()
        result: dict[int, list[tuple[MeterBinding, Meter]]] = defaultdict(list)
        for binding, meter in rows:
            result[binding.account_id].append((binding, meter))
        return result

    def checkpoints(self, since: dict[int, datetime | None]) -> dict[int, ChargeDay]:
        """Per account, the latest checkpoint strictly before its `since` (any, if None)."""
        found: dict[int, ChargeDay] = {}
        unbounded = [a for a, s in since.items() if s is None]
        if unbounded:
            found.update(self._latest_checkpoints(unbounded, None))
        bounded = {a: s for a, s in since.items() if s is not None}
        if bounded and self._dialect == "postgresql":
            found.update(self._checkpoints_before(bounded))
            return found
        # elsewhere one query per distinct `since`: a night's readings share their time
        by_before: dict[datetime, list[int]] = defaultdict(list)
        for account_id, before in bounded.items():
            by_before[before].append(account_id)
        for before, ids in by_before.items():
            found.update(self._latest_checkpoints(ids, before))
        return found

    def _latest_checkpoints(
        self, account_ids: list[int], before: datetime | None
    ) -> dict[int, ChargeDay]:
        """Per account, its checkpoint with the latest `state_at` (before `before`, if given)."""
        found: dict[int, ChargeDay] = {}
        for start in range(0, len(account_ids), 1000):
            wanted: list[sa.ColumnElement[bool]] = [
                col(ChargeDay.account_id).in_(account_ids[start : start + 1000]),
                col(ChargeDay.state_at).isnot(None),
            ]
            if before is not None:
                wanted.append(col(ChargeDay.state_at) < before)
            latest = (
                select(ChargeDay.account_id, sa.func.max(ChargeDay.state_at).label("at"))
                .where(*wanted)
                .group_by(col(ChargeDay.account_id))
                .subquery()
            )
            for row in self.session.exec(
                select(ChargeDay)
                .join(
                    latest,
                    sa.and_(
                        col(ChargeDay.account_id) == latest.c.account_id,
                        col(ChargeDay.state_at) == latest.c.at,
                    ),
                )
                .order_by(col(ChargeDay.account_id), col(ChargeDay.day), col(ChargeDay.cycle_key))
            ).all():
                found[row.account_id] = row
        return found

    def _checkpoints_before(self, before: dict[int, datetime]) -> dict[int, ChargeDay]:
        """One query for the batch, an index probe per account (a query each cost a round
        trip per account: the inbox bills a night's readings a thousand accounts a batch)."""
        ids = list(before)
        rows = self.session.execute(
            select(ChargeDay).from_statement(
                sa.text(CHECKPOINTS_BEFORE).bindparams(
                    array_param("ids", ids, sa.BigInteger()),
                    array_param("before", [before[i] for i in ids], UTCDateTime()),
                )
            )
        ).scalars()
        return {row.account_id: row for row in rows}

    def posted_days(self, after: dict[int, date | None]) -> dict[int, dict[tuple[str, date], int]]:
        """Per account, what each (cycle, day) after the given day has been charged."""
        result: dict[int, dict[tuple[str, date], int]] = defaultdict(dict)
        if not after:
            return result
        floor = min((d for d in after.values() if d is not None), default=None)
        query = sa.select(
            col(ChargeDay.account_id),
            col(ChargeDay.cycle_key),
            col(ChargeDay.day),
            col(ChargeDay.posted_fen),
        ).where(col(ChargeDay.account_id).in_(list(after)))
        if floor is not None and all(d is not None for d in after.values()):
            query = query.where(col(ChargeDay.day) > floor)
        for account_id, cycle_key, day, posted in self.session.execute(query).all():
            limit = after[account_id]
            if limit is None or day > limit:
                result[account_id][(cycle_key, day)] = int(posted)
        return result

    def frozen_readings(
        self,
        meters: Iterable[tuple[str, str]],
        after: datetime,
        *,
        with_real_time: Iterable[tuple[str, str]] = (),
    ) -> Readings:
        """Frozen readings of the meters after `after`: (time, std_sum, work_sum) in litres.

        For the meters in `with_real_time` real-time readings come too: a
        register at the instant a meter woke and took a command places that
        command's effect exactly.
        """
        real_time = set(with_real_time)
        keys = sorted(set(meters))
        result: Readings = defaultdict(list)
        if not keys:
            return result
        by_company: dict[str, list[str]] = defaultdict(list)
        for company_no, comm_no in keys:
            by_company[company_no].append(comm_no)
        types = (0, FROZEN) if real_time else (FROZEN,)
        for company_no, comm_nos in by_company.items():
            for start in range(0, len(comm_nos), 1000):
                # one company and a list of meters: the index on the reading key serves it
                query = (
                    sa.select(
                        col(MeterReading.meter_comm_no),
                        col(MeterReading.acquisition_time),
                        col(MeterReading.std_sum),
                        col(MeterReading.work_sum),
                        col(MeterReading.data_type),
                    )
                    .where(
                        col(MeterReading.company_no) == company_no,
                        col(MeterReading.meter_comm_no).in_(comm_nos[start : start + 1000]),
                        col(MeterReading.data_type).in_(types),
                        col(MeterReading.acquisition_time) > after,
                    )
                    .order_by(col(MeterReading.acquisition_time), col(MeterReading.data_type))
                )
                for comm_no, at, std, work, data_type in self.session.execute(query).all():
                    key = (company_no, comm_no)
                    if data_type == FROZEN or key in real_time:
                        result[key].append(RegisterReading(at, std, work, data_type != FROZEN))
        return result

    def meter_openings(self, account_ids: Sequence[int]) -> dict[int, datetime | None]:
        """Accounts opened on their meter by `openaccount`: when it was confirmed (None: not yet).

        An account absent here was opened without one (its meter was already
        open, say) and is billed from its binding.
        """
        if not account_ids:
            return {}
        rows = self.session.execute(
            sa.select(col(Command.account_id), col(Command.status), col(Command.finished_at))
            .where(
                col(Command.account_id).in_(list(account_ids)),
                col(Command.ctrl_type) == CtrlType.OPEN_ACCOUNT,
            )
            .order_by(col(Command.id))
        ).all()
        found: dict[int, datetime | None] = {}
        for account_id, status, finished in rows:
            if account_id is None:
                continue
            done = status == CommandStatus.DONE and finished is not None
            if done or int(account_id) not in found:
                found[int(account_id)] = finished if done else found.get(int(account_id))
        return found

    def confirmations(self, account_ids: Sequence[int]) -> dict[int, dict[str, datetime]]:
        """Per account, each price change its meter confirmed, and when (setprice done)."""
        return CampaignStore(self.session).confirmations(account_ids)

    def save_days(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or replace charge days: on PostgreSQL by binary COPY and one upsert."""
        if not rows:
            return
        if self._dialect == "postgresql":
            self._save_days_copied(rows)
            return
        statement = sqlite.insert(CHARGE_DAY)
        updated = {name: statement.excluded[name] for name in rows[0] if name not in DAY_KEY}
        upsert = statement.on_conflict_do_update(index_elements=list(DAY_KEY), set_=updated)
        self.session.execute(upsert, rows)

    def _save_days_copied(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """COPY into a session-temporary table, then one upsert that empties it as it reads
        (so a second save in the same transaction starts empty). Through JSON the server
        spent twice as long per row, parsing and planning (bench/billing.py)."""
        columns = tuple(rows[0])
        connection = self.session.connection().connection.driver_connection
        driver = cast("psycopg.Connection[tuple[Any, ...]]", connection)
        with driver.cursor() as cursor:
            cursor.execute(CREATE_DAY_STAGING)
            copy_rows(cursor, DAY_STAGING, CHARGE_DAY, columns, map(itemgetter(*columns), rows))
            cursor.execute(_upsert_staged_days(columns))

    def note_billed(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """What billing rated, for the accounts with a true-up mark (others: nothing).

        Each row: `account_id`, `first_day` (the first day rated), `last_at` (the last
        reading rated), `since` (the earliest changed reading, or None) and `changed` (a
        day's charge moved). Where anything changed — `changed`, a last reading other than
        the mark's `billed_through`, or a reading at or before it — `rebilled_from` goes
        back to `first_day` if that is earlier, and `billed_through` to `last_at`.
        """
        if not rows:
            return
        mark = TrueUpMark.__table__  # type: ignore[attr-defined]
        first = sa.bindparam("b_first", type_=sa.Date)
        last = sa.bindparam("b_last", type_=UTCDateTime(timezone=True))
        since = sa.bindparam("b_since", type_=UTCDateTime(timezone=True))
        statement = (
            sa.update(mark)
            .where(mark.c.account_id == sa.bindparam("b_account"))
            .where(
                sa.or_(
                    sa.bindparam("b_changed", type_=sa.Boolean),
                    mark.c.billed_through.is_(None),
                    mark.c.billed_through != last,
                    mark.c.billed_through >= since,
                )
            )
            .values(
                rebilled_from=sa.case(
                    (
                        sa.or_(mark.c.rebilled_from.is_(None), mark.c.rebilled_from > first),
                        first,
                    ),
                    else_=mark.c.rebilled_from,
                ),
                billed_through=last,
            )
        )
        self.session.execute(
            statement,
            [
                {
                    "b_account": row["account_id"],
                    "b_first": row["first_day"],
                    "b_last": row["last_at"],
                    "b_since": row["since"],
                    "b_changed": bool(row["changed"]),
                }
                for row in rows
            ],
        )

    def unbilled_meters(self, meters: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of these meters, those with a stored frozen reading not billed yet (inbox)."""
        wanted = set(meters)
        if not wanted:
            return set()
        query = (
            sa.select(col(BillingInbox.company_no), col(BillingInbox.meter_comm_no))
            .where(col(BillingInbox.handled_at).is_(None))
            .distinct()
        )
        return {(c, m) for c, m in self.session.execute(query).all() if (c, m) in wanted}

    def latest_readings(
        self, meters: Iterable[tuple[str, str]], until: datetime
    ) -> dict[tuple[str, str], datetime]:
        """Of these meters, the time of each one's latest frozen or real-time reading up to
        `until` (what billing rates a meter-mode account with), one query per company."""
        by_company: dict[str, list[str]] = defaultdict(list)
        for company_no, comm_no in sorted(set(meters)):
            by_company[company_no].append(comm_no)
        found: dict[tuple[str, str], datetime] = {}
        for company_no, comm_nos in by_company.items():
            for start in range(0, len(comm_nos), 1000):
                query = (
                    sa.select(
                        col(MeterReading.meter_comm_no),
                        sa.func.max(col(MeterReading.acquisition_time)),
                    )
                    .where(
                        col(MeterReading.company_no) == company_no,
                        col(MeterReading.meter_comm_no).in_(comm_nos[start : start + 1000]),
                        col(MeterReading.data_type).in_((0, FROZEN)),
                        col(MeterReading.acquisition_time) <= until,
                    )
                    .group_by(col(MeterReading.meter_comm_no))
                )
                for comm_no, at in self.session.execute(query).all():
                    if at is not None:
                        found[(company_no, comm_no)] = _instant(at)
        return found

    def charge_days(self, account_id: int) -> Sequence[ChargeDay]:
        return self.session.exec(
            select(ChargeDay)
            .where(ChargeDay.account_id == account_id)
            .order_by(col(ChargeDay.day), col(ChargeDay.cycle_key))
        ).all()


def _instant(value: datetime | str) -> datetime:
    """An aggregate's datetime, aware (were SQLite to hand back the stored naive-UTC text)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
