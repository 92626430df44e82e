"""Query mode's marks: how far polling a platform has got, per company and kind of data."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from gasbill.adapters.db.tables.readings import PollMark


class PollMarks:
    def __init__(self, session: Session) -> None:
        self.session = session

    def mark_at(self, company_no: str, kind: str) -> datetime | None:
        """Where polling `kind` (reading, alarm, event) of the company has got; None: nowhere."""
        found = self.session.get(PollMark, (company_no, kind))
        return found.mark_at if found is not None else None

    def move(self, company_no: str, kind: str, at: datetime, now: datetime) -> None:
        """Set the mark to `at` (made on first use)."""
        found = self.session.get(PollMark, (company_no, kind))
        if found is None:
            found = PollMark(company_no=company_no, kind=kind, mark_at=at, updated_at=now)
        else:
            found.mark_at, found.updated_at = at, now
        self.session.add(found)
