"""`gasbill import readings`: the push path in batches, with a summary and a rejects file."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from gasbill.cli import app

runner = CliRunner()

CSV = """meter_comm_no,data_type,acquisition_time,std_sum,work_sum,remain_money
12345678901234,1,2025-01-01 00:00:00,10.500,10.700,88.8
12345678901234,1,2025-01-02 00:00:00,12.250,12.500,84.1
12345678901234,1,2025-01-02 00:00:00,12.250,12.500,84.1
12345678901234,1,2025-01-03 00:00:00,abc,14,80
12345678901234,7,2025-01-04 00:00:00,15,15,79
,1,2025-01-05 00:00:00,16,16,78
12345678901234,1,2025-01-06 00:00:00,17.1234,17,77
"""


def test_import_stores_dedupes_and_rejects_with_reasons(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("GASBILL_DATABASE__URL", db_url)
    source = tmp_path / "history.csv"
    source.write_text(CSV, encoding="utf-8")
    result = runner.invoke(
        app, ["import", "readings", str(source), "--company", "1001", "--batch", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "read 7, stored 2, duplicates 1" in " ".join(result.stderr.split())
    assert "rejected 4" in result.stderr
    rejects = (tmp_path / "history.csv.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert rejects[0] == "line,reason"
    reasons = dict(line.split(",", 1) for line in rejects[1:])
    assert set(reasons) == {"5", "6", "7", "8"}
    assert "std_sum" in reasons["5"]
    assert "data_type" in reasons["6"]
    assert "meter_comm_no" in reasons["7"]
    assert "more than 3 decimals" in reasons["8"]
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM meter_reading")).scalar_one() == 2
        assert conn.execute(sa.text("SELECT COUNT(*) FROM billing_inbox")).scalar_one() == 2
    engine.dispose()
    again = runner.invoke(app, ["import", "readings", str(source), "--company", "1001"])
    assert "stored 0, duplicates 3" in " ".join(again.stderr.split())


def test_import_refuses_a_bad_company_and_a_database_that_is_behind(tmp_path, monkeypatch):
    source = tmp_path / "r.csv"
    source.write_text(CSV, encoding="utf-8")
    monkeypatch.setenv("GASBILL_DATABASE__URL", f"sqlite:///{tmp_path / 'empty.db'}")
    bad = runner.invoke(app, ["import", "readings", str(source), "--company", "10"])
    assert bad.exit_code == 2
    assert "4 digits" in bad.stderr
    behind = runner.invoke(app, ["import", "readings", str(source), "--company", "1001"])
    assert behind.exit_code == 2
    assert "gasbill db upgrade" in behind.stderr
