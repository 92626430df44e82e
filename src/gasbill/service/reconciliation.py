"""Reconcile every meter-mode account against the books (DESIGN §9): read, compare, report.

Read-only: nothing here writes or commits. Accounts go a page at a time,
each page answered by a handful of grouped queries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from gasbill.adapters.db.repositories.campaigns import CampaignStore
from gasbill.adapters.db.repositories.reconciliation import (
    Hold,
    MeterAccount,
    ReadingAt,
    ReconciliationStore,
    ReplyAt,
)
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.commands import CtrlType, LadderPrice, RemoteChargeReturn, RemoteChargeState
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money, Price
from gasbill.domain.price_changes import PriceChange, change_in_force, ladder_for, price_changes
from gasbill.domain.reconciliation import (
    AccountLine,
    BalancePoint,
    CounterPoint,
    PricePoint,
    Tolerance,
    Totals,
    balance_point,
    check_balance,
    check_counters,
    check_price,
    totals,
)
from gasbill.domain.tariff import Tariff
from gasbill.service.meter_tariffs import meter_confirmations

PAGE = 500
JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Report:
    as_of: datetime
    company_no: str | None
    tolerance: Tolerance
    lines: tuple[AccountLine, ...]
    totals: Totals


def reconcile(
    uow: UnitOfWork,
    catalog: TariffCatalog,
    *,
    as_of: datetime,
    company_no: str | None = None,
    account_ids: Sequence[int] | None = None,
    tolerance: Tolerance = Tolerance(),
    codec: Codec | None = None,
) -> Report:
    codec = codec or Codec(ZoneInfo(catalog.default_zone))
    lines: list[AccountLine] = []
    with uow:
        store = ReconciliationStore(uow.session)
        for page in _pages(store, company_no, account_ids):
            lines.extend(_page(uow, store, catalog, codec, page, as_of, tolerance))
    return Report(as_of, company_no, tolerance, tuple(lines), totals(lines))


def _pages(
    store: ReconciliationStore, company_no: str | None, account_ids: Sequence[int] | None
) -> Iterator[list[MeterAccount]]:
    after = 0
    while page := store.meter_accounts(
        after_id=after, limit=PAGE, company_no=company_no, account_ids=account_ids
    ):
        yield page
        after = page[-1].account_id


def _page(
    uow: UnitOfWork,
    store: ReconciliationStore,
    catalog: TariffCatalog,
    codec: Codec,
    page: list[MeterAccount],
    as_of: datetime,
    tolerance: Tolerance,
) -> list[AccountLine]:
    ids = [a.account_id for a in page]
    meters = [a.meter_id for a in page]
    holds: dict[int, list[Hold]] = {}
    for hold in store.holds(ids, as_of):
        holds.setdefault(hold.account_id, []).append(hold)
    latest = store.latest_readings(ids, as_of, comparable=False)
    # only where the latest reading has a top-up in flight is an earlier one looked for
    in_flight = [a for a, r in latest.items() if _in_flight(holds.get(a, []), r.at)]
    comparable = {a: r for a, r in latest.items() if a not in in_flight}
    if in_flight:
        comparable.update(store.latest_readings(in_flight, as_of, comparable=True))
    top_ups = store.latest_replies(meters, CtrlType.REMOTE_CHARGE, as_of)
    states = store.latest_replies(meters, CtrlType.GET_CHARGE_STATE, as_of)
    prices = store.latest_replies(meters, CtrlType.GET_PRICE, as_of)
    coverage = store.reading_coverage(meters, as_of)
    confirmations = CampaignStore(uow.session).confirmations(ids)
    lines = []
    for account in page:
        mine = holds.get(account.account_id, [])
        behind = _TariffView(catalog, account, confirmations.get(account.account_id, {}))
        points = [
            _reading_point(r, mine)
            for r in (comparable.get(account.account_id), latest.get(account.account_id))
            if r is not None and r.remain_milli is not None
        ]
        top_up = top_ups.get(account.meter_id)
        if top_up is not None:
            points.extend(_top_up_point(codec, top_up, mine))
        point = balance_point(points)
        balance = check_balance(
            point,
            tariff_behind=point is not None and behind.behind(point.at),
            missing_readings=_missing(coverage.get(account.meter_id), point),
            tolerance=tolerance,
        )
        counters = check_counters(
            _counter_point(codec, states.get(account.meter_id), mine),
            tolerance=tolerance,
        )
        price = check_price(
            _price_point(
                codec, prices.get(account.meter_id), latest.get(account.account_id), behind
            ),
            tolerance=tolerance,
        )
        lines.append(
            AccountLine(
                account.account_id,
                account.number,
                account.company_no,
                account.comm_no,
                (balance, counters, price),
            )
        )
    return lines


def _in_flight(holds: list[Hold], at: datetime) -> Money:
    return Money.of_fen(sum(h.amount_fen for h in holds if h.in_flight_at(at)))


def _reading_point(reading: ReadingAt, holds: list[Hold]) -> BalancePoint:
    assert reading.remain_milli is not None
    return BalancePoint(
        reading.at,
        "reading",
        Money(Decimal(reading.remain_milli).scaleb(-3)),
        Money.of_fen(reading.ledger_fen),
        _in_flight(holds, reading.at),
    )


def _top_up_point(codec: Codec, reply: ReplyAt, holds: list[Hold]) -> list[BalancePoint]:
    result = codec.decode_result(str(CtrlType.REMOTE_CHARGE), reply.return_data)
    if not isinstance(result, RemoteChargeReturn) or result.remain is None or not result.applied:
        return []
    ledger = Money.of_fen(reply.ledger_fen)
    return [BalancePoint(reply.at, "top_up", result.remain, ledger, _in_flight(holds, reply.at))]


def _counter_point(codec: Codec, reply: ReplyAt | None, holds: list[Hold]) -> CounterPoint | None:
    """The meter's remote counters at its answer against the ledger's posted top-ups by then."""
    if reply is None:
        return None
    state = codec.decode_result(str(CtrlType.GET_CHARGE_STATE), reply.return_data)
    if not isinstance(state, RemoteChargeState):
        return None
    posted = [h for h in holds if h.posted_by(reply.at)]
    pending = [h for h in holds if h.in_flight_at(reply.at)]
    return CounterPoint(
        reply.at,
        state.remote_charge_times,
        state.remote_total_value,
        len(posted),
        Money.of_fen(sum(h.amount_fen for h in posted)),
        len(pending),
        Money.of_fen(sum(h.amount_fen for h in pending)),
    )


def _price_point(
    codec: Codec, reply: ReplyAt | None, reading: ReadingAt | None, view: _TariffView
) -> PricePoint | None:
    """The later of the meter's last `getprice` ladder and its last reading's `curr_price`."""
    if reply is not None and (reading is None or reply.at >= reading.at):
        ladder = codec.decode_result(str(CtrlType.GET_PRICE), reply.return_data)
        if isinstance(ladder, LadderPrice):
            return _against_tariff(view, reply.at, "getprice", ladder.prices)
    if reading is not None and reading.curr_price_milli is not None:
        meter = (Price.of_milli(reading.curr_price_milli),)
        # a frozen reading closes the period before it: priced by the tariff in force then
        closed = reading.at - JUST_BEFORE
        return _against_tariff(view, reading.at, "curr_price", meter, priced_at=closed)
    return None


def _against_tariff(
    view: _TariffView,
    at: datetime,
    source: str,
    meter: tuple[Price, ...],
    *,
    priced_at: datetime | None = None,
) -> PricePoint | None:
    when = at if priced_at is None else priced_at
    tariff = view.prices(when)
    if tariff is None:
        return None
    return PricePoint(at, source, meter, tariff, view.behind(when))


def _missing(
    coverage: tuple[int, datetime, datetime, int] | None, point: BalancePoint | None
) -> int:
    """Frozen days missing between the meter's first reading and its last, plus unbilled ones."""
    if coverage is None:
        return 1
    count, first, last, unbilled = coverage
    return max(0, (last - first).days + 1 - count) + unbilled


class _TariffView:
    """An account's tariff: the prices in force at an instant, and whether its meter has them."""

    def __init__(
        self, catalog: TariffCatalog, account: MeterAccount, confirmed: dict[str, datetime]
    ) -> None:
        self.account = account
        self.tariff: Tariff | None
        self.held: dict[str, datetime]
        try:
            self.tariff = catalog.get(account.tariff_id)
            self.held = meter_confirmations(self.tariff, confirmed, account.opened_on)
        except GasbillError:
            self.tariff = None
            self.held = {}

    def _change(self, at: datetime) -> PriceChange | None:
        if self.tariff is None:
            return None
        return change_in_force(price_changes(self.tariff, at), at)

    def behind(self, at: datetime) -> bool:
        change = self._change(at)
        if change is None:
            return False
        held_at = self.held.get(change.label)
        return held_at is None or held_at > at

    def prices(self, at: datetime) -> tuple[Price, ...] | None:
        change = self._change(at)
        if change is None or self.tariff is None:
            return None
        try:
            return ladder_for(
                self.tariff, change, self.account.persons, self.account.opened_on
            ).prices
        except GasbillError:
            return None
