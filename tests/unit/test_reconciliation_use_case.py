"""Reconciliation's use case (service.reconciliation) on fakes, without a database: what the
service decides from the rows its repositories hand back.

The rows are built here as the database adapter returns them (`reconciliation_rows`);
`FakeReconciliationBooks` answers each read for a scope and an instant. The codec is a
stand-in that reads this file's own notation (`state 2 100.000`: two remote top-ups, 100
yuan in all; `topup 90.000`: a top-up applied, 90 yuan left; `ladder 3.00 ...`).

The tariff is `price-change-example`: 3.00 / 3.60 / 4.50 yuan per m³ until 2025-07-01
(local midnight), 3.20 / 3.84 / 4.80 from then. A meter-mode account holds 50 yuan at its
reading of 2025-06-10 and has had two top-ups (100 yuan); every expected value below is
worked out from the rules of domain.reconciliation and domain.reconciliation_system.

What only the database shows (the set-based first pass, the ledger as of an instant, the
holds in flight at a reading) is in tests/integration/test_reconciliation*.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.command_results import (
    CHARGE_APPLIED,
    CHARGE_REFUSED,
    RemoteChargeReturn,
    RemoteChargeState,
)
from gasbill.domain.commands import CtrlType, LadderPrice
from gasbill.domain.money import Money, Price, Volume
from gasbill.domain.outbox import CommandStatus
from gasbill.domain.reconciliation import AccountLine, Cause, Check, Evidence, Finding, Tolerance
from gasbill.service import reconciliation
from gasbill.service.reconciliation import Report, reconcile
from gasbill.service.reconciliation_rows import (
    AccountRow,
    HoldRow,
    LedgerSums,
    MeterGroup,
    ReadingRow,
    ReplacementRow,
    ReplyRow,
    Scope,
    ValveRow,
    Verdicts,
)
from tests.conftest import ROOT
from tests.factories import ZONE_NAME, at
from tests.fakes import FakeReconciliationBooks, FakeReconciliationUnitOfWork

CATALOG = TariffCatalog(ROOT / "tariffs", ZONE_NAME)
TARIFF = "price-change-example"
COMPANY = "1001"
DAY = at(2025, 6, 10)  # a frozen reading, local midnight
AS_OF = at(2025, 6, 20)
STATE, TOP_UP, PRICE = CtrlType.GET_CHARGE_STATE, CtrlType.REMOTE_CHARGE, CtrlType.GET_PRICE
OFF, ON = str(CtrlType.SET_VALVE_OFF), str(CtrlType.SET_VALVE_ON)
DONE, SENT = str(CommandStatus.DONE), str(CommandStatus.SENT)


class Answers:
    """The codec's reading of the meters' answers, in this file's notation."""

    def decode_result(self, ctrl_type: str | None, return_data: object) -> object:
        kind, *words = str(return_data).split()
        if ctrl_type == STATE and kind == "state":
            zero = Money("0")
            return RemoteChargeState(0, zero, zero, int(words[0]), zero, Money(words[1]))
        if ctrl_type == TOP_UP and kind == "topup":
            return RemoteChargeReturn(CHARGE_APPLIED, remain=Money(words[0]))
        if ctrl_type == TOP_UP and kind == "refused":
            return RemoteChargeReturn(CHARGE_REFUSED)
        if ctrl_type == PRICE and kind == "ladder":
            ladders = tuple(Volume(v) for v in ("300", "600", "600", "600"))
            return LadderPrice(tuple(Price(p) for p in words), ladders, date(2025, 1, 1), 12)
        return None


def account(
    i: int,
    *,
    mode: str = "meter",
    company: str = COMPANY,
    cutoff: int = 0,
    reopen: int = 0,
    prepaid_posted: int = 0,
    below_since: datetime | None = None,
) -> AccountRow:
    return AccountRow(
        i, f"A{i}", company, mode, TARIFF, 1, date(2025, 1, 1), cutoff, reopen,
        100 + i, f"M{i}", at(2025, 1, 1), 0, 1000 + i, prepaid_posted, 2000 + i, 0, below_since,
    )  # fmt: skip


def reading(
    i: int, when: datetime = DAY, remain: str = "50.000", credit_fen: int = 5000, **more: int
) -> ReadingRow:
    """A frozen reading with `remain` on the meter, meter_credit then, at 3.000 yuan/m³."""
    price = more.get("price_milli", 3000)
    flight = more.get("in_flight_fen", 0)
    return ReadingRow(i, f"M{i}", when, int(Decimal(remain) * 1000), price, credit_fen, flight)


def charge_state(i: int, data: str = "state 2 100.000", **more: int) -> ReplyRow:
    """A getchargestate answered two hours after DAY; the books posted two top-ups, 100
    yuan (and, read with the ledger, what they had in flight then)."""
    return ReplyRow(
        i,
        500 + i,
        DAY + timedelta(hours=2),
        data,
        posted_times=more.get("posted_times", 2),
        posted_fen=more.get("posted_fen", 10_000),
        in_flight_times=more.get("in_flight_times", 0),
        in_flight_fen=more.get("in_flight_fen", 0),
    )


def meter_account(books: FakeReconciliationBooks, i: int, **reading_fields: object) -> None:
    """An account whose meter agrees with the books on every check, but for what is given."""
    books.accounts.append(account(i))
    books.readings.append(reading(i, **reading_fields))  # type: ignore[arg-type]
    books.replies.setdefault(STATE, []).append(charge_state(i))


def run(books: FakeReconciliationBooks, **kwargs: object) -> Report:
    kwargs.setdefault("as_of", AS_OF)
    kwargs.setdefault("first_pass", False)
    uow = FakeReconciliationUnitOfWork(books)
    return reconcile(uow, CATALOG, codec=Answers(), **kwargs)  # type: ignore[arg-type]


def only_line(report: Report) -> AccountLine:
    assert len(report.lines) == 1, report.lines
    return report.lines[0]


def found(report: Report, check: Check) -> Finding:
    finding = only_line(report).finding(check)
    assert finding is not None
    return finding


def reading_key(i: int, when: datetime) -> str:
    return f"{COMPANY}/M{i}/1/{when.isoformat()}"


# -- meter mode: agreeing ----------------------------------------------------------------------


def test_a_meter_agreeing_with_the_books_is_counted_not_listed_nor_looked_into():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    report = run(books)
    assert report.lines == ()
    assert (report.totals.accounts, report.totals.agreeing, report.totals.differing) == (1, 1, 0)
    assert not report.differs
    # decided from the integers alone: no evidence read
    assert [name for name, _ in books.asked if name == "holds"] == []


def test_listing_every_account_builds_the_agreeing_line_without_the_first_pass():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    report = run(books, include_agreeing=True, first_pass=True)
    line = only_line(report)
    assert line.agrees and line.causes == () and line.billing_mode == "meter"
    assert (line.account_number, line.meter_comm_no) == ("A1", "M1")
    balance = line.finding(Check.BALANCE)
    assert balance is not None
    assert (balance.at, balance.source, balance.difference) == (DAY, "reading", Money("0"))
    assert (balance.meter, balance.expected) == ("50.000", "50.000")
    counters = line.finding(Check.COUNTERS)
    assert counters is not None and counters.agrees
    assert (counters.meter, counters.expected) == ("2 / 100.000", "2 / 100.000")
    price = line.finding(Check.PRICE)
    assert price is not None and price.agrees and price.source == "curr_price"
    assert all(not f.evidence and not f.action for f in line.findings)
    assert "verdicts" not in [name for name, _ in books.asked]
    assert report.totals.agreeing == 1


# -- meter mode: the balance -------------------------------------------------------------------


def test_a_balance_off_with_nothing_to_explain_it_is_unexplained_with_its_evidence():
    books = FakeReconciliationBooks()
    meter_account(books, 1, remain="40.000")
    report = run(books)
    balance = found(report, Check.BALANCE)
    assert not balance.agrees and balance.cause is Cause.UNEXPLAINED
    assert balance.difference == Money("-10.000")
    assert balance.evidence == (
        Evidence("reading", reading_key(1, DAY), DAY, "remain 40.00 yuan"),
        Evidence("ledger", "meter_credit:1", DAY, "meter_credit 50.00 yuan"),
    )
    assert balance.action.startswith("Check the listed readings, commands and transfers")
    counters, price = found(report, Check.COUNTERS), found(report, Check.PRICE)
    assert counters.agrees and price.agrees and not counters.evidence
    totals = report.totals
    assert (totals.accounts, totals.agreeing, totals.differing) == (1, 0, 1)
    assert totals.by_cause["unexplained"] == 1 and totals.by_check == {
        "balance": 1, "counters": 0, "price": 0, "ledger": 0, "valve": 0, "replacement": 0,
    }  # fmt: skip
    assert totals.balance_difference == Money("-10")
    assert totals.balance_difference_abs == Money("10")


def test_a_balance_a_few_fen_off_is_the_meters_rounding():
    books = FakeReconciliationBooks()
    meter_account(books, 1, remain="50.050")
    balance = found(run(books), Check.BALANCE)
    assert balance.cause is Cause.ROUNDING_ON_METER and balance.difference == Money("0.05")
    assert balance.action.startswith("No action")


def test_within_the_tolerance_given_a_balance_agrees():
    books = FakeReconciliationBooks()
    meter_account(books, 1, remain="50.050")
    tolerance = Tolerance(balance=Money("0.05"))
    report = run(books, tolerance=tolerance)
    assert report.lines == () and report.totals.agreeing == 1


def test_a_reading_with_a_top_up_in_flight_gives_way_to_the_latest_comparable_one():
    books = FakeReconciliationBooks()
    meter_account(books, 1)  # DAY: 50 on the meter and in the books
    # the next midnight the meter holds the 20 yuan top-up the books have not posted yet
    later = DAY + timedelta(days=1)
    books.readings.append(reading(1, later, "70.000", 5000, in_flight_fen=2000))
    report = run(books, include_agreeing=True)
    balance = found(report, Check.BALANCE)
    assert balance.agrees and balance.at == DAY
    assert run(books).totals.agreeing == 1  # checked on the full path, and agreeing


def test_a_top_up_in_flight_with_no_comparable_reading_is_put_down_to_it():
    books = FakeReconciliationBooks()
    meter_account(books, 1, remain="70.000", in_flight_fen=2000)
    start = DAY - timedelta(hours=1)
    books.holds.append(HoldRow(1, "t-20", 2000, start, None, False))
    books.holds.append(HoldRow(1, "t-old", 5000, at(2025, 5, 1), at(2025, 5, 1, 1), True))
    balance = found(run(books), Check.BALANCE)
    assert balance.cause is Cause.TOP_UP_IN_FLIGHT and balance.difference == Money("20")
    assert balance.note == "20.000 in flight"
    assert balance.evidence[-1] == Evidence(
        "transfer", "t-20", start, "top-up 20.00 yuan in flight"
    )
    assert len(balance.evidence) == 3  # the reading, meter_credit, the hold then in flight
    assert balance.action.startswith("Wait for the top-up's answer")


def test_a_top_up_answer_stands_in_for_a_reading_with_meter_credit_then():
    books = FakeReconciliationBooks()
    books.accounts.append(account(1))
    books.replies[STATE] = [charge_state(1)]
    when = DAY + timedelta(hours=5)
    books.replies[TOP_UP] = [ReplyRow(1, 70, when, "topup 90.000", credit_fen=10_000)]
    balance = found(run(books), Check.BALANCE)
    assert (balance.source, balance.at, balance.difference) == ("top_up", when, Money("-10"))
    # no reading at all: the meter's frozen readings are missing
    assert balance.cause is Cause.MISSING_READINGS
    assert balance.evidence[:2] == (
        Evidence("command", "70", when, "remain 90.00 yuan after the top-up"),
        Evidence("ledger", "meter_credit:1", when, "meter_credit 100.00 yuan"),
    )
    books.replies[TOP_UP] = [ReplyRow(1, 70, when, "topup 100.000", credit_fen=10_000)]
    assert found(run(books, include_agreeing=True), Check.BALANCE).agrees


def test_a_refused_top_up_is_no_checkpoint_and_no_reading_is_missing_readings():
    books = FakeReconciliationBooks()
    books.accounts.append(account(1))
    books.replies[STATE] = [charge_state(1)]
    books.replies[TOP_UP] = [ReplyRow(1, 70, DAY, "refused", credit_fen=10_000)]
    report = run(books)
    balance, price = found(report, Check.BALANCE), found(report, Check.PRICE)
    assert balance.cause is Cause.MISSING_READINGS and balance.difference is None
    assert balance.action.startswith("Ask the platform for the missing frozen readings")
    assert price.cause is Cause.MISSING_READINGS
    assert price.action == "Send getprice to the meter."


def test_a_gap_in_the_frozen_readings_explains_a_larger_difference():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    # read on DAY, DAY+1 and DAY+3: the midnight of DAY+2 is missing
    for n, remain in ((1, "47.000"), (3, "40.000")):
        books.readings.append(reading(1, DAY + timedelta(days=n), remain, 5000))
    balance = found(run(books), Check.BALANCE)
    assert balance.at == DAY + timedelta(days=3) and balance.difference == Money("-10")
    assert balance.cause is Cause.MISSING_READINGS


def test_a_reading_not_yet_billed_explains_a_larger_difference():
    books = FakeReconciliationBooks()
    meter_account(books, 1, remain="40.000")
    books.unbilled[1] = [DAY]
    assert found(run(books), Check.BALANCE).cause is Cause.MISSING_READINGS
    books.unbilled[1] = [AS_OF + timedelta(days=1)]  # waiting only after the report's instant
    assert found(run(books), Check.BALANCE).cause is Cause.UNEXPLAINED


# -- meter mode: the counters ----------------------------------------------------------------


def test_a_top_up_the_meter_counts_while_one_is_in_flight_is_put_down_to_it():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    start = DAY + timedelta(hours=1)
    books.replies[STATE] = [
        charge_state(1, "state 3 150.000", in_flight_times=1, in_flight_fen=5000)
    ]
    books.holds.append(HoldRow(1, "t-50", 5000, start, None, False))
    report = run(books)
    counters = found(report, Check.COUNTERS)
    assert counters.cause is Cause.TOP_UP_IN_FLIGHT
    assert counters.difference == Money("50") and counters.note == "+1 top-ups"
    assert counters.evidence == (
        Evidence("command", "501", DAY + timedelta(hours=2), "3 top-ups, 150.00 yuan"),
        Evidence("transfer", "t-50", start, "50.00 yuan in flight"),
    )
    assert report.totals.counters_difference == Money("50")
    assert found(report, Check.BALANCE).agrees


def test_a_top_up_the_books_never_held_is_unexplained():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    books.replies[STATE] = [charge_state(1, "state 3 150.000")]
    counters = found(run(books), Check.COUNTERS)
    assert counters.cause is Cause.UNEXPLAINED
    assert counters.action.startswith("Look up the top-ups the meter counts")


def test_no_charge_state_answered_is_missing():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    books.replies[STATE] = []
    counters = found(run(books), Check.COUNTERS)
    assert counters.cause is Cause.MISSING_READINGS and counters.evidence == ()
    assert counters.action == "Send getchargestate to the meter."


# -- meter mode: the price ---------------------------------------------------------------------


def test_a_meter_still_on_the_old_price_after_an_unconfirmed_change_is_tariff_behind():
    books = FakeReconciliationBooks()
    when = at(2025, 7, 5)
    meter_account(books, 1, when=when, remain="40.000")
    report = run(books, as_of=at(2025, 7, 10))
    price, balance = found(report, Check.PRICE), found(report, Check.BALANCE)
    # 3.000 against 3.20 / 3.84 / 4.80: nearest 3.20
    assert price.cause is Cause.TARIFF_NOT_ON_METER and price.difference == Price("-0.2")
    assert price.evidence == (Evidence("reading", reading_key(1, when), when, "curr_price 3.000"),)
    assert price.action.startswith("Push the tariff in force to the meter")
    assert balance.cause is Cause.TARIFF_NOT_ON_METER


def test_a_confirmed_change_is_the_meters_price_and_no_excuse_for_the_balance():
    books = FakeReconciliationBooks()
    when = at(2025, 7, 5)
    meter_account(books, 1, when=when, remain="40.000", price_milli=3200)
    books.confirmations[1] = {"2025-07 increase": at(2025, 7, 1, 10)}
    report = run(books, as_of=at(2025, 7, 10))
    assert found(report, Check.PRICE).agrees
    assert found(report, Check.BALANCE).cause is Cause.UNEXPLAINED


def test_a_getprice_ladder_after_the_reading_is_the_meters_price():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    when = DAY + timedelta(hours=3)
    books.replies[PRICE] = [ReplyRow(1, 77, when, "ladder 3.00 3.60 4.50 4.50 4.50")]
    assert run(books).totals.agreeing == 1
    books.replies[PRICE] = [ReplyRow(1, 77, when, "ladder 3.00 3.60 4.60 4.60 4.60")]
    price = found(run(books), Check.PRICE)
    assert (price.source, price.at, price.cause) == ("getprice", when, Cause.UNEXPLAINED)
    assert price.difference == Price("0.1")
    assert price.evidence == (Evidence("command", "77", when, "getprice"),)


def test_a_curr_price_that_is_none_of_the_tariffs_is_unexplained():
    books = FakeReconciliationBooks()
    meter_account(books, 1, price_milli=3200)  # June: 3.00 / 3.60 / 4.50, nearest 3.00
    price = found(run(books), Check.PRICE)
    assert price.cause is Cause.UNEXPLAINED and price.difference == Price("0.2")


# -- system mode -------------------------------------------------------------------------------


def system_account(books: FakeReconciliationBooks, i: int, **fields: object) -> None:
    """Paid 80 yuan, charged 30: 50 yuan left, the running balance equal to its transfers."""
    fields.setdefault("prepaid_posted", 5000)
    books.accounts.append(account(i, mode="system", **fields))  # type: ignore[arg-type]
    books.sums[i] = LedgerSums(8000, -3000, 0, 5000)


def test_a_system_account_with_its_ledger_summed_and_its_valve_open_agrees():
    books = FakeReconciliationBooks()
    system_account(books, 1)
    report = run(books)
    assert report.lines == () and report.totals.agreeing == 1


def test_a_running_balance_apart_from_its_transfers_is_the_ledgers_totals():
    books = FakeReconciliationBooks()
    system_account(books, 1)
    books.sums[1] = LedgerSums(8000, -3000, 0, 4000)  # the transfers sum to 40 yuan
    report = run(books)
    ledger = found(report, Check.LEDGER)
    assert ledger.cause is Cause.LEDGER_TOTALS_DIFFER and ledger.difference == Money("10")
    assert (ledger.meter, ledger.expected) == ("50.000", "40.000")
    assert ledger.note == "balance 50.00 yuan as of the report"
    assert [e.value for e in ledger.evidence] == [
        "payments 80.00 yuan", "charges -30.00 yuan", "other 0.00 yuan",
        "running balance 50.00 yuan", "sum of transfers 40.00 yuan",
    ]  # fmt: skip
    assert ledger.action.startswith("Stop postings to this account")
    assert found(report, Check.VALVE).agrees
    assert only_line(report).billing_mode == "system"


def test_a_valve_left_closed_with_credit_is_found_unless_an_open_is_on_its_way():
    books = FakeReconciliationBooks()
    system_account(books, 1)
    closed_at = at(2025, 6, 1, 9)
    books.valves = [ValveRow(1, 9, OFF, DONE, closed_at)]
    valve = found(run(books), Check.VALVE)
    assert valve.cause is Cause.VALVE_CLOSED_WITH_CREDIT
    assert (valve.meter, valve.expected) == ("closed", "open")
    assert valve.note == "reopen threshold 0.01 yuan"
    assert Evidence("command", "9", closed_at, "closed") in valve.evidence
    assert valve.action.startswith("Reopen the valve")
    books.valves.append(ValveRow(1, 10, ON, SENT, None))
    assert run(books).totals.agreeing == 1
    books.valves[1] = ValveRow(1, 10, ON, DONE, at(2025, 6, 2, 9))  # opened again
    assert run(books).totals.agreeing == 1


def test_a_closed_valve_below_the_accounts_reopen_threshold_agrees():
    books = FakeReconciliationBooks()
    system_account(books, 1, cutoff=1000, reopen=6000)  # 50 yuan: not yet 60
    books.valves = [ValveRow(1, 9, OFF, DONE, at(2025, 6, 1, 9))]
    assert run(books).totals.agreeing == 1


def test_a_valve_open_at_the_cutoff_past_the_grace_is_found():
    books = FakeReconciliationBooks()
    since = at(2025, 6, 19, 10)  # a Thursday; 24 hours' grace: due Friday 10:00
    system_account(books, 1, prepaid_posted=0, below_since=since)
    books.sums[1] = LedgerSums(5000, -5000, 0, 0)
    assert run(books, as_of=at(2025, 6, 20, 9)).totals.agreeing == 1  # not yet due
    report = run(books, as_of=at(2025, 6, 20, 11))
    valve = found(report, Check.VALVE)
    assert valve.cause is Cause.VALVE_OPEN_PAST_CUTOFF
    assert (valve.meter, valve.expected) == ("open", "closed")
    assert "at it since" in valve.note and "closing due" in valve.note
    assert Evidence("decision", "below_cutoff_since", since, "at cut-off") in valve.evidence
    assert valve.action.startswith("Close the valve")
    books.valves = [ValveRow(1, 12, OFF, SENT, None)]  # the close on its way
    assert run(books, as_of=at(2025, 6, 20, 11)).totals.agreeing == 1


def test_a_valve_open_at_the_cutoff_the_decisions_never_recorded_is_found():
    books = FakeReconciliationBooks()
    system_account(books, 1, prepaid_posted=0)
    books.sums[1] = LedgerSums(5000, -5000, 0, 0)
    valve = found(run(books), Check.VALVE)
    assert valve.cause is Cause.VALVE_OPEN_PAST_CUTOFF
    assert valve.note == "cut-off 0.00 yuan, the decisions have not recorded the cut-off"


# -- replaced meters ---------------------------------------------------------------------------


def replacement(i: int, *, stray: int = 0, final: int | None = 120_000) -> ReplacementRow:
    """M-old removed on 06-05 (last read 06-05 at 119.5 m³), M{i} bound at 0 and read at 2."""
    return ReplacementRow(
        i, 40, "M-old", at(2025, 6, 5, 12), final, at(2025, 6, 5), 119_500, stray,
        f"M{i}", 0, at(2025, 6, 6), 2_000,
    )  # fmt: skip


def test_a_meter_replaced_cleanly_is_checked_on_the_full_path_and_agrees():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    books.replacements = [replacement(1)]
    line = only_line(run(books, include_agreeing=True))
    assert line.agrees and [f.check for f in line.findings][-1] is Check.REPLACEMENT
    assert line.findings[-1].note == "M-old replaced by M1"
    assert run(books).totals.agreeing == 1


def test_readings_from_a_removed_meter_are_found_even_when_the_rest_agrees():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    system_account(books, 2)
    books.replacements = [replacement(1, stray=2), replacement(2, final=None)]
    report = run(books)
    assert [line.account_id for line in report.lines] == [1, 2]
    first, second = (line.finding(Check.REPLACEMENT) for line in report.lines)
    assert first is not None and second is not None
    assert first.cause is Cause.METER_REPLACED
    assert first.note == "2 readings from the old meter after its removal"
    assert first.evidence[0] == Evidence("binding", "40", at(2025, 6, 5, 12), "M-old")
    assert first.action.startswith("Correct the replacement's final or opening register")
    assert second.note == "no final register recorded for the old meter"
    assert report.totals.by_cause["meter_replaced"] == 2


# -- the first pass, ranges, and which accounts ------------------------------------------------


def group(first_id: int, count: int, state: str, *, confirmed: str | None = None) -> MeterGroup:
    """Accounts the database found to pass every integer check, sharing what the rest needs:
    the charge state, two top-ups of 100 yuan posted, a reading at 3.000 yuan/m³ on DAY."""
    return MeterGroup(
        count, first_id, TARIFF, 1, date(2025, 1, 1), confirmed, state, 2, 10_000,
        DAY, 3000, None, None,
    )  # fmt: skip


def test_the_first_pass_counts_what_the_database_shows_to_agree_and_checks_the_rest():
    books = FakeReconciliationBooks()
    for i in (1, 2, 4):
        meter_account(books, i)
    meter_account(books, 3, remain="40.000")  # unsure in the database: a balance off
    books.replies[STATE][-2] = charge_state(4, "state 3 150.000")  # counters: one too many
    system_account(books, 5)
    agreeing, failing = (
        group(1, 2, "state 2 100.000", confirmed="k"),
        group(4, 1, "state 3 150.000"),
    )
    books.verdicts = Verdicts(system_agreeing=1, groups=[agreeing, failing], unsure=[3])
    books.members = {failing.key(): [4]}
    report = run(books, first_pass=True)
    # the groups decoded once each; the failing one's members and the unsure on the full path
    assert ("confirmations", Scope(None, None, account_ids=[1])) in books.asked
    assert ("members", [4]) in books.asked
    accounts_asked = [scope for name, scope in books.asked if name == "accounts"]
    assert accounts_asked == [Scope(1, 5, None, [3, 4])]
    assert [line.account_id for line in report.lines] == [3, 4]
    assert found_in(report, 3, Check.BALANCE).cause is Cause.UNEXPLAINED
    assert found_in(report, 4, Check.COUNTERS).cause is Cause.UNEXPLAINED
    assert (report.totals.accounts, report.totals.agreeing, report.totals.differing) == (5, 3, 2)
    # the same report as the full path alone
    slow = run(books)
    assert slow.lines == report.lines and slow.totals == report.totals


def test_a_range_the_first_pass_finds_wholly_agreeing_reads_nothing_more():
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    books.verdicts = Verdicts(0, [group(1, 1, "state 2 100.000")], [])
    report = run(books, first_pass=True)
    assert report.lines == () and report.totals.agreeing == 1
    assert "accounts" not in [name for name, _ in books.asked]


def test_accounts_go_by_ranges_of_ids_and_the_lines_come_in_account_order():
    books = FakeReconciliationBooks()
    far = reconciliation.CHUNK + 7
    meter_account(books, far, remain="40.000")
    meter_account(books, 1, remain="40.000")
    report = run(books)
    assert [line.account_id for line in report.lines] == [1, far]
    scopes = [scope for name, scope in books.asked if name == "accounts"]
    half = far // 2  # two ranges of at most CHUNK ids, as even as ids go
    assert scopes == [Scope(1, half, None, None), Scope(half + 1, far, None, None)]
    assert report.totals.balance_difference == Money("-20")


def test_a_company_or_a_list_of_ids_narrows_the_report():
    books = FakeReconciliationBooks()
    meter_account(books, 1, remain="40.000")
    books.accounts.append(account(2, company="2002"))
    books.readings.append(reading(2, remain="40.000"))
    assert [line.account_id for line in run(books, company_no="2002").lines] == [2]
    assert [line.account_id for line in run(books, account_ids=[1]).lines] == [1]
    empty = run(books, account_ids=[])
    assert empty.lines == () and empty.totals.accounts == 0


def found_in(report: Report, account_id: int, check: Check) -> Finding:
    line = next(line for line in report.lines if line.account_id == account_id)
    finding = line.finding(check)
    assert finding is not None
    return finding


def test_an_account_the_full_path_finds_agreeing_is_counted_not_listed():
    """`Report.lines` holds the accounts that differ (all only with `include_agreeing`):
    an account sent to the full path that agrees there (a clean replacement, a reading
    with a top-up in flight) is counted, as the quick path would."""
    books = FakeReconciliationBooks()
    meter_account(books, 1)
    books.replacements = [replacement(1)]
    meter_account(books, 2)
    books.readings.append(reading(2, DAY + timedelta(days=1), "70.000", in_flight_fen=2000))
    meter_account(books, 3, remain="40.000")
    books.verdicts = Verdicts(0, [], [1, 2, 3])
    for first_pass in (False, True):
        report = run(books, first_pass=first_pass)
        assert [line.account_id for line in report.lines] == [3]
        assert (report.totals.accounts, report.totals.agreeing) == (3, 2)
    listed = run(books, include_agreeing=True)
    assert [line.agrees for line in listed.lines] == [True, True, False]


def test_a_valve_command_done_only_after_the_reports_instant_was_still_on_its_way_then():
    books = FakeReconciliationBooks()
    system_account(books, 1)  # 50 yuan by the report's instant: paid after the close was sent
    # sent at 06-19 09:00 when the balance was at the cut-off, done at 06-20 09:00
    books.valves = [ValveRow(1, 9, OFF, DONE, at(2025, 6, 20, 9))]
    report = run(books, as_of=at(2025, 6, 20))  # the valve open then, the close in flight
    assert report.lines == () and report.totals.agreeing == 1


def test_ranges_read_on_several_connections_at_once_give_the_report_of_one(monkeypatch):
    """With `connections`, the ranges of accounts are cut smaller and read on that many
    readers at once (threads): each range on one reader, the lines put back in account
    order, the totals summed; the report is the one a single connection makes."""
    monkeypatch.setattr(reconciliation, "PART_MIN", 1)
    books = FakeReconciliationBooks()
    for i in range(1, 9):
        meter_account(books, i, remain="40.000" if i % 3 == 0 else "50.000")
    for i in range(9, 13):
        system_account(books, i)
    books.valves = [ValveRow(10, 9, OFF, DONE, DAY)]  # closed with 50 yuan of credit
    books.replacements = [replacement(11)]
    for listed in (False, True):
        one = run(books, include_agreeing=listed)
        books.asked.clear()
        uow = FakeReconciliationUnitOfWork(books)
        split = reconcile(
            uow,
            CATALOG,
            codec=Answers(),  # type: ignore[arg-type]
            as_of=AS_OF,
            first_pass=False,
            include_agreeing=listed,
            connections=3,
        )
        assert uow.readers_opened == 2
        assert (split.lines, split.totals) == (one.lines, one.totals)
        assert [line.account_id for line in split.lines] == (
            list(range(1, 13)) if listed else [3, 6, 10]
        )
        scopes = sorted(s.lo for name, s in books.asked if name == "accounts")  # type: ignore[attr-defined]
        assert scopes == [1, 5, 9]  # 1-4, 5-8, 9-12
    assert split.totals.balance_difference == Money("-20")


def test_a_report_of_a_few_accounts_stays_on_one_connection():
    """Fewer ids than `PART_MIN` per connection: no other reader is opened."""
    books = FakeReconciliationBooks()
    far = reconciliation.PART_MIN + 1
    for i in (1, 2, far):
        meter_account(books, i, remain="40.000")
    for ids, opened in ((None, 1), ([1, 2], 0)):  # two connections for PART_MIN + 1 ids
        uow = FakeReconciliationUnitOfWork(books)
        report = reconcile(
            uow,
            CATALOG,
            codec=Answers(),  # type: ignore[arg-type]
            as_of=AS_OF,
            account_ids=ids,
            first_pass=False,
            connections=4,
        )
        assert uow.readers_opened == opened
        assert [line.account_id for line in report.lines] == (ids or [1, 2, far])


def test_ranges_are_a_multiple_of_the_connections_and_at_most_chunk_ids(monkeypatch):
    """25 ids, ranges of at most 10: three would do on one connection, four on two (each
    reader as many), cut as evenly as ids go."""
    monkeypatch.setattr(reconciliation, "PART_MIN", 1)
    monkeypatch.setattr(reconciliation, "CHUNK", 10)
    books = FakeReconciliationBooks()
    for i in range(1, 26):
        meter_account(books, i)
    for connections, bounds in (
        (1, [(1, 8), (9, 16), (17, 25)]),
        (2, [(1, 6), (7, 12), (13, 18), (19, 25)]),
    ):
        books.asked.clear()
        report = run(books, connections=connections)
        assert report.totals.agreeing == 25
        scopes = [s for name, s in books.asked if name == "accounts"]
        assert sorted((s.lo, s.hi) for s in scopes) == bounds  # type: ignore[attr-defined]
