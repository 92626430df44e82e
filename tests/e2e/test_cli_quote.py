"""`gasbill quote` and `gasbill demo` as a user runs them."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gasbill.cli import app
from tests.conftest import ROOT

runner = CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("GASBILL_CONFIG", raising=False)


def quote(*args: str):
    return runner.invoke(app, ["quote", *args])


def test_json_quote_of_a_tier_crossing(tmp_path):
    readings = write(
        tmp_path,
        "r.csv",
        "meter,acquisition_time,std_sum,work_sum\n"
        "x,2025-01-01 00:00:00,0,0\n"
        "x,2025-06-01 00:00:00,340.000,1\n"
        "x,2025-07-01T00:00:00,360,2\n",
    )
    result = quote(
        "--tariff", "beijing-residential", "--readings", str(readings), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["tariff"] == "beijing-residential"
    assert document["total"] == "941.80"
    assert [p["amount"] for p in document["periods"]] == ["887.40", "54.40"]
    assert document["periods"][1]["volume"] == "20.000"
    line = document["periods"][0]["lines"][0]
    assert set(line) >= {"tier", "volume", "price", "version", "cost"}
    assert line["price"] == "2.610"
    costs = {(ln["tier"], ln["price"]) for ln in document["periods"][1]["lines"]}
    assert costs == {(1, "2.610"), (2, "2.830")}


def test_json_lines_of_platform_readings_keep_only_frozen_ones(tmp_path):
    rows = [
        {
            "meter_comm_no": "12345678901234",
            "data_type": 1,
            "acquisition_time": "2025-01-01T00:00:00",
            "std_sum": 10.5,
            "work_sum": 11,
        },
        {
            "meter_comm_no": "12345678901234",
            "data_type": 0,
            "acquisition_time": "2025-01-01T12:00:00",
            "std_sum": 99.0,
        },
        {
            "meter_comm_no": "12345678901234",
            "data_type": 1,
            "acquisition_time": "2025-01-02T00:00:00",
            "std_sum": 12.5,
            "work_sum": 13,
        },
    ]
    readings = write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    result = quote(
        "--tariff", "beijing-residential", "--readings", str(readings), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"] == "5.22"


def test_csv_and_table_formats(tmp_path):
    readings = write(
        tmp_path, "r.csv", "acquisition_time,std_sum\n2025-01-01,0\n2025-01-02,1.003\n"
    )
    as_csv = quote(
        "--tariff", "beijing-residential", "--readings", str(readings), "--format", "csv"
    )
    assert as_csv.exit_code == 0
    header, row = as_csv.stdout.strip().splitlines()
    assert header.split(",")[-3:] == ["price", "cost", "amount"]
    assert row.split(",")[-3:] == ["2.610", "2.61783", "2.62"]
    table = quote("--tariff", "beijing-residential", "--readings", str(readings))
    assert table.exit_code == 0
    assert "2.62" in table.stdout


def test_household_and_opening_options(tmp_path):
    readings = write(tmp_path, "r.csv", "acquisition_time,std_sum\n2025-07-01,0\n2025-12-01,700\n")
    five = quote(
        "--tariff",
        "shanghai-residential",
        "--readings",
        str(readings),
        "--persons",
        "5",
        "--format",
        "json",
    )
    three = quote(
        "--tariff",
        "shanghai-residential",
        "--readings",
        str(readings),
        "--persons",
        "3",
        "--format",
        "json",
    )
    assert json.loads(five.stdout)["total"] == "2199.00"
    assert json.loads(three.stdout)["total"] == "2379.00"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("acquisition_time,std_sum\n2025-01-01,0\n2025-13-01,1\n", "line 3: acquisition_time"),
        ("acquisition_time,std_sum\n2025-01-01,0\n2025-01-02,abc\n", "line 3: std_sum"),
        ("acquisition_time,std_sum\n2025-01-01,0\n2025-01-02,1.0001\n", "more than 3 decimals"),
        ("acquisition_time,std_sum\n2025-01-02,0\n2025-01-01,1\n", "line 3: readings out of order"),
        ("acquisition_time,std_sum\n2025-01-01,5\n2025-01-02,4\n", "line 3: backwards"),
        ("acquisition_time,std_sum\n2025-01-01,5\n2025-01-01,6\n", "conflicting duplicate"),
        ("acquisition_time,std_sum\n2025-01-01,5\n2025-01-02,9000\n", "excessive flow"),
        ("time,std_sum\n2025-01-01,5\n", "line 1: the header needs column(s) acquisition_time"),
        ('{"data_type": 1, "acquisition_time": "2025-01-01", "std_sum": NaN}\n', "line 1"),
    ],
)
def test_bad_input_prints_one_line_exits_2_and_no_quote(tmp_path, body, message):
    readings = write(tmp_path, "bad.csv", body)
    result = quote(
        "--tariff", "beijing-residential", "--readings", str(readings), "--format", "json"
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in " ".join(result.stderr.split())
    assert len(result.stderr.strip().splitlines()) <= 2  # one message, wrapped at most once


def test_unknown_tariff_is_refused(tmp_path):
    readings = write(tmp_path, "r.csv", "acquisition_time,std_sum\n2025-01-01,0\n")
    result = quote("--tariff", "no-such-tariff", "--readings", str(readings))
    assert result.exit_code == 2
    assert "no-such-tariff" in result.stderr
    assert result.stdout == ""


def test_config_file_and_environment_override(tmp_path, monkeypatch):
    readings = write(tmp_path, "r.csv", "acquisition_time,std_sum\n2025-01-01,0\n2025-01-02,30\n")
    strict = write(tmp_path, "strict.toml", '[rating]\nmax_flow_m3_per_hour = "1"\n')
    result = quote(
        "--tariff", "beijing-residential", "--readings", str(readings), "--config", str(strict)
    )
    assert result.exit_code == 2
    assert "excessive flow" in result.stderr
    monkeypatch.setenv("GASBILL_RATING__MAX_FLOW_M3_PER_HOUR", "5")
    result = quote(
        "--tariff",
        "beijing-residential",
        "--readings",
        str(readings),
        "--config",
        str(strict),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    monkeypatch.delenv("GASBILL_RATING__MAX_FLOW_M3_PER_HOUR")
    bad = write(tmp_path, "bad.toml", "[rating]\nmax_flow_m3_per_hour = -2.5\n")
    result = quote(
        "--tariff", "beijing-residential", "--readings", str(readings), "--config", str(bad)
    )
    assert result.exit_code == 2
    assert "rating.max_flow_m3_per_hour" in result.stderr


def test_the_demo_runs_the_whole_loop_and_the_meters_agree_with_the_ledger(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tariffs").symlink_to(ROOT / "tariffs")
    result = runner.invoke(
        app, ["demo", "--exit", "--json", "--meters", "12", "--days", "20", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["meters"] == 12
    assert summary["readings"] >= 12 * 20
    assert summary["top_ups_confirmed"] >= 10
    assert summary["differ"] == 0, [c for c in summary["checks"] if not c["agrees"]]
    # the meters against the ledger at every frozen reading with no top-up on its way
    # (a top-up's window lasts until the product hears of its end: at most a simulated day)
    assert summary["readings_compared"] >= 10 * 15
    assert summary["readings_agreeing"] == summary["readings_compared"]
    assert summary["in_force_differ"] == [] and summary["in_force_agree"] == 10
    assert summary["openings"] == 12


def test_a_gap_over_a_year_end_is_split_in_proportion_to_time(tmp_path):
    # 184 of the gap's 214 days lie in 2025: 736.092 m³ there, 120.015 m³ in 2026.
    readings = write(
        tmp_path,
        "gap.csv",
        "acquisition_time,std_sum\n2025-07-01 00:00:00,0.000\n2026-01-31 00:00:00,856.107\n",
    )
    result = quote(
        "--tariff", "beijing-residential", "--readings", str(readings), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"] == "2649.91"
