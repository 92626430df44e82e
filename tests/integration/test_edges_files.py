"""Edges of files and identifiers (issue 11): import checks, CSV cells, data_guid as a uuid."""

from __future__ import annotations

import base64
import csv
import io
import uuid

from typer.testing import CliRunner

from gasbill.cli import app
from gasbill.service.ingest import guid_text, uuid4_bytes
from gasbill.service.reconciliation_report import csv_cell

runner = CliRunner()

CSV = """meter_comm_no,data_type,acquisition_time,std_sum,work_sum
12345678901234,1,2025-01-01 00:00:00,10.500,10.700
12345678901234,1,2025-01-02 00:00:00,-12.250,12.500
12345678901234,1,2025-01-03 00:00:00,13,-1
"""


def test_import_refuses_negative_registers(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("GASBILL_DATABASE__URL", db_url)
    source = tmp_path / "r.csv"
    source.write_text(CSV, encoding="utf-8")
    result = runner.invoke(app, ["import", "readings", str(source), "--company", "1001"])
    assert result.exit_code == 0, result.output
    assert "stored 1" in " ".join(result.stderr.split())
    assert "rejected 2" in result.stderr
    reasons = (tmp_path / "r.csv.rejects.csv").read_text(encoding="utf-8")
    assert "std_sum: a register cannot be negative" in reasons
    assert "work_sum: a register cannot be negative" in reasons


def test_import_refuses_a_company_without_a_push_key(tmp_path, monkeypatch):
    monkeypatch.setenv("GASBILL_DATABASE__URL", f"sqlite:///{tmp_path / 'x.db'}")
    source = tmp_path / "r.csv"
    source.write_text(CSV, encoding="utf-8")
    result = runner.invoke(app, ["import", "readings", str(source), "--company", "2002"])
    assert result.exit_code == 2
    assert "no push key" in result.stderr


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted():
    assert csv_cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    for text in ("+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    for kept in ("-12.50", "+3", "0", "A0001", "", 12, None, True):
        assert csv_cell(kept) == kept
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell("=1+1"), csv_cell("-5.00")])
    assert out.getvalue().strip() == "'=1+1,-5.00"


def test_data_guid_is_a_version_4_uuid_in_the_vendors_base64_form():
    sample = uuid.UUID(bytes=base64.b64decode("LA6owvN3SECEP2zL2fkYxg=="))
    assert sample.version == 4 and sample.variant == uuid.RFC_4122
    raw = uuid4_bytes(50)
    for start in range(0, len(raw), 16):
        guid = uuid.UUID(bytes=raw[start : start + 16])
        assert guid.version == 4 and guid.variant == uuid.RFC_4122
        text = guid_text(raw[start : start + 16])
        assert len(text) == 24 and base64.b64decode(text) == guid.bytes
