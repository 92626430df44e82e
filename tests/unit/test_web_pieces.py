"""The pages' pure pieces: exports made inert, charts with scales, yuan from a form, catalogs."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from openpyxl import load_workbook

from gasbill.web import i18n
from gasbill.web.charts import bar_chart, column_chart, nice_top
from gasbill.web.exports import neutral, to_csv, to_xlsx
from gasbill.web.forms import FormProblem, fen_from_yuan

WEB = Path(__file__).resolve().parents[2] / "src" / "gasbill" / "web"


@pytest.mark.parametrize("text", ["=1+1", "+86 138", "-2", "@SUM(A1)", "\tx"])
def test_formula_cells_get_a_leading_quote(text: str) -> None:
    assert neutral(text) == "'" + text


def test_other_cells_are_left_alone() -> None:
    assert neutral("张三") == "张三"
    assert neutral(Decimal("-2.50")) == Decimal("-2.50")  # numbers stay numbers


def test_csv_and_xlsx_carry_the_same_inert_cells() -> None:
    rows = [["=cmd|' /C calc'!A0", Decimal("12.30")]]
    text = to_csv(["name", "amount"], rows).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[1] == ["'=cmd|' /C calc'!A0", "12.30"]
    sheet = load_workbook(io.BytesIO(to_xlsx(["name", "amount"], rows, title="t"))).active
    assert sheet["A2"].value == "'=cmd|' /C calc'!A0"
    assert sheet["A2"].data_type == "s"
    assert sheet["B2"].value == pytest.approx(12.3)


@pytest.mark.parametrize(
    ("largest", "top"),
    [("0", "1"), ("0.7", "1"), ("12.34", "20"), ("230", "250"), ("4100", "5000"), ("10", "10")],
)
def test_chart_scales_end_on_a_round_number(largest: str, top: str) -> None:
    assert nice_top(Decimal(largest)) == Decimal(top)


def test_charts_label_bars_and_escape_text() -> None:
    svg = str(bar_chart([("<b>x</b>", Decimal("-12.34"))], title="差额", unit="元"))
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    assert "-12.34" in svg and "差额 (元)" in svg
    assert ">20<" in svg  # the scale's last tick
    assert "m³" in str(column_chart([("06-01", Decimal("1.5"))], title="use", unit="m³"))


@pytest.mark.parametrize(
    ("text", "fen"), [("100", 10000), ("88.5", 8850), ("1,234.56", 123456), ("0.01", 1)]
)
def test_yuan_from_a_form(text: str, fen: int) -> None:
    assert fen_from_yuan(text) == fen


@pytest.mark.parametrize("text", ["1.234", "abc", "1e3", "", "١٢"])
def test_yuan_refused(text: str) -> None:
    with pytest.raises(FormProblem):
        fen_from_yuan(text)


def test_every_text_of_the_pages_has_a_chinese_translation() -> None:
    keywords = {"_": None, "gettext": (2,), "t": None}
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    found = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(WEB),
            method_map=method_map,
            keywords=keywords,
            options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        )
    }
    zh = i18n.translations("zh")
    missing = sorted(m for m in found if m and zh.gettext(m) == m)
    assert not missing, f"add these to translations/zh/LC_MESSAGES/messages.po: {missing}"
    assert len(found) > 150
