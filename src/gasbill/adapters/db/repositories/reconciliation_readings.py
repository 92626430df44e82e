"""Meters against the ledger at every frozen reading: an auditor's report (and the demo's).

A meter-mode meter deducts with the prices it holds; the shadow billing posts
the same to `meter_credit`. So at every frozen reading the `remain_money` the
meter reported must be the ledger's `meter_credit` counting what took effect
by then — except while a top-up (or opening) is in flight: the meter may
have loaded it before the ledger posted it, or not yet. Those readings are
counted apart, not compared. (The books against the tariff in force are
`true_up_check`'s.)
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Money

TOLERANCE_FEN = 1  # the meter deducts exactly; the ledger in whole fen


@dataclass
class ReadingCheck:
    """One meter's frozen readings against its ledger: how many compared, agreed, skipped."""

    account_id: int
    meter_comm_no: str = ""
    billing_mode: str = str(BillingMode.METER)
    readings: int = 0  # frozen readings stored (of either mode)
    compared: int = 0
    agreed: int = 0
    in_flight: int = 0  # a top-up on its way: not compared
    first_difference: str = ""


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_readings(conn: sa.Connection, account_id: int, comm_no: str) -> ReadingCheck:
    """Compare the meter's balance with the ledger at each of its frozen readings."""
    check = ReadingCheck(account_id, comm_no)
    code = str(AccountCode.meter_credit(str(account_id)))
    moves = conn.execute(
        sa.text(
            "SELECT t.effective_at, CASE WHEN c.code = :code THEN t.amount_fen "
            "ELSE -t.amount_fen END FROM transfer t "
            "JOIN ledger_account c ON c.id = t.credit_account_id "
            "JOIN ledger_account d ON d.id = t.debit_account_id "
            "WHERE t.status IN ('posted', 'post_pending') AND (c.code = :code OR d.code = :code)"
        ),
        {"code": code},
    ).all()
    moves_sorted = sorted((_aware(at), fen) for at, fen in moves)
    times = [at for at, _ in moves_sorted]
    running = [0]
    for _, fen in moves_sorted:
        running.append(running[-1] + int(fen))
    windows = _in_flight(conn, account_id)
    readings = conn.execute(
        sa.text(
            "SELECT acquisition_time, remain_money FROM meter_reading WHERE meter_comm_no = :m "
            "AND data_type = 1 AND remain_money IS NOT NULL ORDER BY acquisition_time"
        ),
        {"m": comm_no},
    ).all()
    check.readings = len(readings)
    for acquired, remain in readings:
        at = _aware(acquired)
        if any(start <= at < end for start, end in windows):
            check.in_flight += 1
            continue
        ledger = running[bisect_right(times, at)]
        meter = Decimal(int(remain)).scaleb(-1)  # thousandths of a yuan → fen
        check.compared += 1
        if abs(meter - ledger) <= TOLERANCE_FEN:
            check.agreed += 1
        elif not check.first_difference:
            check.first_difference = (
                f"{at.isoformat()}: meter {Money(meter.scaleb(-2)).fixed()} "
                f"ledger {Money.of_fen(ledger).fixed()}"
            )
    return check


FAR = datetime.max.replace(tzinfo=UTC)


def _in_flight(conn: sa.Connection, account_id: int) -> list[tuple[datetime, datetime]]:
    """When each of the account's money commands was on its way: queued to settled."""
    rows = conn.execute(
        sa.text(
            "SELECT c.created_at, c.finished_at, h.recorded_at, r.recorded_at FROM command c "
            "JOIN transfer h ON h.id = c.hold_id "
            "LEFT JOIN transfer r ON r.pending_id = h.id WHERE c.account_id = :a"
        ),
        {"a": account_id},
    ).all()
    windows = []
    for created, finished, held, resolved in rows:
        start = min(_aware(created), _aware(held))
        ends = [_aware(v) for v in (finished, resolved) if v is not None]
        end = max(ends) if len(ends) == 2 else FAR  # both the command and its hold settled
        windows.append((start, end))
    return windows


def readings_report(uow: UnitOfWork, account_ids: Sequence[int] | None = None) -> dict[str, object]:
    """Every active account's (or these accounts') frozen readings; a meter-mode account's
    compared with its ledger. Totals first, then one line per account."""
    lines: list[ReadingCheck] = []
    with uow:
        ids = sorted(set(account_ids)) if account_ids else uow.accounts.active_ids()
        conn = uow.session.connection()
        for account_id in ids:
            account = uow.accounts.get(account_id)
            binding = uow.accounts.active_binding(account_id)
            if account is None or binding is None:
                continue
            meter = uow.accounts.meter_by_id(binding.meter_id)
            assert meter is not None
            if account.billing_mode == BillingMode.METER:
                lines.append(check_readings(conn, account_id, meter.comm_no))
                continue
            count = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM meter_reading WHERE meter_comm_no = :m AND data_type = 1"
                ),
                {"m": meter.comm_no},
            ).scalar_one()
            lines.append(
                ReadingCheck(account_id, meter.comm_no, str(account.billing_mode), int(count))
            )
    compared = sum(c.compared for c in lines)
    agreed = sum(c.agreed for c in lines)
    return {
        "totals": {
            "accounts": len(lines),
            "readings": sum(c.readings for c in lines),
            "compared": compared,
            "agreed": agreed,
            "differing": compared - agreed,
            "in_flight": sum(c.in_flight for c in lines),
            "accounts_differing": sum(1 for c in lines if c.agreed < c.compared),
        },
        "accounts": [asdict(c) for c in lines],
    }
