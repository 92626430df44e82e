"""The rules of the command outbox (DESIGN §8): what may be sent, and what an ending means.

A prepay command (set price, top-up, read charge state, open account, set
remain, read price) changes or reads the meter's money, so at most one is in
flight per meter, a tariff goes before a top-up when both wait, and a
top-up whose outcome is unknown must be settled — by reading the meter's
charge counters — before any other prepay command goes to that meter.

A hold is posted only on state 3 with the command's own success flag, voided
only on its explicit failure flag or a cancellation while still waiting;
every other ending is unknown and is settled, never guessed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gasbill.domain.commands import (
    CommandResult,
    CtrlState,
    CtrlType,
    OpenAccountReturn,
    RemoteChargeReturn,
    RemoteChargeState,
)
from gasbill.domain.money import Money


class CommandStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for the dispatcher
    SENDING = "sending"  # handed to the platform; its ctrl_id not yet known
    SENT = "sent"  # on the platform, waiting for the meter
    DONE = "done"  # ended and applied (or, for reads, answered)
    REFUSED = "refused"  # ended, certainly not applied
    UNKNOWN = "unknown"  # ended without proof either way: to be settled
    SETTLED = "settled"  # an unknown ending, since settled against the meter
    ATTENTION = "attention"  # gave up retrying: a person decides (cancel / retry)
    CANCELLED = "cancelled"


OPEN = frozenset({CommandStatus.QUEUED, CommandStatus.SENDING, CommandStatus.SENT})
# the same as stored text: an enum member hashes by its name, so a stored "queued" is not
# found in OPEN itself
OPEN_STATUSES = frozenset(str(s) for s in OPEN)
IN_FLIGHT = frozenset({CommandStatus.SENDING, CommandStatus.SENT})

# lower goes first when several wait for one meter: the tariff before the money
PRIORITY = {
    CtrlType.OPEN_ACCOUNT: 0,
    CtrlType.GET_CHARGE_STATE: 1,
    CtrlType.SET_PRICE: 2,
    CtrlType.REMOTE_CHARGE: 3,
    CtrlType.SET_REMAIN: 4,
    CtrlType.GET_PRICE: 5,
}


class Verdict(enum.StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    UNKNOWN = "unknown"
    PENDING = "pending"  # not ended yet


@dataclass(frozen=True, slots=True)
class Waiting:
    """A command of one meter as the dispatcher sees it."""

    id: int
    ctrl_type: CtrlType
    status: CommandStatus
    created_at: datetime


def dispatchable(commands: Sequence[Waiting], *, blocked: bool) -> list[Waiting]:
    """Which of one meter's queued commands may be sent now.

    Non-prepay commands (valves, cumulant, release) go whenever they are
    queued. Of the prepay ones, at most one may be in flight: none goes while
    one is, and otherwise the first by priority then age. A meter with an
    unsettled top-up (`blocked`) gets only the charge-state read that
    settles it.
    """
    queued = [c for c in commands if c.status is CommandStatus.QUEUED]
    free = [c for c in queued if not c.ctrl_type.is_prepay]
    prepay_in_flight = any(c.ctrl_type.is_prepay and c.status in IN_FLIGHT for c in commands)
    candidates = [c for c in queued if c.ctrl_type.is_prepay]
    if blocked:
        candidates = [c for c in candidates if c.ctrl_type is CtrlType.GET_CHARGE_STATE]
    if prepay_in_flight or not candidates:
        return free
    first = min(candidates, key=lambda c: (PRIORITY.get(c.ctrl_type, 9), c.created_at, c.id))
    return [*free, first]


def verdict(
    ctrl_type: CtrlType,
    state: CtrlState,
    result: CommandResult | None,
    *,
    cancelled_while_waiting: bool = False,
) -> Verdict:
    """What a platform state means for a command that moves money (top-up, open account).

    Posted only on state 3 with the success flag; voided only on the
    explicit failure flag or a cancellation while still waiting (state 0);
    everything else that ends is unknown.
    """
    if not state.is_final:
        return Verdict.PENDING
    if state is CtrlState.CANCELLED:
        return Verdict.NOT_APPLIED if cancelled_while_waiting else Verdict.UNKNOWN
    if state is not CtrlState.SUCCESS:
        return Verdict.UNKNOWN
    if ctrl_type is CtrlType.REMOTE_CHARGE and isinstance(result, RemoteChargeReturn):
        return _flag(result.applied, result.refused)
    if ctrl_type is CtrlType.OPEN_ACCOUNT and isinstance(result, OpenAccountReturn):
        return _flag(result.applied, result.refused)
    return Verdict.UNKNOWN  # state 3 with an unreadable reply proves nothing


def _flag(applied: bool, refused: bool) -> Verdict:
    if applied:
        return Verdict.APPLIED
    if refused:
        return Verdict.NOT_APPLIED
    return Verdict.UNKNOWN


@dataclass(frozen=True, slots=True)
class Counters:
    """Remote top-ups confirmed on a meter: how many, and their total (fen)."""

    times: int
    total_fen: int


class Settlement(enum.StrEnum):
    APPLIED = "applied"  # the counter moved by exactly this top-up
    NOT_APPLIED = "not_applied"  # the counter did not move
    MISMATCH = "mismatch"  # it moved otherwise: a person must look


def settle_top_up(
    confirmed: Counters, pending_charge_fen: int, state: RemoteChargeState
) -> Settlement:
    """Did the unknown top-up happen? Compare the meter's remote counters with ours."""
    times, total = state.remote_charge_times, state.remote_total_value
    if times == confirmed.times and total == Money.of_fen(confirmed.total_fen):
        return Settlement.NOT_APPLIED
    after = Money.of_fen(confirmed.total_fen + pending_charge_fen)
    if times == confirmed.times + 1 and total == after:
        return Settlement.APPLIED
    return Settlement.MISMATCH


def next_attempt(attempts: int, now: datetime, *, base: timedelta, cap: timedelta) -> datetime:
    """Exponential back-off: base, 2·base, 4·base … at most cap."""
    delay = base * (1 << min(attempts, 20))
    return now + min(delay, cap)
