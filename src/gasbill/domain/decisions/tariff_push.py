"""Tariff pushes due: which meters need the prices in force (or soon in force)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from gasbill.domain.decisions.common import DecisionError, to_utc

MeterKey = TypeVar("MeterKey", bound=Hashable)


@dataclass(frozen=True)
class TariffChange:
    """An instant a meter's prices change: a version's effective_from or a season start."""

    at: datetime
    label: str

    def __post_init__(self) -> None:
        # Kept in UTC so that ordering and equality are by instant.
        object.__setattr__(self, "at", to_utc(self.at, f"tariff change {self.label!r}"))


@dataclass(frozen=True)
class TariffPushDue(Generic[MeterKey]):
    """Decision: push the prices in force from `change.at` to this meter."""

    meter: MeterKey
    change: TariffChange
    confirmed_at: datetime | None  # the newest change the meter has confirmed
    early: bool  # ahead of change.at, as the lead time allows
    reason: str


def tariff_change_due(
    changes: Iterable[TariffChange],
    confirmed_at: datetime | None,
    now: datetime,
    *,
    lead: timedelta = timedelta(0),
    queued_at: datetime | None = None,
) -> TariffChange | None:
    """The newest change at or before `now + lead` the meter does not have yet.

    `confirmed_at` is the instant of the newest change the meter confirmed;
    `queued_at` that of a push already queued or in flight, not pushed twice.
    Changes at the same instant (a version and a season) are one push.
    """
    if lead < timedelta(0):
        raise DecisionError(f"lead must not be negative: {lead}")
    # A meter applies a pushed price at once (setprice carries no effective
    # time), so a future change goes out early only within the lead time.
    horizon = to_utc(now, "now") + lead
    in_force = sorted((c for c in changes if c.at <= horizon), key=lambda c: c.at)
    if not in_force:
        return None
    newest = in_force[-1].at
    for done in (confirmed_at, queued_at):
        if done is not None and to_utc(done, "confirmed_at/queued_at") >= newest:
            return None
    labels = [c.label for c in in_force if c.at == newest]
    return TariffChange(at=newest, label=" + ".join(labels))


def tariff_pushes_due(
    changes: Sequence[TariffChange],
    confirmed: Mapping[MeterKey, datetime | None],
    now: datetime,
    *,
    lead: timedelta = timedelta(0),
    queued: Mapping[MeterKey, datetime] | None = None,
) -> list[TariffPushDue[MeterKey]]:
    """Which meters on one tariff need which push at `now`, in the mapping's order."""
    now_utc = to_utc(now, "now")
    due: list[TariffPushDue[MeterKey]] = []
    for meter, confirmed_at in confirmed.items():
        queued_at = None if queued is None else queued.get(meter)
        change = tariff_change_due(changes, confirmed_at, now_utc, lead=lead, queued_at=queued_at)
        if change is None:
            continue
        early = change.at > now_utc
        had = "none" if confirmed_at is None else to_utc(confirmed_at, "confirmed_at").isoformat()
        reason = (
            f"{change.label} effective {change.at.isoformat()} "
            f"{'ahead of time within lead' if early else 'in force'}; meter has {had}"
        )
        due.append(TariffPushDue(meter, change, confirmed_at, early, reason))
    return due
