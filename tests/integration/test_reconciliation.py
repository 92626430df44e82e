"""Reconciliation against a real database: one meter-mode account per likely cause.

The ledger, the commands' stored answers and the readings are written as the
outbox, billing and push paths leave them; the report reads only those.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gasbill.adapters.db.tables.accounts import Meter
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.adapters.platform.codec import Codec
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import (
    AccountCode,
    HoldAction,
    Transfer,
    TransferKind,
    TransferStatus,
    new_transfer_id,
    resolve_hold,
)
from gasbill.domain.money import Money
from gasbill.domain.outbox import CommandStatus
from gasbill.domain.reconciliation import Cause, Check
from gasbill.service import reconciliation
from gasbill.service.ledger import record_payment
from gasbill.service.reconciliation import reconcile
from gasbill.service.reconciliation_report import render_csv, render_html, report_json
from tests.integration.billing_helpers import COMPANY, make_account, midnight

pytestmark = pytest.mark.db

DAY1 = date(2025, 3, 1)
T0 = midnight(DAY1) - timedelta(hours=12)  # the payment and its top-up, the day before
AS_OF = datetime(2025, 3, 20, tzinfo=UTC)


class Books:
    """Writes one meter-mode account's history: payments, top-ups, charges, readings, answers."""

    def __init__(self, uow, catalog, number, comm_no, tariff="beijing-residential", opened=None):
        self.uow = uow
        self.comm_no = comm_no
        self.account_id = make_account(
            uow,
            catalog,
            number=number,
            comm_no=comm_no,
            mode=BillingMode.METER,
            tariff=tariff,
            opened=opened or date(2025, 1, 1),
        )
        with uow:
            self.meter_id = uow.session.execute(
                sa.select(Meter.__table__.c.id).where(Meter.__table__.c.comm_no == comm_no)
            ).scalar_one()
        self.times = 0
        self.total_fen = 0

    def pay(self, fen, at=T0):
        record_payment(
            self.uow,
            account_id=self.account_id,
            amount_fen=fen,
            channel="counter",
            idempotency_key=f"pay-{self.account_id}-{at.isoformat()}-{fen}",
            actor="clerk",
            at=at,
        )

    def top_up(self, fen, start, end=None, remain=None):
        """A remote top-up held at `start`, confirmed at `end` (None: still in flight)."""
        hold = Transfer(
            id=new_transfer_id(),
            idempotency_key=f"hold-{self.account_id}-{start.isoformat()}",
            debit_account=AccountCode.prepaid(str(self.account_id)),
            credit_account=AccountCode.meter_credit(str(self.account_id)),
            amount=fen,
            kind=TransferKind.TOP_UP,
            status=TransferStatus.PENDING,
            effective_at=start,
            recorded_at=start,
            reason="remote top-up",
            actor="clerk",
        )
        with self.uow:
            self.uow.ledger.record(hold)
            command = self._command(
                CtrlType.REMOTE_CHARGE,
                start,
                end,
                None if remain is None else {"success": 170, "remain": remain},
                hold_id=hold.id,
                amount_fen=fen,
                charge_times=self.times + 1,
                total_fen=self.total_fen + fen,
            )
            if end is not None:
                self.uow.ledger.record(
                    resolve_hold(hold, HoldAction.POST, key=f"post:{hold.id}", at=end)
                )
                self.times, self.total_fen = command.charge_times, command.total_fen
            self.uow.commit()

    def charge(self, fen, at):
        with self.uow:
            self.uow.ledger.record(
                Transfer(
                    id=new_transfer_id(),
                    idempotency_key=f"charge-{self.account_id}-{at.isoformat()}",
                    debit_account=AccountCode.meter_credit(str(self.account_id)),
                    credit_account=AccountCode.revenue(),
                    amount=fen,
                    kind=TransferKind.CHARGE,
                    effective_at=at,
                    recorded_at=at,
                    reason="gas",
                    actor="billing",
                )
            )
            self.uow.commit()

    def reading(self, at, remain, price="2.610"):
        with self.uow:
            self.uow.session.add(
                MeterReading(
                    company_no=COMPANY,
                    meter_comm_no=self.comm_no,
                    data_type=1,
                    acquisition_time=at,
                    data_guid=os.urandom(16),
                    std_sum=1000,
                    remain_money=int(Money(remain).value.scaleb(3)),
                    curr_price=int(Money(price).value.scaleb(3)),
                )
            )
            self.uow.commit()

    def charge_state(self, at, times, total):
        data = {
            "card_charge_times": 0,
            "card_charge_value": "0",
            "card_total_value": "0",
            "remote_charge_times": times,
            "remote_charge_value": "0",
            "remote_total_value": total,
        }
        with self.uow:
            self._command(CtrlType.GET_CHARGE_STATE, at, at, data)
            self.uow.commit()

    def _command(self, ctrl_type, at, end, data, **fields):
        command = Command(
            define_no=f"d-{os.urandom(6).hex()}",
            company_no=COMPANY,
            meter_id=self.meter_id,
            meter_comm_no=self.comm_no,
            account_id=self.account_id,
            ctrl_type=str(ctrl_type),
            status=str(CommandStatus.DONE if end is not None else CommandStatus.SENT),
            return_data=None if data is None else json.dumps(data),
            next_attempt_at=at,
            timeout_at=at + timedelta(days=3),
            sent_at=at,
            finished_at=end,
            created_at=at,
            **fields,
        )
        self.uow.session.add(command)
        self.uow.session.flush()
        return command

    def funded(self, fen=10_000):
        """Paid and topped up the day before DAY1, the meter confirming it an hour later."""
        self.pay(fen)
        self.top_up(fen, T0, T0 + timedelta(hours=1), remain=str(Money.of_fen(fen).value))


def daily(books, first, days, start_fen, per_day_fen, *, skip=(), remain_shift="0"):
    """A day's charge and the next midnight's reading, the meter holding what the books say."""
    balance = start_fen
    for n in range(days):
        at = midnight(first + timedelta(days=n))
        if n:
            balance -= per_day_fen
            books.charge(per_day_fen, at)
        if n not in skip:
            books.reading(at, str(Money.of_fen(balance).value + Money(remain_shift).value))
    return balance


@pytest.fixture(autouse=True)
def ranges_of_one_account(monkeypatch):
    """Two connections share even a handful of accounts (`PART_MIN` ids each otherwise),
    so that every test here compares the report on two connections with the one on one."""
    monkeypatch.setattr(reconciliation, "PART_MIN", 1)


def full(uow, catalog, **kwargs):
    """The report with agreeing accounts listed too; the first pass checked against it, and
    the report on two connections (PostgreSQL: one snapshot) against the one on one."""
    report = reconcile(uow, catalog, codec=codec_of(catalog), include_agreeing=True, **kwargs)
    split = reconcile(
        uow, catalog, codec=codec_of(catalog), include_agreeing=True, connections=2, **kwargs
    )
    assert (split.totals, split.lines) == (report.totals, report.lines)
    same_without_listing(uow, catalog, report, **kwargs)
    return report


def same_without_listing(uow, catalog, report, **kwargs):
    """The usual report (the database's first pass counting the agreeing accounts) and the
    full path alone give the same totals and the same lines as the listing of every one; so
    does the usual report on two connections."""
    codec = codec_of(catalog)
    quick = reconcile(uow, catalog, codec=codec, **kwargs)
    slow = reconcile(uow, catalog, codec=codec, first_pass=False, **kwargs)
    split = reconcile(uow, catalog, codec=codec, connections=2, **kwargs)
    assert quick.totals == slow.totals == split.totals == report.totals
    assert (
        quick.lines
        == slow.lines
        == split.lines
        == tuple(line for line in report.lines if not line.agrees)
    )


def codec_of(catalog):
    """The wire format's codec, as the composition root gives reconcile one."""
    return Codec(ZoneInfo(catalog.default_zone))


def line_of(report, account_id):
    return next(line for line in report.lines if line.account_id == account_id)


def cause(line, check):
    return line.finding(check).cause


# -- the tests ----------------------------------------------------------------------------


def test_a_meter_that_matches_the_books_agrees_on_every_check(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()
    daily(books, DAY1, 4, 10_000, 300)
    books.charge_state(midnight(DAY1) + timedelta(hours=2), 1, "100.000")
    report = full(uow, catalog, as_of=AS_OF)
    line = line_of(report, books.account_id)
    assert line.agrees, line.findings
    balance = line.finding(Check.BALANCE)
    assert balance.at == midnight(DAY1 + timedelta(days=3))
    assert balance.difference == Money("0")
    assert report.totals.accounts == 1 and report.totals.agreeing == 1


def test_the_top_ups_returned_remain_is_a_checkpoint(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()
    books.charge_state(T0 + timedelta(hours=2), 1, "100.000")
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    balance = line.finding(Check.BALANCE)
    assert balance.source == "top_up" and balance.agrees


def test_a_late_top_up_answer_is_no_checkpoint_when_a_reading_is(uow, catalog):
    """Found in the demo (seed 7): a top-up's answer came a day late (a lost reply, settled).
    Its `remain` is what the meter held when it applied the money, after hours of gas the
    ledger bills only at the next frozen reading; set against the ledger when the answer
    arrived (after that day's charge too) it made a false difference of a day's gas. A
    comparable frozen reading is the checkpoint; the answer only stands in when none is."""
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()
    daily(books, DAY1, 3, 10_000, 300)  # meter and books agree at each midnight: 94.00
    sent = midnight(DAY1 + timedelta(days=2)) + timedelta(hours=1)
    books.pay(5_000, sent)
    # the meter used 0.60 of gas since midnight, then loaded 50.00: it held 143.40
    books.top_up(5_000, sent, sent + timedelta(days=1), remain="143.40")
    books.reading(midnight(DAY1 + timedelta(days=3)), "141.00")  # taken with the top-up in flight
    books.charge(300, midnight(DAY1 + timedelta(days=3)))
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    balance = line.finding(Check.BALANCE)
    assert balance.agrees, balance
    assert balance.source == "reading" and balance.at == midnight(DAY1 + timedelta(days=2))


def test_a_reading_with_a_top_up_in_flight_is_not_compared(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()
    daily(books, DAY1, 2, 10_000, 300)  # agrees up to DAY1+1
    flight = midnight(DAY1 + timedelta(days=1)) + timedelta(hours=6)
    books.pay(5_000, flight)
    books.top_up(5_000, flight)  # sent, the meter applied it, we have no answer yet
    books.reading(midnight(DAY1 + timedelta(days=2)), "146.70")
    books.charge(300, midnight(DAY1 + timedelta(days=2)))
    books.charge_state(flight + timedelta(hours=1), 2, "150.000")
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    balance = line.finding(Check.BALANCE)
    assert balance.agrees and balance.at == midnight(DAY1 + timedelta(days=1))
    assert cause(line, Check.COUNTERS) is Cause.TOP_UP_IN_FLIGHT


def test_with_only_readings_in_flight_the_difference_is_the_top_up(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.pay(10_000)
    books.top_up(10_000, T0)  # never answered
    books.reading(midnight(DAY1), "100.00")
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    balance = line.finding(Check.BALANCE)
    assert balance.cause is Cause.TOP_UP_IN_FLIGHT
    assert balance.difference == Money("100")


def test_counters_are_compared_with_what_was_confirmed_when_the_meter_answered(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()  # confirmed at T0 + 1h: the answer below settles it at that instant
    books.charge_state(T0 + timedelta(hours=1), 1, "100.000")
    later = midnight(DAY1) + timedelta(hours=5)
    books.pay(5_000, later)
    books.top_up(5_000, later, later + timedelta(hours=1))  # confirmed after the answer
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    counters = line.finding(Check.COUNTERS)
    assert counters.agrees, counters
    assert counters.expected == "1 / 100.000"


def test_a_price_change_not_on_the_meter(uow, catalog):
    july = date(2025, 7, 10)
    books = Books(uow, catalog, "A1", "10000000000001", tariff="price-change-example")
    books.pay(10_000, midnight(july) - timedelta(hours=12))
    books.top_up(10_000, midnight(july) - timedelta(hours=12), midnight(july) - timedelta(hours=11))
    books.reading(midnight(july), "95.00", price="3.000")  # the meter charged more than we
    line = line_of(full(uow, catalog, as_of=datetime(2025, 8, 1, tzinfo=UTC)), books.account_id)
    assert cause(line, Check.PRICE) is Cause.TARIFF_NOT_ON_METER
    assert line.finding(Check.PRICE).difference is not None
    assert cause(line, Check.BALANCE) is Cause.TARIFF_NOT_ON_METER


def test_a_few_fen_apart_is_the_meters_rounding(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()
    daily(books, DAY1, 3, 10_000, 300, remain_shift="-0.04")
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    assert cause(line, Check.BALANCE) is Cause.ROUNDING_ON_METER
    assert line.finding(Check.BALANCE).difference == Money("-0.04")


def test_a_gap_in_the_readings_explains_a_difference(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()
    daily(books, DAY1, 5, 10_000, 300, skip=(1, 2), remain_shift="-2")
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    assert cause(line, Check.BALANCE) is Cause.MISSING_READINGS


def test_an_account_with_no_readings_or_answers_is_missing_them(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    assert [f.cause for f in line.findings] == [Cause.MISSING_READINGS] * 3


def test_a_difference_nothing_explains(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()
    daily(books, DAY1, 3, 10_000, 300, remain_shift="-5")
    books.charge_state(midnight(DAY1), 2, "150.000")  # a top-up the books never held
    line = line_of(full(uow, catalog, as_of=AS_OF), books.account_id)
    assert cause(line, Check.BALANCE) is Cause.UNEXPLAINED
    assert cause(line, Check.COUNTERS) is Cause.UNEXPLAINED


def test_accounts_of_both_modes_of_the_company_asked_for_are_reported(uow, catalog):
    meter = Books(uow, catalog, "A1", "10000000000001")
    system = make_account(
        uow, catalog, number="S1", comm_no="10000000000002", mode=BillingMode.SYSTEM
    )
    report = full(uow, catalog, as_of=AS_OF)
    assert [(line.account_id, line.billing_mode) for line in report.lines] == [
        (meter.account_id, "meter"),
        (system, "system"),
    ]
    assert full(uow, catalog, as_of=AS_OF, company_no="9999").lines == ()
    assert full(uow, catalog, as_of=AS_OF, account_ids=[meter.account_id + 99]).lines == ()


def test_readings_and_answers_after_as_of_are_not_seen(uow, catalog):
    books = Books(uow, catalog, "A1", "10000000000001")
    books.funded()
    daily(books, DAY1, 3, 10_000, 300)
    line = line_of(full(uow, catalog, as_of=midnight(DAY1)), books.account_id)
    assert line.finding(Check.BALANCE).at == midnight(DAY1)


def test_the_report_renders_as_json_csv_and_an_escaped_page(uow, catalog):
    books = Books(uow, catalog, "<b>&1", "10000000000001")
    books.funded()
    daily(books, DAY1, 3, 10_000, 300, remain_shift="-5")
    report = full(uow, catalog, as_of=AS_OF)
    data = report_json(report)
    assert data["totals"]["by_cause"]["unexplained"] == 1
    assert data["accounts"][0]["balance"]["difference"] == "-5.000"
    rows = render_csv(report).splitlines()
    assert rows[0].startswith("account_id,account_number")
    assert len(rows) == 1 + 3
    page = render_html(report)
    assert "&lt;b&gt;&amp;1" in page and "<b>&1" not in page
    assert page.count("<svg") == 2


def test_meters_that_confirmed_a_price_change_are_priced_by_it_on_both_paths(uow, catalog):
    """The database's first pass groups accounts by the price changes their meters
    confirmed; the report is the same as the full path's, confirmed or not."""
    from gasbill.adapters.db.tables.campaigns import Campaign, CampaignMeter

    july = date(2025, 7, 10)
    with uow:
        campaign = Campaign(
            tariff_id="price-change-example",
            label="2025-07 increase",
            effective_at=midnight(date(2025, 7, 1)),
        )
        uow.session.add(campaign)
        uow.commit()
        campaign_id = campaign.id
    accounts = []
    for n, (confirmed, price) in enumerate(((True, "3.200"), (True, "3.200"), (False, "3.200"))):
        books = Books(uow, catalog, f"C{n}", f"1000000000010{n}", tariff="price-change-example")
        books.pay(10_000, midnight(july) - timedelta(hours=12))
        books.top_up(
            10_000, midnight(july) - timedelta(hours=12), midnight(july) - timedelta(hours=11)
        )
        books.reading(midnight(july), "100.00", price=price)
        books.charge_state(midnight(july) + timedelta(hours=1), 1, "100.000")
        if confirmed:
            with uow:
                done = midnight(date(2025, 7, 2))
                setprice = books._command(CtrlType.SET_PRICE, done, done, {})
                uow.session.add(
                    CampaignMeter(
                        campaign_id=campaign_id,
                        meter_id=books.meter_id,
                        account_id=books.account_id,
                        setprice_id=setprice.id,
                        status="confirmed",
                    )
                )
                uow.commit()
        accounts.append(books.account_id)
    report = full(uow, catalog, as_of=datetime(2025, 8, 1, tzinfo=UTC))
    lines = {line.account_id: line for line in report.lines}
    assert lines[accounts[0]].finding(Check.PRICE).agrees
    assert lines[accounts[1]].finding(Check.PRICE).agrees


def test_groups_that_pass_the_integer_checks_but_not_the_counters_or_price_are_listed(uow, catalog):
    """The first pass's groups that fail in Python (counters, price) are found again by
    their values and take the full path; their neighbours in the database still agree."""
    ids = []
    for n, (times, total, price) in enumerate(
        (
            (1, "100.000", "2.610"),
            (2, "200.000", "2.610"),  # the meter counts a top-up the books do not have
            (1, "100.000", "9.990"),  # a price the tariff never had
            (1, "100.000", "2.610"),
        )
    ):
        books = Books(uow, catalog, f"G{n}", f"1000000000020{n}")
        books.funded()
        balance = 10_000
        for day in range(4):
            at = midnight(DAY1 + timedelta(days=day))
            if day:
                balance -= 300
                books.charge(300, at)
            books.reading(at, str(Money.of_fen(balance).value), price=price)
        books.charge_state(midnight(DAY1) + timedelta(hours=2), times, total)
        ids.append(books.account_id)
    report = full(uow, catalog, as_of=AS_OF)
    lines = {line.account_id: line for line in report.lines}
    assert lines[ids[0]].agrees and lines[ids[3]].agrees
    assert not lines[ids[1]].finding(Check.COUNTERS).agrees
    assert not lines[ids[2]].finding(Check.PRICE).agrees
    assert report.totals.agreeing == 2
