"""The outbox's rows: commands, each meter's confirmed prepay state, unmatched reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col, select

from gasbill.adapters.db.bulk import array_param, unnested
from gasbill.adapters.db.claims import shared_queues
from gasbill.adapters.db.id_lists import IdIn
from gasbill.adapters.db.repositories.command_queue import (
    ANYTHING_TO_SEND,
    CLAIM_DUE_METERS,
    DUE_METERS,
)
from gasbill.adapters.db.repositories.command_states import PrepayAndReports
from gasbill.adapters.db.tables.commands import Command, CommandReport
from gasbill.domain.commands import Command as Intent
from gasbill.domain.outbox import OPEN, CommandStatus
from gasbill.service.ports import (
    CommandRecord,
    NewCommand,
)

_COMMAND = cast(sa.Table, Command.__table__)  # type: ignore[attr-defined]
_REPORT = cast(sa.Table, CommandReport.__table__)  # type: ignore[attr-defined]
_OPEN = sorted(str(s) for s in OPEN)


@dataclass(frozen=True, slots=True)
class OpenRow:
    """A queued or in-flight command as a claim reads it (`dispatch_ports.OpenCommand`)."""

    id: int
    meter_id: int
    define_no: str
    meter_comm_no: str
    ctrl_type: str
    status: str
    intent: Intent | None
    next_attempt_at: datetime
    timeout_at: datetime
    created_at: datetime


_OPEN_COLUMNS = [_COMMAND.c[name] for name in OpenRow.__dataclass_fields__]


def _record_sent() -> sa.Select[tuple[int, bool]]:
    """`record_sent` on PostgreSQL, built once (a batch's replies are recorded 20 times a
    claim: building and keying the statement each time cost more than running it)."""
    ids = sa.bindparam("sent_ids", type_=postgresql.ARRAY(sa.BigInteger()))
    locked = (
        sa.select(_COMMAND.c.id)
        .where(
            _COMMAND.c.id.in_(sa.select(sa.func.unnest(ids)).scalar_subquery()),
            _COMMAND.c.status == str(CommandStatus.SENDING),
        )
        .order_by(_COMMAND.c.id)
        .with_for_update()
        .cte("locked")
    )
    pairs = sa.select(
        sa.func.unnest(ids).label("id"),
        sa.func.unnest(
            sa.bindparam("sent_ctrl_ids", type_=postgresql.ARRAY(sa.BigInteger()))
        ).label("ctrl_id"),
    ).subquery("sent")
    marked = (
        sa.update(_COMMAND)
        .where(_COMMAND.c.id == pairs.c.id, _COMMAND.c.id == locked.c.id)
        .values(
            ctrl_id=pairs.c.ctrl_id,
            status=str(CommandStatus.SENT),
            sent_at=sa.bindparam("sent_at", type_=_COMMAND.c.sent_at.type),
        )
        .returning(_COMMAND.c.id, _COMMAND.c.company_no, _COMMAND.c.ctrl_id)
        .cte("marked")
    )
    waiting = sa.exists().where(
        _REPORT.c.company_no == marked.c.company_no,
        _REPORT.c.ctrl_id == marked.c.ctrl_id,
        _REPORT.c.matched_at.is_(None),
    )
    return sa.select(marked.c.id, waiting)


RECORD_SENT = _record_sent()


class CommandStore(PrepayAndReports):
    """The service's `CommandRepository` over SQLModel (and more, for the dispatcher)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, new: NewCommand) -> Command:
        command = _row(new)
        self.session.add(command)
        self.session.flush()
        return command

    def add_many(self, news: Sequence[NewCommand]) -> list[int]:
        """Several queued commands inserted in one statement (batched), their ids in order;
        no objects built (a campaign inserts thousands)."""
        if not news:
            return []
        table = cast(sa.Table, Command.__table__)  # type: ignore[attr-defined]
        rows = [
            {
                **{name: getattr(new, name) for name in NEW_COLUMNS},
                "outcome": "",
                "feedback": "",
                "attempts": 0,
                "last_error": "",
            }
            for new in news
        ]
        dialect = self.session.get_bind().dialect
        if len(rows) > 1 and dialect.name == "postgresql":
            # one statement over one JSON parameter, ids matched back by define_no (unique):
            # psycopg parses a multi-row VALUES statement again on every execution, which
            # cost more than the rest of enrolment (bench/campaign.py)
            as_text = table.c.intent.type.bind_processor(dialect)
            for row in rows:
                row["intent"] = as_text(row["intent"]) if as_text else row["intent"]
            names = list(rows[0])
            query = (
                sa.insert(table)
                .from_select(names, unnested(table, rows))
                .returning(table.c.define_no, table.c.id)
            )
            ids: dict[str, int] = dict(self.session.execute(query).all())
            return [int(ids[row["define_no"]]) for row in rows]
        query = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in self.session.execute(query, rows).scalars()]

    def get(self, command_id: int, *, lock: bool = False) -> Command | None:
        query = select(Command).where(Command.id == command_id)
        if lock:
            query = query.with_for_update()
        return self.session.exec(query).first()

    def get_many(self, command_ids: Sequence[int], *, lock: bool = False) -> dict[int, Command]:
        """These commands by id (locked in id order, with `lock`): a batch's replies."""
        if not command_ids:
            return {}
        query = select(Command).where(IdIn(col(Command.id), command_ids))
        query = query.order_by(col(Command.id))
        if lock:
            query = query.with_for_update()
        return {c.id or 0: c for c in self.session.exec(query).all()}

    def by_ctrl_id(self, company_no: str, ctrl_id: int, *, lock: bool = True) -> Command | None:
        query = select(Command).where(Command.company_no == company_no, Command.ctrl_id == ctrl_id)
        if lock:
            query = query.with_for_update()
        return self.session.exec(query).first()

    def account_of_ctrl_id(self, company_no: str, ctrl_id: int) -> int | None:
        query = sa.select(col(Command.account_id)).where(
            col(Command.company_no) == company_no, col(Command.ctrl_id) == ctrl_id
        )
        return self.session.execute(query).scalar()

    def lock_if_free(self, command_id: int) -> Command | None:
        """The command, locked, unless another transaction holds it (SKIP LOCKED): then it
        is on its way (the dispatcher, a result) and None, never waited for."""
        return self.session.exec(
            select(Command)
            .where(Command.id == command_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).first()

    def waiting_unsent(self, meter_id: int, ctrl_type: str) -> Command | None:
        """The meter's oldest queued command of this type not handed over yet, locked
        (skipped if another transaction holds it)."""
        return self.session.exec(
            select(Command)
            .where(
                Command.meter_id == meter_id,
                Command.ctrl_type == ctrl_type,
                Command.status == CommandStatus.QUEUED,
                col(Command.ctrl_id).is_(None),
            )
            .order_by(col(Command.id))
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).first()

    def by_hold(self, hold_id: str) -> Command | None:
        return self.session.exec(select(Command).where(Command.hold_id == hold_id)).first()

    def save(self, command: CommandRecord) -> None:
        self.session.add(command)
        self.session.flush()

    def record_sent(self, ctrl_ids: Mapping[int, int], now: datetime) -> dict[int, bool]:
        """Of these commands (a batch's accepted replies), those still `sending` locked in id
        order and marked handed over: their platform ctrl_id, sent `now`. For each, whether
        a report for its ctrl_id came first and waits (`unmatched_of`).

        PostgreSQL: one statement, whatever the batch (the lock, the update and the
        look-up for reports were three, each costing more Python than the server's work).
        """
        if not ctrl_ids:
            return {}
        ids = sorted(ctrl_ids)
        if self.session.get_bind().dialect.name != "postgresql":
            sent = {"status": str(CommandStatus.SENT), "sent_at": now}
            rows = self.session.execute(
                sa.select(_COMMAND.c.id, _COMMAND.c.company_no)
                .where(IdIn(_COMMAND.c.id, ids), _COMMAND.c.status == str(CommandStatus.SENDING))
                .order_by(_COMMAND.c.id)
                .with_for_update()
            ).all()
            if not rows:
                return {}
            self.session.execute(
                sa.update(_COMMAND)
                .where(_COMMAND.c.id == sa.bindparam("sent_id"))
                .values(ctrl_id=sa.bindparam("sent_ctrl_id"), **sent),
                [{"sent_id": i, "sent_ctrl_id": ctrl_ids[i]} for i, _ in rows],
            )
            kept = self.unmatched_of([(company, ctrl_ids[i]) for i, company in rows])
            return {int(i): (company, ctrl_ids[i]) in kept for i, company in rows}
        found = self.session.execute(
            RECORD_SENT,
            {"sent_ids": ids, "sent_ctrl_ids": [ctrl_ids[i] for i in ids], "sent_at": now},
        )
        return {int(i): bool(w) for i, w in found.all()}

    def mark_sending(self, command_ids: Sequence[int], now: datetime) -> None:
        """Claimed commands (locked) marked `sending`: one UPDATE, one more attempt each."""
        if not command_ids:
            return
        self.session.execute(
            sa.update(_COMMAND)
            .where(IdIn(_COMMAND.c.id, command_ids))
            .values(
                status=str(CommandStatus.SENDING),
                claimed_at=now,
                attempts=_COMMAND.c.attempts + 1,
            )
        )

    def save_all(self, commands: Sequence[CommandRecord]) -> None:
        """Several commands saved in one flush (the updates go in batches, not one by one)."""
        self.session.add_all(commands)
        self.session.flush()

    def due_meters(self, now: datetime, limit: int) -> list[int]:
        """Meters with a queued command whose time has come and that may go, oldest first."""
        found = self.session.execute(
            DUE_METERS, {"due_now": now, "due_rows": limit * 4, "due_meters": limit}
        )
        return [int(meter_id) for meter_id, _ in found.all()]

    def claim_due_meters(self, now: datetime, limit: int) -> list[int]:
        """`due_meters`, each claimed for this transaction: other dispatchers skip them.

        The queue is walked in order (at most 8 times `limit` rows) and each
        meter claimed as it comes until `limit` rows are held: the LIMIT
        outside stops the claiming, so no meter is held that is not returned.
        A meter with several commands due comes once per command; it is
        returned once, so fewer than `limit` meters may come back.
        """
        if not shared_queues(self.session):
            return self.due_meters(now, limit)
        # in the queue's order, off its index, stopping when the claim is full: statistics
        # from before a campaign (few queued) had the planner read every queued command
        # and sort them instead, probing each one's meter (300 ms a claim at 100,000)
        self.session.execute(sa.text("SET LOCAL enable_sort = off"))
        found = self.session.execute(
            CLAIM_DUE_METERS, {"due_now": now, "due_rows": limit * 8, "claimed": limit}
        ).all()
        self.session.execute(sa.text("SET LOCAL enable_sort = on"))
        return list(dict.fromkeys(int(meter_id) for (meter_id,) in found))

    def anything_to_send(self, now: datetime, stale_before: datetime) -> bool:
        """Whether a dispatcher has work: a command that may go now, or one handed over
        before `stale_before` whose reply never came. One read: an idle run costs this."""
        found = self.session.execute(
            ANYTHING_TO_SEND, {"due_now": now, "stale_before": stale_before}
        )
        return bool(found.scalar())

    def claim_stale(
        self, status: str, before: datetime, limit: int, now: datetime
    ) -> list[Command]:
        """`stale` commands, claimed: stamped `now` so that no other worker asks after them
        until another interval has passed (the stamp is when we last asked)."""
        stamp = col(Command.claimed_at) if status == CommandStatus.SENDING else col(Command.sent_at)
        query = (
            select(Command)
            .where(col(Command.status) == status, stamp < before)
            .order_by(stamp)
            .limit(limit)
        )
        if shared_queues(self.session):
            query = query.with_for_update(skip_locked=True)
        found = list(self.session.exec(query).all())
        for command in found:
            if status == CommandStatus.SENDING:
                command.claimed_at = now
            else:
                command.sent_at = now
            self.session.add(command)
        self.session.flush()
        return found

    def count_open(self) -> int:
        """Commands queued, being sent, or sent and not ended yet: work waiting on meters."""
        query = sa.select(sa.func.count()).where(col(Command.status).in_(list(OPEN)))
        return int(self.session.execute(query).scalar_one())

    def open_of_meter(self, meter_id: int) -> Sequence[Command]:
        """A meter's queued and in-flight commands, locked (one dispatcher at a time per meter)."""
        return self.session.exec(
            select(Command)
            .where(Command.meter_id == meter_id, col(Command.status).in_(list(OPEN)))
            .order_by(col(Command.id))
            .with_for_update()
        ).all()

    def open_of_meters(self, meter_ids: Sequence[int]) -> dict[int, list[OpenRow]]:
        """`open_of_meter` for several meters in one query, locked in (meter, id) order: the
        columns a claim reads, as plain rows (no ORM objects: a claim reads a thousand)."""
        found: dict[int, list[OpenRow]] = {m: [] for m in meter_ids}
        if not meter_ids:
            return found
        if self.session.get_bind().dialect.name == "postgresql":
            # one probe of (meter_id, status) per meter, whatever the statistics say: a
            # campaign's commands are all new, and a plan from older statistics read every
            # open command of the table for each claim (60 ms a claim at 100,000 queued)
            listed = array_param("open_meter_ids", sorted(set(meter_ids)), sa.BigInteger())
            wanted = sa.func.unnest(listed).table_valued("meter_id").render_derived("wanted")
            probe = (
                sa.select(*_OPEN_COLUMNS)
                .where(_COMMAND.c.meter_id == wanted.c.meter_id, _COMMAND.c.status.in_(_OPEN))
                .order_by(_COMMAND.c.id)
                .with_for_update()
                .lateral("open_command")
            )
            query = sa.select(probe).select_from(wanted).join(probe, sa.true())
        else:
            query = (
                sa.select(*_OPEN_COLUMNS)
                .where(IdIn(_COMMAND.c.meter_id, meter_ids), _COMMAND.c.status.in_(_OPEN))
                .order_by(_COMMAND.c.meter_id, _COMMAND.c.id)
                .with_for_update()
            )
        for row in self.session.execute(query).all():
            found[row.meter_id].append(OpenRow(*row))
        return found

    def stale(self, status: CommandStatus, before: datetime, limit: int) -> Sequence[Command]:
        """Commands in `status` not heard of since `before` (claimed or sent then)."""
        stamp = col(Command.claimed_at) if status is CommandStatus.SENDING else col(Command.sent_at)
        return self.session.exec(
            select(Command)
            .where(col(Command.status) == status, stamp < before)
            .order_by(stamp)
            .limit(limit)
        ).all()

    def of_account(self, account_id: int, limit: int = 50) -> Sequence[Command]:
        return self.session.exec(
            select(Command)
            .where(Command.account_id == account_id)
            .order_by(col(Command.id).desc())
            .limit(limit)
        ).all()

    def needing_attention(self, limit: int = 100) -> Sequence[Command]:
        return self.session.exec(
            select(Command)
            .where(col(Command.status) == CommandStatus.ATTENTION)
            .order_by(col(Command.id))
            .limit(limit)
        ).all()


def _row(new: NewCommand) -> Command:
    return Command(
        define_no=new.define_no,
        company_no=new.company_no,
        meter_id=new.meter_id,
        meter_comm_no=new.meter_comm_no,
        account_id=new.account_id,
        ctrl_type=new.ctrl_type,
        intent=new.intent,
        status=new.status,
        hold_id=new.hold_id,
        amount_fen=new.amount_fen,
        settles_id=new.settles_id,
        campaign_id=new.campaign_id,
        reason=new.reason,
        actor=new.actor,
        next_attempt_at=new.next_attempt_at,
        timeout_at=new.timeout_at,
        created_at=new.created_at,
    )


NEW_COLUMNS = (
    "define_no",
    "company_no",
    "meter_id",
    "meter_comm_no",
    "account_id",
    "ctrl_type",
    "intent",
    "status",
    "hold_id",
    "amount_fen",
    "settles_id",
    "campaign_id",
    "reason",
    "actor",
    "next_attempt_at",
    "timeout_at",
    "created_at",
)
