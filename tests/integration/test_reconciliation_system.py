"""Reconciliation of system-mode accounts, replaced meters, `as_of`, the CLI's exit status and
the nightly job, against a real database."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gasbill.adapters.db.tables.accounts import Meter
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.tables.decisions import DecisionState
from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.adapters.platform.codec import Codec
from gasbill.cli import app
from gasbill.config import DecisionSettings
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountCode, Transfer, TransferKind, new_transfer_id
from gasbill.domain.money import Volume
from gasbill.domain.outbox import CommandStatus
from gasbill.domain.reconciliation import Cause, Check
from gasbill.service import reconciliation
from gasbill.service.accounts import Replacement, replace_meter
from gasbill.service.ledger import record_payment
from gasbill.service.reconciliation import AsOfError, parse_as_of, reconcile
from gasbill.service.reconciliation_nightly import reconcile_nightly
from gasbill.service.reconciliation_report import render_csv, report_json
from tests.integration.billing_helpers import COMPANY, make_account, midnight

pytestmark = pytest.mark.db

DAY = date(2025, 3, 1)
AS_OF = datetime(2025, 3, 20, tzinfo=UTC)
NO_QUIET = DecisionSettings(quiet_hours_start="", quiet_hours_end="", grace_hours=24)


def system_account(uow, catalog, number="S1", comm_no="20000000000001"):
    return make_account(uow, catalog, number=number, comm_no=comm_no, mode=BillingMode.SYSTEM)


def pay(uow, account_id, fen, at):
    record_payment(
        uow,
        account_id=account_id,
        amount_fen=fen,
        channel="counter",
        idempotency_key=f"pay-{account_id}-{at.isoformat()}-{fen}",
        actor="clerk",
        at=at,
    )


def charge(uow, account_id, fen, at):
    with uow:
        uow.ledger.record(
            Transfer(
                id=new_transfer_id(),
                idempotency_key=f"charge-{account_id}-{at.isoformat()}-{fen}",
                debit_account=AccountCode.prepaid(str(account_id)),
                credit_account=AccountCode.revenue(),
                amount=fen,
                kind=TransferKind.CHARGE,
                effective_at=at,
                recorded_at=at,
                reason="gas",
                actor="billing",
            )
        )
        uow.commit()


def valve_command(uow, account_id, ctrl_type, at, status=CommandStatus.DONE):
    with uow:
        meter = uow.session.execute(
            sa.select(Meter.__table__.c.id, Meter.__table__.c.comm_no)
            .select_from(Meter.__table__)
            .where(Meter.__table__.c.id == _meter_of(uow, account_id))
        ).one()
        command = Command(
            define_no=f"d-{os.urandom(6).hex()}",
            company_no=COMPANY,
            meter_id=meter.id,
            meter_comm_no=meter.comm_no,
            account_id=account_id,
            ctrl_type=str(ctrl_type),
            status=str(status),
            next_attempt_at=at,
            timeout_at=at + timedelta(days=3),
            finished_at=at if status == CommandStatus.DONE else None,
            created_at=at,
        )
        uow.session.add(command)
        uow.commit()
        return command.id


def _meter_of(uow, account_id):
    from gasbill.adapters.db.tables.accounts import MeterBinding

    b = MeterBinding.__table__
    return uow.session.execute(
        sa.select(b.c.meter_id).where(b.c.account_id == account_id, b.c.unbound_at.is_(None))
    ).scalar_one()


def below_cutoff_since(uow, account_id, since):
    with uow:
        uow.session.add(DecisionState(account_id=account_id, below_cutoff_since=since))
        uow.commit()


def line_of(report, account_id):
    return next(line for line in report.lines if line.account_id == account_id)


@pytest.fixture(autouse=True)
def ranges_of_one_account(monkeypatch):
    """Two connections share even a handful of accounts (see `run`)."""
    monkeypatch.setattr(reconciliation, "PART_MIN", 1)


def run(uow, catalog, as_of=AS_OF, **kwargs):
    codec = Codec(ZoneInfo(catalog.default_zone))
    report = reconcile(uow, catalog, codec=codec, as_of=as_of, decisions=NO_QUIET, **kwargs)
    split = reconcile(  # on two connections (PostgreSQL: one snapshot): the same report
        uow, catalog, codec=codec, as_of=as_of, decisions=NO_QUIET, connections=2, **kwargs
    )
    assert (report.totals, report.lines) == (split.totals, split.lines)
    if not kwargs.get("include_agreeing"):  # the database's first pass against the full path
        slow = reconcile(
            uow, catalog, codec=codec, as_of=as_of, decisions=NO_QUIET, first_pass=False, **kwargs
        )
        assert (report.totals, report.lines) == (slow.totals, slow.lines)
    return report


# -- system mode -----------------------------------------------------------------------------


def test_a_paid_system_account_with_an_open_valve_agrees_and_is_only_counted(uow, catalog):
    account = system_account(uow, catalog)
    pay(uow, account, 10_000, midnight(DAY))
    charge(uow, account, 300, midnight(DAY + timedelta(days=1)))
    report = run(uow, catalog)
    assert report.lines == () and not report.differs
    assert (report.totals.accounts, report.totals.agreeing) == (1, 1)
    line = line_of(run(uow, catalog, include_agreeing=True), account)
    assert line.billing_mode == "system" and line.agrees
    assert [f.check for f in line.findings] == [Check.LEDGER, Check.VALVE]


def test_a_valve_closed_though_the_customer_has_paid_is_a_difference(uow, catalog):
    account = system_account(uow, catalog)
    closed = valve_command(uow, account, CtrlType.SET_VALVE_OFF, midnight(DAY))
    pay(uow, account, 5_000, midnight(DAY) + timedelta(hours=3))
    report = run(uow, catalog)
    assert report.differs
    valve = line_of(report, account).finding(Check.VALVE)
    assert valve.cause is Cause.VALVE_CLOSED_WITH_CREDIT
    assert (valve.meter, valve.expected) == ("closed", "open")
    assert "setvalveon" in valve.action
    assert ("command", str(closed)) in {(e.kind, e.ref) for e in valve.evidence}
    assert any("50 yuan" in e.value or "50.00 yuan" in e.value for e in valve.evidence)


def test_an_open_command_to_reopen_means_it_is_being_handled(uow, catalog):
    account = system_account(uow, catalog)
    valve_command(uow, account, CtrlType.SET_VALVE_OFF, midnight(DAY))
    pay(uow, account, 5_000, midnight(DAY) + timedelta(hours=3))
    valve_command(uow, account, CtrlType.SET_VALVE_ON, midnight(DAY) + timedelta(hours=4),
                  status=CommandStatus.SENT)  # fmt: skip
    assert not run(uow, catalog).differs


def test_a_valve_open_past_the_cut_off_and_grace_is_a_difference(uow, catalog):
    account = system_account(uow, catalog)
    pay(uow, account, 300, midnight(DAY))
    charge(uow, account, 300, midnight(DAY + timedelta(days=1)))  # at the cut-off: 0
    below_cutoff_since(uow, account, midnight(DAY + timedelta(days=1)))
    # within the 24 hours of grace: as it should be
    inside = midnight(DAY + timedelta(days=1)) + timedelta(hours=20)
    assert not run(uow, catalog, as_of=inside).differs
    valve = line_of(run(uow, catalog), account).finding(Check.VALVE)
    assert valve.cause is Cause.VALVE_OPEN_PAST_CUTOFF
    assert "setvalveoff" in valve.action and "closing due" in valve.note


def test_before_the_payment_the_valve_closed_is_right(uow, catalog):
    account = system_account(uow, catalog)
    valve_command(uow, account, CtrlType.SET_VALVE_OFF, midnight(DAY))
    pay(uow, account, 5_000, midnight(DAY + timedelta(days=2)))
    assert not run(uow, catalog, as_of=midnight(DAY + timedelta(days=1))).differs
    assert run(uow, catalog).differs


def test_a_close_done_only_after_the_reports_instant_was_on_its_way_then(uow, catalog):
    """Sent on day 1, done on day 3: as of day 2 the valve was open with the close in
    flight, which a paying customer's account may be; by now it is closed with credit."""
    account = system_account(uow, catalog)
    pay(uow, account, 5_000, midnight(DAY))
    closed = valve_command(uow, account, CtrlType.SET_VALVE_OFF, midnight(DAY) + timedelta(hours=1))
    with uow:
        uow.session.execute(
            sa.update(Command.__table__)
            .where(Command.__table__.c.id == closed)
            .values(finished_at=midnight(DAY + timedelta(days=3)))
        )
        uow.commit()
    then = run(uow, catalog, as_of=midnight(DAY + timedelta(days=2)))
    assert not then.differs and then.totals.agreeing == 1
    now = line_of(run(uow, catalog), account).finding(Check.VALVE)
    assert now.cause is Cause.VALVE_CLOSED_WITH_CREDIT


def test_a_running_balance_apart_from_its_transfers_is_found(uow, catalog, engine):
    account = system_account(uow, catalog)
    pay(uow, account, 10_000, midnight(DAY))
    with engine.begin() as conn:  # behind the ledger's back
        conn.execute(
            sa.text(
                "UPDATE ledger_account SET credits_posted_fen = credits_posted_fen + 7 "
                "WHERE code = :code"
            ),
            {"code": f"prepaid:{account}"},
        )
    ledger = line_of(run(uow, catalog), account).finding(Check.LEDGER)
    assert ledger.cause is Cause.LEDGER_TOTALS_DIFFER
    assert str(ledger.difference.value) in ("0.07", "0.070")
    assert any(e.value.startswith("payments 100") for e in ledger.evidence)


# -- replaced meters ---------------------------------------------------------------------------


def reading(uow, comm_no, at, litres):
    with uow:
        uow.session.add(
            MeterReading(
                company_no=COMPANY,
                meter_comm_no=comm_no,
                data_type=1,
                acquisition_time=at,
                data_guid=os.urandom(16),
                std_sum=litres,
                work_sum=litres,
            )
        )
        uow.commit()


def replace(uow, account, at, final, new_comm_no, opening):
    replace_meter(
        uow,
        Replacement(account, at, Volume.of_litres(final), new_comm_no, Volume.of_litres(opening)),
        actor="clerk",
    )


def test_a_clean_replacement_agrees_and_an_old_meter_still_reading_does_not(uow, catalog):
    account = system_account(uow, catalog, comm_no="20000000000001")
    pay(uow, account, 10_000, midnight(DAY))
    reading(uow, "20000000000001", midnight(DAY), 5_000)
    swap = midnight(DAY) + timedelta(hours=10)
    replace(uow, account, swap, 5_200, "20000000000002", 0)
    reading(uow, "20000000000002", midnight(DAY + timedelta(days=1)), 300)
    line = line_of(run(uow, catalog, include_agreeing=True), account)
    found = line.finding(Check.REPLACEMENT)
    assert found.agrees, found
    reading(uow, "20000000000001", midnight(DAY + timedelta(days=1)), 5_400)  # still pushing
    found = line_of(run(uow, catalog), account).finding(Check.REPLACEMENT)
    assert found.cause is Cause.METER_REPLACED
    assert "1 readings from the old meter after its removal" in found.note
    assert found.action


# -- as_of, the report's shapes ------------------------------------------------------------------


def test_as_of_is_a_date_s_end_or_an_instant_and_never_the_future():
    now = datetime(2025, 3, 20, 6, tzinfo=UTC)
    zone = "Asia/Shanghai"
    assert parse_as_of(None, zone=zone, now=now) == now
    assert parse_as_of("2025-03-01", zone=zone, now=now) == datetime(2025, 3, 1, 16, tzinfo=UTC)
    assert parse_as_of("2025-03-20", zone=zone, now=now) == now  # today: up to now
    assert parse_as_of("2025-03-01T08:00:00", zone=zone, now=now) == datetime(
        2025, 3, 1, 0, tzinfo=UTC
    )
    assert parse_as_of("2025-03-01T08:00:00Z", zone=zone, now=now) == datetime(
        2025, 3, 1, 8, tzinfo=UTC
    )
    for bad in ("2025-13-01", "yesterday", "2025-03-21", "2025-03-20T15:00:00+08:00"):
        with pytest.raises(AsOfError):
            parse_as_of(bad, zone=zone, now=now)


def test_the_json_and_csv_carry_evidence_and_action(uow, catalog):
    account = system_account(uow, catalog)
    valve_command(uow, account, CtrlType.SET_VALVE_OFF, midnight(DAY))
    pay(uow, account, 5_000, midnight(DAY) + timedelta(hours=3))
    report = run(uow, catalog)
    data = report_json(report)
    valve = data["accounts"][0]["valve"]
    assert valve["action"] and valve["evidence"][0]["kind"] == "ledger"
    assert data["accounts"][0]["billing_mode"] == "system"
    csv_text = render_csv(report)
    assert csv_text.splitlines()[0].endswith(",action,evidence")
    assert "setvalveon" in csv_text


# -- the command and the job -------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def config(tmp_path, db_url, monkeypatch):
    monkeypatch.delenv("GASBILL_CONFIG", raising=False)
    monkeypatch.delenv("GASBILL_DATABASE__URL", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n[decisions]\nquiet_hours_start = ""\n'
        'quiet_hours_end = ""\n',
        encoding="utf-8",
    )
    return path


def reconcile_cli(config, *args):
    return runner.invoke(app, ["reconcile", "--config", str(config), *args])


def test_the_exit_status_tells_cron_whether_accounts_differ(uow, catalog, config):
    account = system_account(uow, catalog)
    pay(uow, account, 5_000, midnight(DAY))
    result = reconcile_cli(config, "--format", "json")
    assert result.exit_code == 0, result.output
    valve_command(uow, account, CtrlType.SET_VALVE_OFF, midnight(DAY) + timedelta(hours=1))
    result = reconcile_cli(config, "--format", "json")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["totals"]["differing"] == 1
    # as of before the valve closed, all was well
    result = reconcile_cli(config, "--as-of", "2025-03-01T00:30:00+08:00", "--format", "json")
    assert result.exit_code == 0, result.output
    assert reconcile_cli(config, "--as-of", "not a date").exit_code == 2
    assert reconcile_cli(config, "--as-of", "2999-01-01").exit_code == 2


def test_the_nightly_job_logs_its_totals_and_keeps_the_report(uow, catalog, tmp_path, caplog):
    account = system_account(uow, catalog)
    valve_command(uow, account, CtrlType.SET_VALVE_OFF, midnight(DAY))
    pay(uow, account, 5_000, midnight(DAY) + timedelta(hours=3))
    caplog.set_level("INFO", logger="gasbill.reconcile")
    outcome = reconcile_nightly(
        uow,
        catalog,
        codec=Codec(ZoneInfo(catalog.default_zone)),
        now=AS_OF,
        decisions=NO_QUIET,
        report_dir=str(tmp_path / "reports"),
    )
    assert (outcome.accounts, outcome.differing) == (1, 1)
    assert "1 accounts, 0 agree, 1 differ" in caplog.text
    assert outcome.path is not None
    saved = json.loads(outcome.path.read_text(encoding="utf-8"))
    assert saved["accounts"][0]["valve"]["cause"] == "valve_closed_with_credit"


def test_the_nightly_job_is_registered_and_configured():
    from gasbill.config import Settings
    from gasbill.jobs.registry import JOBS

    assert "reconcile" in [job.name for job in JOBS]
    settings = Settings()
    assert settings.jobs.reconcile.interval_seconds == 86_400
