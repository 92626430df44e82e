"""The dispatcher's queue statements: which queued commands may go now, which meters
have one, whether a run has anything to send. Built once at import; their
parameters are bound per run."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa

from gasbill.adapters.db.claims import DISPATCH_METER, claimed_keys_sql
from gasbill.adapters.db.tables.commands import Command, MeterPrepayState
from gasbill.domain.commands import CtrlType
from gasbill.domain.outbox import IN_FLIGHT, CommandStatus

_COMMAND = cast(sa.Table, Command.__table__)  # type: ignore[attr-defined]
_STATE = cast(sa.Table, MeterPrepayState.__table__)  # type: ignore[attr-defined]
_PREPAY = sorted(t.value for t in CtrlType if t.is_prepay)


def _may_go(queued: sa.Table | sa.Alias) -> sa.ColumnElement[bool]:
    """Whether `domain.outbox.dispatchable` may pick this queued command: it is no prepay
    command, or none of its meter's prepay commands is in flight and the meter is not
    blocked (or the command is the charge-state read that unblocks it).

    A filter ahead of the dispatcher's claim, which still decides by `dispatchable`
    under lock: without it, meters whose commands wait behind one in flight were
    claimed, read and locked on every run, to send nothing (and, past the claim's
    limit, kept the others from being claimed at all).

    Each test is one index probe for the queued command at hand (`_probe`): left to
    itself the planner hashed every command in flight instead, once per statement,
    and a campaign's setprices stay in flight until the meters wake (50 ms a claim and
    as much a `anything_to_send` at 50,000 in flight, for the first few rows wanted).
    """
    flying = _COMMAND.alias("flying")
    return sa.or_(
        queued.c.ctrl_type.not_in(_PREPAY),
        sa.and_(
            ~_probe(
                flying,
                flying.c.meter_id == queued.c.meter_id,
                flying.c.status.in_(sorted(IN_FLIGHT)),
                flying.c.ctrl_type.in_(_PREPAY),
            ),
            sa.or_(
                queued.c.ctrl_type == str(CtrlType.GET_CHARGE_STATE),
                ~_probe(
                    _STATE, _STATE.c.meter_id == queued.c.meter_id, _STATE.c.blocked_by.is_not(None)
                ),
            ),
        ),
    )


def _probe(table: sa.FromClause, *where: sa.ColumnElement[bool]) -> sa.Exists:
    """EXISTS as a probe per outer row: `OFFSET 0` keeps PostgreSQL from turning it into a
    hashed subplan over every matching row of the table (SQLite ignores it)."""
    return (
        sa.select(sa.literal_column("1"))
        .select_from(table)
        .where(*where)
        .offset(sa.literal_column("0"))
        .exists()
    )


def _due() -> sa.ColumnElement[bool]:
    """A queued command whose time (`:due_now`) has come and that may go."""
    return sa.and_(
        _COMMAND.c.status == str(CommandStatus.QUEUED),
        _COMMAND.c.next_attempt_at <= sa.bindparam("due_now"),
        _may_go(_COMMAND),
    )


def _due_meters() -> sa.Select[Any]:
    """(meter_id, first) of up to `:due_meters` meters with a command that may go now, by
    their oldest such command. The queue is walked in `next_attempt_at` order on its
    index, a few rows per meter wanted, then grouped: grouping the whole queue first cost
    a scan of every queued command per claim, quadratic over a campaign
    (bench/campaign.py). A meter with more queued commands than the walk holds is only
    claimed later. Built once: its parameters are bound per run."""
    walk = (
        sa.select(_COMMAND.c.meter_id, _COMMAND.c.next_attempt_at)
        .where(_due())
        .order_by(_COMMAND.c.next_attempt_at)
        .limit(sa.bindparam("due_rows", type_=sa.Integer()))
        .subquery("walk")
    )
    first = sa.func.min(walk.c.next_attempt_at)
    return (
        sa.select(walk.c.meter_id.label("meter_id"), first.label("first"))
        .group_by(walk.c.meter_id)
        .order_by(first)
        .limit(sa.bindparam("due_meters", type_=sa.Integer()))
    )


def _claim_due_meters() -> sa.Select[Any]:
    """The meter of each command that may go now, in `next_attempt_at` order, claimed as
    it comes (a meter with several such commands comes more than once: claimed again, the
    same claim), until `:claimed` rows are held or `:due_rows` walked. The queue's index
    is read only as far as the claim needs, each row's `_may_go` probed as it is read:
    grouping a fixed stretch of the walk first probed 8 rows per meter claimed (36 ms a
    claim of 1,000 meters in a campaign). The walk is a subquery with a LIMIT, so the
    claim is tried only on the rows that pass, in order, and no meter is held that is
    not returned."""
    walk = (
        sa.select(_COMMAND.c.meter_id)
        .where(_due())
        .order_by(_COMMAND.c.next_attempt_at)
        .limit(sa.bindparam("due_rows", type_=sa.Integer()))
        .subquery("walk")
    )
    return (
        sa.select(walk.c.meter_id)
        .where(sa.text(claimed_keys_sql(DISPATCH_METER, "meter_id")))
        .limit(sa.bindparam("claimed", type_=sa.Integer()))
    )


DUE_METERS = _due_meters()
CLAIM_DUE_METERS = _claim_due_meters()
_STALE = sa.exists().where(
    _COMMAND.c.status == str(CommandStatus.SENDING),
    _COMMAND.c.claimed_at < sa.bindparam("stale_before"),
)
ANYTHING_TO_SEND = sa.select(sa.or_(_STALE, sa.exists().where(_due())))
