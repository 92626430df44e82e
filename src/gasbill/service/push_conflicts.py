"""Corrected re-pushes, reviewed: accept the correction (re-rate, post the difference) or dismiss.

The platform may re-send a reading with another value. Ingest keeps the first
(it was answered and billed) and records the difference once per value. Here
a person decides: an auditor (or admin) accepts the correction, which
replaces the stored values, re-rates the account from that reading on by
billing's `since` and posts only the difference, the conflict named as the
reason in the ledger and the audit log; a clerk dismisses it with a reason,
which moves no money.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from gasbill.domain.accounts import AccountError
from gasbill.service.accounts import Conflict, NotFound, snapshot
from gasbill.service.billing import BillingOutcome, bill_within
from gasbill.service.billing_ports import BillingUnitOfWork as UnitOfWork
from gasbill.service.inbox import binding_at
from gasbill.service.ingest import DECIMAL_FIELDS, FROZEN
from gasbill.service.ports import ConflictRepository, PushConflictRecord, TariffBook

OPEN, ACCEPTED, DISMISSED = "open", "accepted", "dismissed"
# a reading's values by field name, as the conflict's JSON holds them (times as ISO text)
Values = dict[str, object]


@dataclass(frozen=True, slots=True)
class ConflictReview:
    """A conflict as a reviewer sees it: the stored values beside the re-pushed ones."""

    conflict: PushConflictRecord
    meter_comm_no: str
    data_type: int | None
    acquired_at: datetime | None
    stored: Values  # the stored record's values of the differing fields, now
    corrected: Values  # what the re-push carried
    account_id: int | None  # the account the meter was bound to then, if any

    def detail(self) -> str:
        c = self.conflict
        return (
            f"{c.kind} of {self.meter_comm_no} at {_text(self.acquired_at)} re-pushed with "
            f"other values {c.times_seen} time(s), last at {_text(c.last_seen_at)}: stored "
            f"{_show(self.stored)}, re-pushed {_show(self.corrected)}; an auditor may accept "
            "the correction (re-rates the account), a clerk may dismiss it"
        )


@dataclass(frozen=True, slots=True)
class Accepted:
    conflict: PushConflictRecord
    billing: BillingOutcome | None  # None when the record is not a billed reading


def review(uow: UnitOfWork, row: PushConflictRecord) -> ConflictReview:
    """What the conflict concerns, inside the caller's unit of work."""
    key = json.loads(row.natural_key)
    corrected = json.loads(row.second)
    if row.kind != "reading":
        return ConflictReview(row, str(key[0]), None, None, json.loads(row.first), corrected, None)
    meter, data_type, at = str(key[0]), int(key[1]), datetime.fromisoformat(key[2])
    stored_row = uow.conflicts.reading(row.company_no, meter, data_type, at, lock=False)
    stored = {k: _plain(stored_row.get(k)) for k in corrected} if stored_row else {}
    history = uow.inbox.bindings_of([(row.company_no, meter)])
    binding = binding_at(history.get((row.company_no, meter), []), at)
    account = binding.account_id if binding is not None else None
    return ConflictReview(row, meter, data_type, at, stored, corrected, account)


def list_conflicts(
    uow: UnitOfWork, *, status: str | None = OPEN, limit: int = 100
) -> list[ConflictReview]:
    """Conflicts for the exceptions queue, oldest first, each beside its stored record."""
    with uow:
        statuses = None if status is None else [status]
        rows = uow.conflicts.find(statuses=statuses, limit=limit)
        return [review(uow, r) for r in rows]


def conflict_review(uow: UnitOfWork, conflict_id: int) -> ConflictReview:
    """One conflict beside its stored record; NotFound if there is none."""
    with uow:
        row = uow.conflicts.get(conflict_id)
        if row is None:
            raise NotFound(f"no push conflict {conflict_id}")
        return review(uow, row)


def accept_correction(
    uow: UnitOfWork,
    conflict_id: int,
    *,
    reason: str,
    actor: str,
    catalog: TariffBook,
    max_flow_m3_per_hour: Decimal | None = None,
    now: datetime | None = None,
) -> Accepted:
    """Replace the stored values with the re-pushed ones and re-rate from that reading on."""
    _need_reason(reason)
    now = now or datetime.now(UTC)
    with uow:
        store = uow.conflicts
        row = _open(store, conflict_id)
        found = review(uow, row)
        if row.kind != "reading" or found.acquired_at is None or found.data_type is None:
            raise Conflict(f"conflict {conflict_id} is on an {row.kind}: only dismissing applies")
        if _normal(found.stored) != _normal(json.loads(row.first)):
            raise Conflict(
                f"the stored reading changed since conflict {conflict_id} was recorded "
                "(another correction was accepted): dismiss this one"
            )
        before = {"conflict": snapshot(row), "reading": found.stored}
        store.reading(
            row.company_no, found.meter_comm_no, found.data_type, found.acquired_at, lock=True
        )
        store.replace_reading_values(
            row.company_no,
            found.meter_comm_no,
            found.data_type,
            found.acquired_at,
            _stored_values(found.corrected),
        )
        billing = None
        if found.data_type == FROZEN and found.account_id is not None:
            billing = bill_within(
                uow,
                [found.account_id],
                catalog=catalog,
                since={found.account_id: found.acquired_at},
                max_flow_m3_per_hour=max_flow_m3_per_hour,
                now=now,
                cause=f"correction accepted (push conflict {conflict_id})",
                actor=actor,
            )
        _decide(row, ACCEPTED, reason, actor, now)
        store.save(row)
        after: dict[str, object] = {"conflict": snapshot(row), "reading": found.corrected}
        if billing is not None:
            after["re_rated"] = {
                "account_id": found.account_id,
                "charged_fen": billing.charged_fen,
                "credited_fen": billing.credited_fen,
                "transfers": [t.id for t in billing.transfers],
            }
        _audit(uow, row, "push_conflict.accept", actor, before, after, now)
        uow.commit()
        return Accepted(row, billing)


def dismiss_conflict(
    uow: UnitOfWork, conflict_id: int, *, reason: str, actor: str, now: datetime | None = None
) -> PushConflictRecord:
    """Keep the stored values; the conflict is closed with why. No money moves."""
    _need_reason(reason)
    now = now or datetime.now(UTC)
    with uow:
        store = uow.conflicts
        row = _open(store, conflict_id)
        before = snapshot(row)
        _decide(row, DISMISSED, reason, actor, now)
        store.save(row)
        _audit(uow, row, "push_conflict.dismiss", actor, before, snapshot(row), now)
        uow.commit()
        return row


def _open(store: ConflictRepository, conflict_id: int) -> PushConflictRecord:
    row = store.get(conflict_id, lock=True)
    if row is None:
        raise NotFound(f"no push conflict {conflict_id}")
    if row.status != OPEN:
        raise Conflict(f"push conflict {conflict_id} was already {row.status} by {row.reviewed_by}")
    return row


def _need_reason(reason: str) -> None:
    if not reason.strip():
        raise AccountError("a reason says why")


def _decide(row: PushConflictRecord, status: str, reason: str, actor: str, now: datetime) -> None:
    row.status, row.reviewed, row.reviewed_by = status, True, actor
    row.reviewed_at, row.review_reason = now, reason


def _audit(
    uow: UnitOfWork,
    row: PushConflictRecord,
    action: str,
    actor: str,
    before: object,
    after: object,
    at: datetime,
) -> None:
    uow.audit.record(
        actor=actor,
        action=action,
        entity="push_conflict",
        entity_id=row.id,
        before=before,
        after=after,
        at=at,
    )


def _stored_values(corrected: Values) -> Values:
    """The re-pushed values as columns (times back to datetimes; the rest are as stored)."""
    values = dict(corrected)
    received = values.get("receive_time")
    if isinstance(received, str):
        values["receive_time"] = datetime.fromisoformat(received)
    return values


def _normal(values: Values) -> Values:
    """Values compared as instants where they are times (a zone's offset is no difference)."""
    out = dict(values)
    received = out.get("receive_time")
    if isinstance(received, str):
        out["receive_time"] = datetime.fromisoformat(received).astimezone(UTC)
    return out


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def _text(at: datetime | None) -> str:
    return "?" if at is None else at.isoformat(timespec="minutes")


def _show(values: Values) -> str:
    parts = []
    for name, value in values.items():
        if name in DECIMAL_FIELDS and isinstance(value, int):
            value = Decimal(value).scaleb(-3)
        parts.append(f"{name} {value}")
    return ", ".join(parts) or "nothing"
