"""The outbox's other rows: each meter's confirmed prepay state and the reports that came
before their command's ctrl_id was known (CommandStore's base, on its session)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.bulk import array_param, unnested
from gasbill.adapters.db.id_lists import IdIn
from gasbill.adapters.db.tables.base import utcnow
from gasbill.adapters.db.tables.commands import CommandReport, MeterPrepayState
from gasbill.service.ports import (
    CommandReportRecord,
    NewCommandReport,
    PrepayStateRecord,
)


@dataclass(frozen=True, slots=True)
class ClaimedState:
    """A meter's prepay state as a claim reads it (`dispatch_ports.ClaimedPrepay`)."""

    confirmed_times: int
    confirmed_total_fen: int
    blocked_by: int | None


class PrepayAndReports:
    session: Session

    # -- prepay state ---------------------------------------------------------------
    def prepay_state(self, meter_id: int) -> MeterPrepayState:
        """The meter's confirmed prepay state, locked; created at zero on first use."""
        found = self.session.exec(
            select(MeterPrepayState).where(MeterPrepayState.meter_id == meter_id).with_for_update()
        ).first()
        if found is None:
            found = MeterPrepayState(meter_id=meter_id)
            self.session.add(found)
            self.session.flush()
        return found

    def prepay_states(self, meter_ids: Sequence[int]) -> dict[int, ClaimedState]:
        """What a claim reads of each meter's prepay state, locked in meter order, as plain
        rows; the missing ones created at zero in one statement (and held by it)."""
        if not meter_ids:
            return {}
        table = cast(sa.Table, MeterPrepayState.__table__)  # type: ignore[attr-defined]
        columns = (
            table.c.meter_id,
            table.c.confirmed_times,
            table.c.confirmed_total_fen,
            table.c.blocked_by,
        )
        if self.session.get_bind().dialect.name == "postgresql":
            # one primary-key probe per meter (in meter order), whatever the statistics say:
            # a plan from a table smaller then read every state for each claim
            listed = array_param("state_meter_ids", sorted(set(meter_ids)), sa.BigInteger())
            wanted = sa.func.unnest(listed).table_valued("meter_id").render_derived("wanted")
            probe = (
                sa.select(*columns)
                .where(table.c.meter_id == wanted.c.meter_id)
                .with_for_update()
                .lateral("state")
            )
            query = sa.select(probe).select_from(wanted).join(probe, sa.true())
        else:
            query = (
                sa.select(*columns)
                .where(IdIn(table.c.meter_id, meter_ids))
                .order_by(table.c.meter_id)
                .with_for_update()
            )
        rows = self.session.execute(query).all()
        found = {int(row.meter_id): ClaimedState(*row[1:]) for row in rows}
        missing = sorted(set(meter_ids) - found.keys())
        if missing:  # inserted in one statement: new rows, locked by their insert
            now = utcnow()
            values = [
                {"meter_id": m, "confirmed_times": 0, "confirmed_total_fen": 0, "updated_at": now}
                for m in missing
            ]
            if len(values) > 1 and self.session.get_bind().dialect.name == "postgresql":
                # one statement over one JSON parameter (psycopg parses a multi-row VALUES
                # statement again on every execution)
                names = list(values[0])
                self.session.execute(sa.insert(table).from_select(names, unnested(table, values)))
            else:
                self.session.execute(sa.insert(table), values)
            found.update((m, ClaimedState(0, 0, None)) for m in missing)
        return found

    def unmatched_of(self, keys: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
        """Which of these (company, ctrl_id) have reports not yet matched: one query."""
        if not keys:
            return set()
        query = sa.select(col(CommandReport.company_no), col(CommandReport.ctrl_id)).where(
            IdIn(col(CommandReport.ctrl_id), sorted({k[1] for k in keys})),
            col(CommandReport.matched_at).is_(None),
        )
        wanted = set(keys)
        return {(c, int(i)) for c, i in self.session.execute(query).all() if (c, int(i)) in wanted}

    def save_prepay(self, prepay: PrepayStateRecord) -> None:
        self.session.add(prepay)

    # -- reports ------------------------------------------------------------------------
    def add_report(self, report: NewCommandReport) -> None:
        self.session.add(
            CommandReport(
                company_no=report.company_no,
                ctrl_id=report.ctrl_id,
                meter_comm_no=report.meter_comm_no,
                ctrl_state=report.ctrl_state,
                payload=report.payload,
                received_at=report.received_at,
            )
        )
        self.session.flush()

    def unmatched_reports(self, company_no: str, ctrl_id: int) -> Sequence[CommandReport]:
        return self.session.exec(
            select(CommandReport)
            .where(
                CommandReport.company_no == company_no,
                CommandReport.ctrl_id == ctrl_id,
                col(CommandReport.matched_at).is_(None),
            )
            .order_by(col(CommandReport.id))
        ).all()

    def save_report(self, report: CommandReportRecord) -> None:
        self.session.add(report)
