"""Reconciliation (DESIGN §9): what a meter reports against what the books say it should.

Three checks per meter-mode account, each at one observation the service
chose: the balance (`remain_money` of a reading, or a top-up's returned
`remain`, against `meter_credit` as of that instant), the remote top-up
counters (`getchargestate` against what we had confirmed by then), and the
price (`getprice` or a reading's `curr_price` against the tariff in force).
A difference beyond tolerance gets the most likely cause, decided in the
order of `Cause`: the first rule that explains it wins.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gasbill.domain.money import Money, Price

ZERO = Money("0")
BALANCE_TOLERANCE = Money("0.01")
ROUNDING_LIMIT = Money("0.10")
EXACT_PRICE = Price("0")
CENT_PRICE = Price("0.01")  # a meter that keeps prices in fen differs from the tariff by less


class Check(enum.StrEnum):
    BALANCE = "balance"  # meter mode: remain_money against meter_credit
    COUNTERS = "counters"  # meter mode: getchargestate against the confirmed top-ups
    PRICE = "price"  # meter mode: the meter's prices against the tariff
    LEDGER = "ledger"  # system mode: the balance against its payments and charges
    VALVE = "valve"  # system mode: the valve against the cut-off and reopen policy
    REPLACEMENT = "replacement"  # a replaced meter: final and opening registers


class Cause(enum.StrEnum):
    TOP_UP_IN_FLIGHT = "top_up_in_flight"
    TARIFF_NOT_ON_METER = "tariff_not_on_meter"
    ROUNDING_ON_METER = "rounding_on_meter"
    MISSING_READINGS = "missing_readings"
    UNEXPLAINED = "unexplained"
    VALVE_OPEN_PAST_CUTOFF = "valve_open_past_cutoff"
    VALVE_CLOSED_WITH_CREDIT = "valve_closed_with_credit"
    LEDGER_TOTALS_DIFFER = "ledger_totals_differ"
    METER_REPLACED = "meter_replaced"


@dataclass(frozen=True, slots=True)
class Tolerance:
    """`balance`: a difference the books accept (the ledger keeps whole fen).

    `rounding`: beyond `balance` and up to this, a balance difference is put
    down to the meter rounding its own deductions. `price`: 0, prices are exact.
    """

    balance: Money = BALANCE_TOLERANCE
    rounding: Money = ROUNDING_LIMIT
    price: Price = EXACT_PRICE


# -- observations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BalancePoint:
    """What the meter held at `at` (a reading or a top-up's reply) and the ledger's meter_credit.

    `in_flight` is the money of top-ups whose holds were pending at `at`: such
    a point is not comparable, and is only used when no other exists.
    """

    at: datetime
    source: str  # "reading" | "top_up"
    meter: Money
    ledger: Money
    in_flight: Money = ZERO

    @property
    def comparable(self) -> bool:
        return not self.in_flight


@dataclass(frozen=True, slots=True)
class CounterPoint:
    """A `getchargestate` answer at `at`, and the meter's top-ups the ledger had posted by then.

    The ledger's count includes the account opening's credit: the meter
    counts an `openaccount` among its remote top-ups.
    """

    at: datetime
    meter_times: int
    meter_total: Money
    ledger_times: int
    ledger_total: Money
    in_flight_times: int = 0
    in_flight_total: Money = ZERO


@dataclass(frozen=True, slots=True)
class PricePoint:
    """The meter's prices at `at` (a `getprice` ladder, or one `curr_price`) and the tariff's.

    `tariff_behind`: the price change in force at `at` was not yet confirmed
    on the meter.
    """

    at: datetime
    source: str  # "getprice" | "curr_price"
    meter: tuple[Price, ...]
    tariff: tuple[Price, ...]
    tariff_behind: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    """One record that shows a difference, named so that a page can open it.

    `kind` says where it lives: "reading" (`ref` is company/meter/data_type/
    acquisition time, the reading's key), "command" (`ref` is the command id),
    "transfer" (`ref` is the transfer id), "ledger" (`ref` is the ledger
    account code), "binding" (`ref` is the meter binding id), "decision" (the
    account's decision state). `value` is what it says, amounts in yuan.
    """

    kind: str
    ref: str
    at: datetime | None
    value: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result; `difference` is the meter's value minus the books'.

    `evidence`: the readings, commands and transfers that show it; `action`:
    what a person should do about a difference, in plain words.
    """

    check: Check
    agrees: bool
    cause: Cause | None
    at: datetime | None = None
    source: str = ""
    meter: str = ""
    expected: str = ""
    difference: Money | Price | None = None
    note: str = ""
    evidence: tuple[Evidence, ...] = ()
    action: str = ""


# -- choosing the observation -------------------------------------------------------------


def balance_point(points: Iterable[BalancePoint]) -> BalancePoint | None:
    """The latest comparable reading; else the latest comparable top-up answer; else the latest
    point of all.

    A top-up's returned `remain` is what the meter held when it applied the money, at some
    instant between the send and the answer, after gas the ledger bills only at the next
    frozen reading; its answer may also come a day late. So a comparable frozen reading, even
    an older one, is the better checkpoint; the answer stands in only when there is none.
    """
    candidates = list(points)
    comparable = [p for p in candidates if p.comparable]
    readings = [p for p in comparable if p.source == "reading"]
    chosen = readings or comparable or candidates
    return max(chosen, key=lambda p: p.at, default=None)


# -- the checks ----------------------------------------------------------------------------


def check_balance(
    point: BalancePoint | None,
    *,
    tariff_behind: bool = False,
    missing_readings: int = 0,
    tolerance: Tolerance = Tolerance(),
) -> Finding:
    if point is None:
        return Finding(
            Check.BALANCE, False, Cause.MISSING_READINGS, note="no reading with a balance"
        )
    difference = point.meter - point.ledger
    agrees = abs(difference) <= tolerance.balance
    cause = None
    if not agrees:
        cause = _balance_cause(difference, point, tariff_behind, missing_readings, tolerance)
    return Finding(
        Check.BALANCE,
        agrees,
        cause,
        point.at,
        point.source,
        _money(point.meter),
        _money(point.ledger),
        difference,
        f"{_money(point.in_flight)} in flight" if point.in_flight else "",
    )


def _balance_cause(
    difference: Money,
    point: BalancePoint,
    tariff_behind: bool,
    missing_readings: int,
    tolerance: Tolerance,
) -> Cause:
    # more on the meter than in the books, up to what is in flight: the meter applied a
    # top-up (and may have spent part of it) before its confirmation reached the books
    if point.in_flight and ZERO < difference <= point.in_flight + tolerance.rounding:
        return Cause.TOP_UP_IN_FLIGHT
    if abs(difference) <= tolerance.rounding:
        return Cause.ROUNDING_ON_METER
    if tariff_behind:
        return Cause.TARIFF_NOT_ON_METER
    if missing_readings > 0:
        return Cause.MISSING_READINGS
    if point.in_flight:  # not comparable: the top-up may be partly on the meter's side
        return Cause.TOP_UP_IN_FLIGHT
    return Cause.UNEXPLAINED


def check_counters(point: CounterPoint | None, *, tolerance: Tolerance = Tolerance()) -> Finding:
    if point is None:
        return Finding(
            Check.COUNTERS, False, Cause.MISSING_READINGS, note="no getchargestate answer"
        )
    times = point.meter_times - point.ledger_times
    difference = point.meter_total - point.ledger_total
    agrees = times == 0 and abs(difference) <= tolerance.balance
    cause = None
    if not agrees:
        cause = _counters_cause(times, difference, point, tolerance)
    return Finding(
        Check.COUNTERS,
        agrees,
        cause,
        point.at,
        "getchargestate",
        f"{point.meter_times} / {_money(point.meter_total)}",
        f"{point.ledger_times} / {_money(point.ledger_total)}",
        difference,
        f"{times:+d} top-ups" if times else "",
    )


def _counters_cause(
    times: int, difference: Money, point: CounterPoint, tolerance: Tolerance
) -> Cause:
    # the meter may have applied top-ups whose outcome we did not know yet
    if 0 < times <= point.in_flight_times and (
        Money("0") < difference <= point.in_flight_total + tolerance.balance
    ):
        return Cause.TOP_UP_IN_FLIGHT
    if times == 0 and abs(difference) < tolerance.rounding:
        return Cause.ROUNDING_ON_METER
    return Cause.UNEXPLAINED


def check_price(point: PricePoint | None, *, tolerance: Tolerance = Tolerance()) -> Finding:
    if point is None or not point.meter or not point.tariff:
        return Finding(Check.PRICE, False, Cause.MISSING_READINGS, note="no price from the meter")
    difference = price_difference(point.meter, point.tariff)
    agrees = abs(difference) <= tolerance.price
    cause = None
    if not agrees:
        if point.tariff_behind:
            cause = Cause.TARIFF_NOT_ON_METER
        elif abs(difference) < CENT_PRICE:
            cause = Cause.ROUNDING_ON_METER
        else:
            cause = Cause.UNEXPLAINED
    return Finding(
        Check.PRICE,
        agrees,
        cause,
        point.at,
        point.source,
        _prices(point.meter),
        _prices(point.tariff),
        difference,
    )


def price_difference(meter: Sequence[Price], tariff: Sequence[Price]) -> Price:
    """A ladder against a ladder: the largest difference, price by price.

    One price (`curr_price`: the tier the meter is in, which the report does
    not know) against a ladder: the difference to the nearest of its prices.
    """
    if len(meter) == 1:
        return min((meter[0] - p for p in tariff), key=abs)
    return max((m - t for m, t in zip(meter, tariff, strict=False)), key=abs)


# -- a line per account, and the totals ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountLine:
    account_id: int
    account_number: str
    company_no: str
    meter_comm_no: str
    findings: tuple[Finding, ...]
    billing_mode: str = "meter"

    @property
    def agrees(self) -> bool:
        return all(f.agrees for f in self.findings)

    @property
    def causes(self) -> tuple[Cause, ...]:
        return tuple(dict.fromkeys(f.cause for f in self.findings if f.cause is not None))

    def finding(self, check: Check) -> Finding | None:
        return next((f for f in self.findings if f.check is check), None)


@dataclass(frozen=True, slots=True)
class Totals:
    accounts: int
    agreeing: int
    differing: int
    by_cause: dict[str, int]  # accounts with that cause
    by_check: dict[str, int]  # accounts differing on that check
    balance_difference: Money  # signed sum of the differing balances
    balance_difference_abs: Money
    counters_difference: Money
    counters_difference_abs: Money


class Tally:
    """Totals built as lines come: an agreeing account need not be kept to be counted."""

    def __init__(self) -> None:
        self.count = self.agreeing = 0
        self.causes: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()
        self.sums = {c: [Money("0"), Money("0")] for c in (Check.BALANCE, Check.COUNTERS)}

    def agree(self, accounts: int = 1) -> None:
        self.count += accounts
        self.agreeing += accounts

    def add(self, line: AccountLine) -> None:
        self.count += 1
        self.agreeing += line.agrees
        self.causes.update(str(c) for c in line.causes)
        for found in line.findings:
            if found.agrees:
                continue
            self.checks[str(found.check)] += 1
            if found.check in self.sums and isinstance(found.difference, Money):
                self.sums[found.check][0] += found.difference
                self.sums[found.check][1] += abs(found.difference)

    def absorb(self, other: Tally) -> None:
        """Another tally's accounts counted here too (a range of accounts tallied apart):
        the same totals as had its lines come here."""
        self.count += other.count
        self.agreeing += other.agreeing
        self.causes.update(other.causes)
        self.checks.update(other.checks)
        for check, (signed, absolute) in other.sums.items():
            self.sums[check][0] += signed
            self.sums[check][1] += absolute

    def totals(self) -> Totals:
        sums = self.sums
        return Totals(
            accounts=self.count,
            agreeing=self.agreeing,
            differing=self.count - self.agreeing,
            by_cause={str(c): self.causes.get(str(c), 0) for c in Cause},
            by_check={str(c): self.checks.get(str(c), 0) for c in Check},
            balance_difference=sums[Check.BALANCE][0],
            balance_difference_abs=sums[Check.BALANCE][1],
            counters_difference=sums[Check.COUNTERS][0],
            counters_difference_abs=sums[Check.COUNTERS][1],
        )


def totals(lines: Iterable[AccountLine]) -> Totals:
    tally = Tally()
    for line in lines:
        tally.add(line)
    return tally.totals()


def yuan(value: Money) -> str:
    """An amount as a person reads it: '12.34 yuan' (thousandths kept when there are any)."""
    text = f"{value.value:.3f}"
    return (text[:-1] if text.endswith("0") else text) + " yuan"


def _money(value: Money) -> str:
    return f"{value.value:.3f}"


def _prices(prices: Sequence[Price]) -> str:
    return " ".join(p.fixed() for p in prices)
