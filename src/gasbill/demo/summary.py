"""What the demo shows at the end: the books, the commands, and the meters against the ledger."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from gasbill.demo.checks import check_readings
from gasbill.demo.scenario import Cast
from gasbill.demo.world import World
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Money
from gasbill.service.campaigns import campaigns as campaign_progress
from gasbill.service.true_up_check import check_in_force

TOLERANCE = Money("0.01")  # the meter deducts exactly; the ledger in whole fen


@dataclass
class MeterCheck:
    comm_no: str
    account_id: int
    meter_balance: str
    ledger_balance: str
    meter_top_ups: int
    ledger_top_ups: int
    agrees: bool
    readings_compared: int = 0  # frozen readings with no top-up in flight
    readings_agreeing: int = 0
    readings_in_flight: int = 0
    first_difference: str = ""


@dataclass
class Summary:
    meters: int
    days: int
    readings: int
    charges_fen: int
    charge_days: int
    payments: int
    top_ups_confirmed: int
    top_ups_fen: int
    commands: dict[str, int]
    warnings: int
    valve_off: int
    valve_on: int
    campaigns: list[dict[str, Any]]
    exceptions: dict[str, int]
    agree: int
    differ: int
    checks: list[MeterCheck] = field(default_factory=list)
    openings: int = 0  # accounts opened with a first payment (not in `payments`)
    readings_compared: int = 0
    readings_agreeing: int = 0
    readings_in_flight: int = 0
    unknown_settled: int = 0  # top-ups whose outcome was unknown, settled against the meter
    true_up_accounts: int = 0
    true_up_charged_fen: int = 0
    true_up_refunded_fen: int = 0
    in_force_agree: int = 0  # meter-mode accounts: charges + true-ups = the tariff in force
    in_force_differ: list[dict[str, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _scalar(conn: sa.Connection, sql: str) -> int:
    return int(conn.execute(sa.text(sql)).scalar_one() or 0)


def summarise(world: World, cast: Cast, days: int) -> Summary:
    with world.engine.connect() as conn:
        readings = _scalar(conn, "SELECT COUNT(*) FROM meter_reading WHERE data_type = 1")
        charges = _scalar(conn, "SELECT COALESCE(SUM(posted_fen), 0) FROM charge_day")
        charge_days = _scalar(conn, "SELECT COUNT(*) FROM charge_day WHERE posted_fen <> 0")
        confirmed = conn.execute(
            sa.text(
                "SELECT COUNT(*), COALESCE(SUM(r.amount_fen), 0) FROM transfer r "
                "JOIN transfer h ON h.id = r.pending_id WHERE r.status = 'post_pending'"
            )
        ).one()
        commands: dict[str, int] = dict(
            conn.execute(
                sa.text("SELECT ctrl_type || ' ' || status, COUNT(*) FROM command GROUP BY 1")
            ).all()
        )
        exceptions: dict[str, int] = dict(
            conn.execute(
                sa.text("SELECT kind, COUNT(*) FROM billing_exception GROUP BY kind")
            ).all()
        )
        warnings = _count_if(conn, "warning")
        valve_off = _scalar(
            conn,
            "SELECT COUNT(*) FROM command WHERE ctrl_type LIKE '%setvalveoff' AND status = 'done'",
        )
        valve_on = _scalar(
            conn,
            "SELECT COUNT(*) FROM command WHERE ctrl_type LIKE '%setvalveon' AND status = 'done'",
        )
        campaigns = _campaigns(conn)
    checks = [
        _check(world, comm_no, account_id) for comm_no, account_id in cast.meter_accounts.items()
    ]
    agree = sum(1 for c in checks if c.agrees)
    in_force = check_in_force(
        world.uow(),
        list(cast.meter_accounts.values()),
        catalog=world.catalog,
        now=world.now,
        max_flow_m3_per_hour=world.settings.rating.max_flow_m3_per_hour,
    )
    true_ups = [p for p in campaign_progress(world.uow()) if p.true_up_accounts]
    return Summary(
        meters=len(cast.meter_accounts) + len(cast.system_accounts),
        days=days,
        readings=readings,
        charges_fen=charges,
        charge_days=charge_days,
        payments=cast.payments,
        top_ups_confirmed=int(confirmed[0]),
        top_ups_fen=int(confirmed[1]),
        commands={k: int(v) for k, v in sorted(commands.items())},
        warnings=warnings,
        valve_off=valve_off,
        valve_on=valve_on,
        campaigns=campaigns,
        exceptions={k: int(v) for k, v in sorted(exceptions.items())},
        agree=agree,
        differ=len(checks) - agree,
        checks=checks,
        openings=len(cast.meter_accounts) + len(cast.system_accounts),
        readings_compared=sum(c.readings_compared for c in checks),
        readings_agreeing=sum(c.readings_agreeing for c in checks),
        readings_in_flight=sum(c.readings_in_flight for c in checks),
        unknown_settled=sum(n for k, n in commands.items() if k.endswith(" settled")),
        true_up_accounts=len({a.account_id for a in in_force if a.trued_up_fen}),
        true_up_charged_fen=sum(p.true_up_charged_fen for p in true_ups),
        true_up_refunded_fen=sum(p.true_up_refunded_fen for p in true_ups),
        in_force_agree=sum(1 for a in in_force if a.agrees),
        in_force_differ=[
            {
                "account_id": a.account_id,
                "charged_fen": a.charged_fen,
                "trued_up_fen": a.trued_up_fen,
                "in_force_fen": a.in_force_fen,
            }
            for a in in_force
            if not a.agrees
        ],
    )


def _count_if(conn: sa.Connection, table: str) -> int:
    if not sa.inspect(conn).has_table(table):
        return 0
    return _scalar(conn, f"SELECT COUNT(*) FROM {table}")


def _campaigns(conn: sa.Connection) -> list[dict[str, Any]]:
    if not sa.inspect(conn).has_table("campaign_meter"):
        return []
    rows = conn.execute(
        sa.text(
            "SELECT c.id, c.tariff_id, c.label, m.status, COUNT(*) FROM campaign c "
            "JOIN campaign_meter m ON m.campaign_id = c.id GROUP BY c.id, c.tariff_id, "
            "c.label, m.status ORDER BY c.id"
        )
    ).all()
    found: dict[int, dict[str, Any]] = {}
    for campaign_id, tariff_id, label, status, n in rows:
        entry = found.setdefault(
            campaign_id, {"tariff": tariff_id, "change": label, "meters": 0, "by_status": {}}
        )
        entry["meters"] += int(n)
        entry["by_status"][status] = int(n)
    return list(found.values())


def _check(world: World, comm_no: str, account_id: int) -> MeterCheck:
    """The meter's balance and its top-up counters against the ledger's.

    The balance is compared at every frozen reading with no top-up in flight
    (`checks.check_readings`), and shown as of the last one: its
    `remain_money` then, against the ledger's meter_credit counting only what
    took effect by that time.
    """
    meter = world.sim.meter(comm_no)
    with world.uow() as uow:
        session = uow.session
        last = session.execute(
            sa.text(
                "SELECT acquisition_time, remain_money FROM meter_reading WHERE meter_comm_no = :m "
                "AND data_type = 1 ORDER BY acquisition_time DESC LIMIT 1"
            ),
            {"m": comm_no},
        ).first()
        code = str(AccountCode.meter_credit(str(account_id)))
        ledger_fen = 0
        if last is not None:
            ledger_fen = int(
                session.execute(
                    sa.text(
                        "SELECT COALESCE(SUM(CASE WHEN c.code = :code THEN t.amount_fen END), 0)"
                        " - COALESCE(SUM(CASE WHEN d.code = :code THEN t.amount_fen END), 0) "
                        "FROM transfer t JOIN ledger_account c ON c.id = t.credit_account_id "
                        "JOIN ledger_account d ON d.id = t.debit_account_id "
                        "WHERE t.status IN ('posted', 'post_pending') AND t.effective_at <= :at "
                        "AND (c.code = :code OR d.code = :code)"
                    ),
                    {"code": code, "at": last.acquisition_time},
                ).scalar_one()
            )
        posted = session.execute(
            sa.text(
                "SELECT COUNT(*), COALESCE(SUM(r.amount_fen), 0) FROM transfer r "
                "JOIN transfer h ON h.id = r.pending_id "
                "JOIN ledger_account la ON la.id = h.debit_account_id "
                "WHERE r.status = 'post_pending' AND la.account_id = :a"
            ),
            {"a": account_id},
        ).one()
        readings = check_readings(session.connection(), account_id, comm_no)
    reported = Money(Decimal(last.remain_money).scaleb(-3)) if last is not None else Money(0)
    ledger = Money.of_fen(ledger_fen)
    counters_agree = meter.remote_charge_times == int(posted[0]) and Money(
        meter.remote_total_value
    ) == Money.of_fen(int(posted[1]))
    balance_agrees = abs(reported - ledger) <= TOLERANCE
    return MeterCheck(
        comm_no,
        account_id,
        _yuan(reported),
        _yuan(ledger),
        meter.remote_charge_times,
        int(posted[0]),
        counters_agree and balance_agrees and readings.agreed == readings.compared,
        readings.compared,
        readings.agreed,
        readings.in_flight,
        readings.first_difference,
    )


def _yuan(money: Money) -> str:
    return f"{money.value.quantize(Decimal('0.001'))}"
