"""Meter-mode accounts (DESIGN §9): the meter's balance, counters and price against the books.

`quick` decides with integers alone whether an account agrees on every
check; only an account that does not (or a report that lists every account)
gets its findings built, with the evidence that shows them. Decoded answers
and tariff ladders are cached: a city's meters share a handful of prices and
freeze at the same midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from gasbill.domain.commands import CtrlType, LadderPrice, RemoteChargeReturn, RemoteChargeState
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money, Price
from gasbill.domain.price_changes import PriceChange, change_in_force, ladder_for, price_changes
from gasbill.domain.reconciliation import (
    BalancePoint,
    CounterPoint,
    Evidence,
    Finding,
    PricePoint,
    Tolerance,
    balance_point,
    check_balance,
    check_counters,
    check_price,
    price_difference,
    yuan,
)
from gasbill.domain.tariff import Tariff
from gasbill.service.meter_tariffs import meter_confirmations
from gasbill.service.ports import CommandCodec, TariffBook
from gasbill.service.reconciliation_rows import (
    AccountRow,
    HoldRow,
    MeterGroup,
    ReadingRow,
    ReplyRow,
)

JUST_BEFORE = timedelta(microseconds=1)


@dataclass(slots=True)
class MeterFacts:
    """What the store found for one account (None: nothing of that kind)."""

    reading: ReadingRow | None = None
    comparable: ReadingRow | None = None
    top_up: ReplyRow | None = None
    state: ReplyRow | None = None
    price: ReplyRow | None = None
    confirmed: Mapping[str, datetime] = field(default_factory=dict)
    holds: list[HoldRow] = field(default_factory=list)
    coverage: tuple[int, datetime, datetime, int] | None = None


class MeterChecks:
    def __init__(
        self, catalog: TariffBook, codec: CommandCodec, tolerance: Tolerance, as_of: datetime
    ) -> None:
        self.catalog, self.codec, self.tolerance, self.as_of = catalog, codec, tolerance, as_of
        self.balance_milli = int(tolerance.balance.value.scaleb(3))
        self._decoded: dict[tuple[str, str], Any] = {}
        self._views: dict[tuple[Any, ...], _TariffView] = {}
        self._counted: dict[str, tuple[int, int] | None] = {}

    # -- the integer pass ---------------------------------------------------------------
    def quick(self, account: AccountRow, facts: MeterFacts) -> bool:
        """Whether the account agrees on every check, known without building a finding."""
        reading, top_up = facts.reading, facts.top_up
        if reading is None or reading.in_flight_fen or facts.state is None:
            return False
        if top_up is not None and top_up.at > reading.at:
            return False
        if abs(reading.remain_milli - 10 * reading.credit_fen) > self.balance_milli:
            return False
        counters = self._counters(facts.state.return_data)
        if counters is None or counters[0] != facts.state.posted_times:
            return False
        if abs(counters[1] - 10 * facts.state.posted_fen) > self.balance_milli:
            return False
        return self._price_agrees(account, facts)

    def group_agrees(self, group: MeterGroup, confirmed: Mapping[str, datetime]) -> bool:
        """`quick` for a group of accounts the database found to pass every integer check:
        the charge state's counters against the posted top-ups, and the price."""
        counters = self._counters(group.state_data)
        if counters is None or counters[0] != group.posted_times:
            return False
        if abs(counters[1] - 10 * group.posted_fen) > self.balance_milli:
            return False
        i, at = group.first_id, group.reading_at
        account = AccountRow(
            i, "", "", "meter", group.tariff_id, group.persons, group.opened_on,
            0, 0, 0, "", at, 0, None, 0, None, 0, None,
        )  # fmt: skip
        reading = ReadingRow(i, "", at, 0, group.curr_price_milli, 0, 0)
        price = None
        if group.price_data is not None and group.price_at is not None:
            price = ReplyRow(i, 0, group.price_at, group.price_data)
        facts = MeterFacts(reading, None, None, None, price, confirmed)
        return self._price_agrees(account, facts)

    def _counters(self, data: str) -> tuple[int, int] | None:
        """A charge state's remote top-ups: (count, total in thousandths of a yuan)."""
        if data in self._counted:
            return self._counted[data]
        state = self.decode(CtrlType.GET_CHARGE_STATE, data)
        found = None
        if isinstance(state, RemoteChargeState):
            found = state.remote_charge_times, int(state.remote_total_value.value.scaleb(3))
        if len(self._counted) < 100_000:
            self._counted[data] = found
        return found

    def _price_agrees(self, account: AccountRow, facts: MeterFacts) -> bool:
        """The price check's verdict, remembered per tariff view and observation."""
        reply, reading = facts.price, facts.reading
        key: tuple[Any, ...]
        if reply is not None and (reading is None or reply.at >= reading.at):
            key = ("getprice", reply.return_data, reply.at)
        elif reading is not None:
            key = ("curr_price", reading.curr_price_milli, reading.at)
        else:
            return False
        view = self.view(account, facts.confirmed)
        found = view.verdicts.get(key)
        if found is None:
            point = self._price_point(account, facts)
            found = (
                point is not None
                and bool(point.meter)
                and bool(point.tariff)
                and abs(price_difference(point.meter, point.tariff)) <= self.tolerance.price
            )
            if len(view.verdicts) < 10_000:
                view.verdicts[key] = found
        return found

    # -- the findings ---------------------------------------------------------------------
    def findings(self, account: AccountRow, facts: MeterFacts) -> tuple[Finding, ...]:
        view = self.view(account, facts.confirmed)
        points = [
            self._reading_point(r)
            for r in (facts.comparable, facts.reading)
            if r is not None and r.remain_milli is not None
        ]
        if facts.top_up is not None:
            points.extend(self._top_up_point(facts.top_up))
        point = balance_point(points)
        balance = check_balance(
            point,
            tariff_behind=point is not None and view.behind(point.at),
            missing_readings=_missing(facts.coverage),
            tolerance=self.tolerance,
        )
        counters = check_counters(self._counter_point(facts.state), tolerance=self.tolerance)
        price = check_price(self._price_point(account, facts), tolerance=self.tolerance)
        return (
            _with(balance, self._balance_evidence(account, point, facts)),
            _with(counters, self._counter_evidence(facts)),
            _with(price, self._price_evidence(account, facts)),
        )

    def decode(self, ctrl_type: CtrlType, data: str) -> Any:
        key = (ctrl_type.value, data)
        found = self._decoded.get(key)
        if found is None:
            found = self.codec.decode_result(str(ctrl_type), data)
            if len(self._decoded) < 100_000:
                self._decoded[key] = found
        return found

    def view(self, account: AccountRow, confirmed: Mapping[str, datetime]) -> _TariffView:
        key: tuple[Any, ...] = (account.tariff_id, account.persons, account.opened_on)
        if confirmed:
            key += tuple(confirmed.items())
        found = self._views.get(key)
        if found is None:
            found = self._views[key] = _TariffView(self.catalog, account, confirmed, self.as_of)
        return found

    def _reading_point(self, reading: ReadingRow) -> BalancePoint:
        return BalancePoint(
            reading.at,
            "reading",
            Money(Decimal(reading.remain_milli).scaleb(-3)),
            Money.of_fen(reading.credit_fen),
            Money.of_fen(reading.in_flight_fen),
        )

    def _top_up_point(self, reply: ReplyRow) -> list[BalancePoint]:
        result = self.decode(CtrlType.REMOTE_CHARGE, reply.return_data)
        if not isinstance(result, RemoteChargeReturn) or result.remain is None:
            return []
        if not result.applied:
            return []
        ledger, flight = Money.of_fen(reply.credit_fen), Money.of_fen(reply.in_flight_fen)
        return [BalancePoint(reply.at, "top_up", result.remain, ledger, flight)]

    def _counter_point(self, reply: ReplyRow | None) -> CounterPoint | None:
        if reply is None:
            return None
        state = self.decode(CtrlType.GET_CHARGE_STATE, reply.return_data)
        if not isinstance(state, RemoteChargeState):
            return None
        return CounterPoint(
            reply.at,
            state.remote_charge_times,
            state.remote_total_value,
            reply.posted_times,
            Money.of_fen(reply.posted_fen),
            reply.in_flight_times,
            Money.of_fen(reply.in_flight_fen),
        )

    def _price_point(self, account: AccountRow, facts: MeterFacts) -> PricePoint | None:
        """The later of the meter's last `getprice` ladder and its last reading's `curr_price`."""
        reply, reading = facts.price, facts.reading
        view = self.view(account, facts.confirmed)
        if reply is not None and (reading is None or reply.at >= reading.at):
            ladder = self.decode(CtrlType.GET_PRICE, reply.return_data)
            if isinstance(ladder, LadderPrice):
                return view.point(reply.at, "getprice", ladder.prices)
        if reading is not None and reading.curr_price_milli is not None:
            meter = (Price.of_milli(reading.curr_price_milli),)
            # a frozen reading closes the period before it: priced by the tariff in force then
            return view.point(reading.at, "curr_price", meter, reading.at - JUST_BEFORE)
        return None

    # -- evidence ---------------------------------------------------------------------------
    def _balance_evidence(
        self, account: AccountRow, point: BalancePoint | None, facts: MeterFacts
    ) -> list[Evidence]:
        if point is None:
            return []
        found = []
        if point.source == "top_up" and facts.top_up is not None:
            value = f"remain {yuan(point.meter)} after the top-up"
            found.append(Evidence("command", str(facts.top_up.command_id), point.at, value))
        else:
            key = f"{account.company_no}/{account.comm_no}/1/{point.at.isoformat()}"
            for r in (facts.comparable, facts.reading):
                if r is not None and r.at == point.at:
                    key = f"{account.company_no}/{r.comm_no}/1/{point.at.isoformat()}"
            found.append(Evidence("reading", key, point.at, f"remain {yuan(point.meter)}"))
        code = f"meter_credit:{account.account_id}"
        found.append(Evidence("ledger", code, point.at, f"meter_credit {yuan(point.ledger)}"))
        for hold in facts.holds:
            if hold.start <= point.at and (hold.end is None or hold.end > point.at):
                value = f"top-up {yuan(Money.of_fen(hold.amount_fen))} in flight"
                found.append(Evidence("transfer", hold.transfer_id, hold.start, value))
        return found

    def _counter_evidence(self, facts: MeterFacts) -> list[Evidence]:
        reply = facts.state
        if reply is None:
            return []
        state = self.decode(CtrlType.GET_CHARGE_STATE, reply.return_data)
        value = (
            f"{state.remote_charge_times} top-ups, {yuan(state.remote_total_value)}"
            if isinstance(state, RemoteChargeState)
            else "unreadable"
        )
        found = [Evidence("command", str(reply.command_id), reply.at, value)]
        for hold in facts.holds:
            if hold.start > reply.at:
                continue
            posted = hold.posted and hold.end is not None and hold.end <= reply.at
            what = "confirmed" if posted else "in flight" if hold.end is None else "resolved"
            if hold.end is not None and hold.end > reply.at:
                what = "in flight"
            amount = yuan(Money.of_fen(hold.amount_fen))
            found.append(Evidence("transfer", hold.transfer_id, hold.start, f"{amount} {what}"))
        return found

    def _price_evidence(self, account: AccountRow, facts: MeterFacts) -> list[Evidence]:
        reply, reading = facts.price, facts.reading
        if reply is not None and (reading is None or reply.at >= reading.at):
            return [Evidence("command", str(reply.command_id), reply.at, "getprice")]
        if reading is not None and reading.curr_price_milli is not None:
            key = f"{account.company_no}/{reading.comm_no}/1/{reading.at.isoformat()}"
            price = Price.of_milli(reading.curr_price_milli).fixed()
            return [Evidence("reading", key, reading.at, f"curr_price {price}")]
        return []


def _with(found: Finding, evidence: list[Evidence]) -> Finding:
    if found.agrees or not evidence:
        return found
    return Finding(
        found.check,
        found.agrees,
        found.cause,
        found.at,
        found.source,
        found.meter,
        found.expected,
        found.difference,
        found.note,
        tuple(evidence),
        found.action,
    )


def _missing(coverage: tuple[int, datetime, datetime, int] | None) -> int:
    """Frozen days missing between the meter's first reading and its last, plus unbilled ones."""
    if coverage is None:
        return 1
    count, first, last, unbilled = coverage
    return max(0, (last - first).days + 1 - count) + unbilled


class _TariffView:
    """An account's tariff: the prices in force at an instant, and whether its meter has them."""

    def __init__(
        self,
        catalog: TariffBook,
        account: AccountRow,
        confirmed: Mapping[str, datetime],
        as_of: datetime,
    ) -> None:
        self.account = account
        self.tariff: Tariff | None
        self.changes: list[PriceChange] = []
        self.held: dict[str, datetime] = {}
        self._ladders: dict[str, tuple[Price, ...] | None] = {}
        self.verdicts: dict[tuple[Any, ...], bool] = {}
        try:
            self.tariff = catalog.get(account.tariff_id)
            self.held = meter_confirmations(self.tariff, confirmed, account.opened_on)
            self.changes = price_changes(self.tariff, as_of)
        except GasbillError:
            self.tariff = None

    def behind(self, at: datetime) -> bool:
        change = change_in_force(self.changes, at)
        if change is None:
            return False
        held_at = self.held.get(change.label)
        return held_at is None or held_at > at

    def prices(self, at: datetime) -> tuple[Price, ...] | None:
        change = change_in_force(self.changes, at)
        if change is None or self.tariff is None:
            return None
        if change.label not in self._ladders:
            try:
                ladder = ladder_for(
                    self.tariff, change, self.account.persons, self.account.opened_on
                )
                self._ladders[change.label] = ladder.prices
            except GasbillError:
                self._ladders[change.label] = None
        return self._ladders[change.label]

    def point(
        self, at: datetime, source: str, meter: tuple[Price, ...], priced_at: datetime | None = None
    ) -> PricePoint | None:
        when = at if priced_at is None else priced_at
        tariff = self.prices(when)
        if tariff is None:
            return None
        return PricePoint(at, source, meter, tariff, self.behind(when))
