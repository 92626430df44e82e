"""Reconciliation of system-mode accounts and replaced meters, and what to do about a difference.

System mode (DESIGN §5): the ledger holds the balance, so two things can
go wrong that an auditor must see. The balance the ledger keeps (its running
totals) can part from the transfers it is made of; and the valve can be
where the policy says it should not be: closed although the balance is back
above the reopen threshold, or open although the balance has been at the
cut-off for longer than the grace period and the calendar allowed closing.

A replaced meter must hand over its register: the old meter's last frozen
reading no later than the final register recorded, no readings from it
after it was removed, and the new meter's first reading at or above the
opening register.

Every difference gets an action in plain words (`action_for`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from gasbill.domain.decisions.valve import ValvePolicy, next_closing_time
from gasbill.domain.money import Money
from gasbill.domain.reconciliation import Cause, Check, Evidence, Finding, yuan

ZERO = Money("0")


@dataclass(frozen=True, slots=True)
class LedgerPoint:
    """A prepaid account's totals: running (kept on the row) and summed from its transfers.

    `payments`, `charges`, `other` are the posted transfers effective by the
    report's instant, signed as they move the balance; `balance` their sum.
    `running` and `summed` are over every posted transfer recorded so far.
    """

    code: str
    payments: Money
    charges: Money
    other: Money
    running: Money
    summed: Money

    @property
    def balance(self) -> Money:
        return self.payments + self.charges + self.other


def check_ledger(point: LedgerPoint, at: datetime) -> Finding:
    """The balance the ledger keeps against the transfers it is made of."""
    difference = point.running - point.summed
    agrees = not difference
    evidence = (
        Evidence("ledger", point.code, at, f"payments {yuan(point.payments)}"),
        Evidence("ledger", point.code, at, f"charges {yuan(point.charges)}"),
        Evidence("ledger", point.code, at, f"other {yuan(point.other)}"),
        Evidence("ledger", point.code, None, f"running balance {yuan(point.running)}"),
        Evidence("ledger", point.code, None, f"sum of transfers {yuan(point.summed)}"),
    )
    return Finding(
        Check.LEDGER,
        agrees,
        None if agrees else Cause.LEDGER_TOTALS_DIFFER,
        at,
        "ledger",
        _fixed(point.running),
        _fixed(point.summed),
        difference,
        f"balance {yuan(point.balance)} as of the report",
        evidence if not agrees else (),
    )


@dataclass(frozen=True, slots=True)
class ValvePoint:
    """The valve as the commands left it by the report's instant, and the balance then.

    `closed`: the last confirmed valve command was a close (None: no valve
    command ever ended, the valve is as installed: open). `command_id`: that
    command. `pending`: a valve command queued or sent and not yet ended
    ("on" or "off"), `pending_id` its id. `below_cutoff_since`: when the
    decisions first saw the balance at the cut-off (None: they have not).
    """

    balance: Money
    closed: bool
    command_id: int | None = None
    command_at: datetime | None = None
    pending: str | None = None
    pending_id: int | None = None
    below_cutoff_since: datetime | None = None


def check_valve(point: ValvePoint, policy: ValvePolicy, as_of: datetime) -> Finding:
    """Closed with the balance at or above the reopen threshold, or open past cut-off and grace."""
    position = "closed" if point.closed else "open"
    evidence = [Evidence("ledger", "prepaid", as_of, f"balance {yuan(point.balance)}")]
    if point.command_id is not None:
        evidence.append(Evidence("command", str(point.command_id), point.command_at, position))
    if point.pending_id is not None:
        evidence.append(Evidence("command", str(point.pending_id), None, f"{point.pending} sent"))
    cause, expected, note = None, position, ""
    if point.closed and point.balance >= policy.reopen_threshold and point.pending != "on":
        cause, expected = Cause.VALVE_CLOSED_WITH_CREDIT, "open"
        note = f"reopen threshold {yuan(policy.reopen_threshold)}"
    elif not point.closed and point.balance <= policy.cutoff and point.pending != "off":
        due = _closing_due(point, policy)
        if due is None or due <= as_of:
            cause, expected = Cause.VALVE_OPEN_PAST_CUTOFF, "closed"
            since = point.below_cutoff_since
            note = f"cut-off {yuan(policy.cutoff)}, " + (
                f"at it since {since.isoformat()}, closing due {due.isoformat()}"
                if since is not None and due is not None
                else "the decisions have not recorded the cut-off"
            )
            if since is not None:
                evidence.append(Evidence("decision", "below_cutoff_since", since, "at cut-off"))
    agrees = cause is None
    return Finding(
        Check.VALVE,
        agrees,
        cause,
        as_of,
        "valve",
        position,
        expected,
        None,
        note,
        () if agrees else tuple(evidence),
    )


def _closing_due(point: ValvePoint, policy: ValvePolicy) -> datetime | None:
    if point.below_cutoff_since is None:
        return None
    return next_closing_time(policy, point.below_cutoff_since + policy.grace)


@dataclass(frozen=True, slots=True)
class ReplacementPoint:
    """One replacement: the old meter's binding and its registers, the new meter's first.

    Registers in litres. `last_litres`/`last_at`: the old meter's last frozen
    reading at or before its removal; `stray`: its frozen readings after it;
    `first_litres`/`first_at`: the new meter's first frozen reading.
    """

    binding_id: int
    old_comm_no: str
    removed_at: datetime
    final_litres: int | None
    last_litres: int | None = None
    last_at: datetime | None = None
    stray: int = 0
    new_comm_no: str = ""
    opening_litres: int = 0
    first_litres: int | None = None
    first_at: datetime | None = None


def check_replacement(point: ReplacementPoint, company_no: str) -> Finding:
    """The old meter's register handed over without a gap or an overlap."""
    problems = []
    if point.final_litres is None:
        problems.append("no final register recorded for the old meter")
    elif point.last_litres is not None and point.last_litres > point.final_litres:
        problems.append(
            f"old meter read {_m3(point.last_litres)} before removal, "
            f"above its final register {_m3(point.final_litres)}"
        )
    if point.stray:
        problems.append(f"{point.stray} readings from the old meter after its removal")
    if point.first_litres is not None and point.first_litres < point.opening_litres:
        problems.append(
            f"new meter's first reading {_m3(point.first_litres)} "
            f"below its opening register {_m3(point.opening_litres)}"
        )
    evidence = [Evidence("binding", str(point.binding_id), point.removed_at, point.old_comm_no)]
    if point.last_at is not None and point.last_litres is not None:
        key = f"{company_no}/{point.old_comm_no}/1/{point.last_at.isoformat()}"
        evidence.append(Evidence("reading", key, point.last_at, _m3(point.last_litres)))
    if point.first_at is not None and point.first_litres is not None:
        key = f"{company_no}/{point.new_comm_no}/1/{point.first_at.isoformat()}"
        evidence.append(Evidence("reading", key, point.first_at, _m3(point.first_litres)))
    agrees = not problems
    return Finding(
        Check.REPLACEMENT,
        agrees,
        None if agrees else Cause.METER_REPLACED,
        point.removed_at,
        "binding",
        "" if point.last_litres is None else _m3(point.last_litres),
        "" if point.final_litres is None else _m3(point.final_litres),
        None,
        "; ".join(problems) or f"{point.old_comm_no} replaced by {point.new_comm_no}",
        tuple(evidence),
    )


# -- what to do --------------------------------------------------------------------------------

_ACTIONS: dict[tuple[Check | None, Cause], str] = {
    (None, Cause.TOP_UP_IN_FLIGHT): (
        "Wait for the top-up's answer; if none comes, settle it with getchargestate."
    ),
    (None, Cause.TARIFF_NOT_ON_METER): (
        "Push the tariff in force to the meter (the campaign), then compare again; "
        "the true-up settles what the meter charged at the old price."
    ),
    (None, Cause.ROUNDING_ON_METER): (
        "No action: the meter rounds its own deductions; adjust only if it keeps growing."
    ),
    (Check.BALANCE, Cause.MISSING_READINGS): (
        "Ask the platform for the missing frozen readings and bill them, then compare again."
    ),
    (Check.COUNTERS, Cause.MISSING_READINGS): ("Send getchargestate to the meter."),
    (Check.PRICE, Cause.MISSING_READINGS): ("Send getprice to the meter."),
    (None, Cause.MISSING_READINGS): ("Ask the platform for the meter's data, then compare again."),
    (Check.COUNTERS, Cause.UNEXPLAINED): (
        "Look up the top-ups the meter counts that the books do not (or the reverse) "
        "with the platform; post or void the hold they belong to, or refer to a supervisor."
    ),
    (None, Cause.UNEXPLAINED): (
        "Check the listed readings, commands and transfers; if the meter is right, "
        "record an auditor's adjustment, else correct the meter with setremain."
    ),
    (None, Cause.VALVE_OPEN_PAST_CUTOFF): (
        "Close the valve (setvalveoff) or record why it stays open; check that the "
        "decisions job runs."
    ),
    (None, Cause.VALVE_CLOSED_WITH_CREDIT): (
        "Reopen the valve (setvalveon) now: the customer has paid; check that the "
        "decisions job runs."
    ),
    (None, Cause.LEDGER_TOTALS_DIFFER): (
        "Stop postings to this account and refer it to a developer: the running balance "
        "no longer equals its transfers."
    ),
    (None, Cause.METER_REPLACED): (
        "Correct the replacement's final or opening register from the removed meter's "
        "last reading; resolve readings that came from it after its removal."
    ),
}


def action_for(check: Check, cause: Cause | None) -> str:
    """A plain-words next step for a difference; empty when the check agrees."""
    if cause is None:
        return ""
    return _ACTIONS.get((check, cause)) or _ACTIONS.get((None, cause), "")


def with_action(found: Finding) -> Finding:
    if found.agrees or found.action:
        return found
    return replace(found, action=action_for(found.check, found.cause))


def _fixed(value: Money) -> str:
    return f"{value.value:.3f}"


def _m3(litres: int) -> str:
    whole, rest = divmod(litres, 1000)
    return f"{whole}.{rest:03d} m³"
