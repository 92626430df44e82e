"""Tariff files: the shipped examples load, and every broken rule is named."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gasbill.adapters.tariffs import (
    TariffFileError,
    TariffNotFound,
    find_tariff,
    list_tariffs,
    load_tariff,
    loader,
)
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.adapters.tariffs.loader import parse_tariff, tariff_from_data
from gasbill.domain.cycles import CycleRule
from gasbill.domain.errors import TariffError
from gasbill.domain.money import Price, Volume
from gasbill.domain.tariff import HouseholdMode, Proration, VolumeBasis

TARIFFS = Path(__file__).resolve().parents[2] / "tariffs"
SHANGHAI = ZoneInfo("Asia/Shanghai")

SHIPPED = [
    "beijing-residential",
    "beijing-wall-boiler",
    "heating-season-example",
    "price-change-example",
    "shanghai-residential",
]

GOOD = """\
name = "Test tariff"
source = "written for the tests"

[[versions]]
effective_from = 2025-01-01
prices = [2.61, 2.83, 4.23]
thresholds = [350, 500]
cycle_start = 2025-01-01
cycle_months = 12
opening_proration = "none"
reset_on_change = false
"""

SECOND = """
[[versions]]
label = "second"
effective_from = 2025-07-01
prices = [3.00]
thresholds = []
cycle_start = 2025-01-01
cycle_months = 12
opening_proration = "none"
reset_on_change = false
"""


def prices(*values: str) -> tuple[Price, ...]:
    return tuple(Price(v) for v in values)


def volumes(*values: str) -> tuple[Volume, ...]:
    return tuple(Volume(v) for v in values)


def write(tmp_path: Path, text: str, name: str = "x") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str, name: str = "x") -> TariffFileError:
    path = write(tmp_path, text, name)
    with pytest.raises(TariffFileError) as info:
        load_tariff(path)
    return info.value


def assert_names(error: TariffFileError, path: Path, field: str | None, rule: str) -> None:
    """The message names the file, the field and the rule, on one line."""
    message = str(error)
    assert message.startswith(f"{path}: "), message
    if field is not None:
        assert f"{path}: {field}: " in message, message
        assert error.field == field
    assert re.search(rule, message), message


# -- shipped files -------------------------------------------------------------------


def test_every_shipped_file_loads_sorted_by_id():
    tariffs = list_tariffs(TARIFFS)
    assert [t.id for t in tariffs] == SHIPPED
    for tariff in tariffs:
        assert tariff.zone == "Asia/Shanghai"
        assert tariff.source
        assert tariff.volume_basis is VolumeBasis.STD_SUM
        assert tariff.rounding == "ROUND_HALF_UP"
        tariff.check_meter_encodable()
        tariff.check_meter_encodable(persons=6)


@pytest.mark.parametrize("stem", SHIPPED)
def test_every_shipped_file_says_where_its_figures_come_from(stem):
    head = (TARIFFS / f"{stem}.toml").read_text(encoding="utf-8").splitlines()[:12]
    comments = " ".join(line for line in head if line.startswith("#"))
    assert re.search(r"\b20\d\d\b", comments)
    if "example" in stem:
        assert "ILLUSTRATIVE" in comments
    else:
        assert "figures as given in the gasbill brief" in comments
    assert stem in (TARIFFS / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("stem", "expected_prices", "expected_thresholds"),
    [
        ("beijing-residential", ("2.61", "2.83", "4.23"), ("350", "500")),
        ("beijing-wall-boiler", ("2.61", "2.83", "4.23"), ("1500", "2500")),
        ("shanghai-residential", ("3.00", "3.30", "4.20"), ("310", "520")),
    ],
)
def test_city_ladders(stem, expected_prices, expected_thresholds):
    tariff = load_tariff(TARIFFS / f"{stem}.toml")
    assert tariff.id == stem
    (version,) = tariff.versions
    assert version.prices == prices(*expected_prices)
    assert version.prices[0].value == Decimal(expected_prices[0])  # exact, not a float
    assert version.thresholds == volumes(*expected_thresholds)
    assert version.cycle == CycleRule(date(2019, 1, 1), 12)
    assert version.effective_from == datetime(2019, 1, 1, tzinfo=SHANGHAI)
    assert version.opening_proration is Proration.NONE
    assert not version.seasons


def test_beijing_has_no_household_bonus():
    version = load_tariff(TARIFFS / "beijing-residential.toml").versions[0]
    assert version.thresholds_for(persons=8) == volumes("350", "500")


def test_shanghai_large_households_shift_by_150():
    version = load_tariff(TARIFFS / "shanghai-residential.toml").versions[0]
    assert version.household.mode is HouseholdMode.SHIFT
    assert version.thresholds_for(persons=4) == volumes("310", "520")
    assert version.thresholds_for(persons=5) == volumes("460", "670")
    assert version.thresholds_for(persons=None) == volumes("310", "520")


def test_heating_season_costs_more_from_november_to_march():
    tariff = load_tariff(TARIFFS / "heating-season-example.toml")
    (version,) = tariff.versions
    (season,) = version.seasons
    assert season.months == frozenset({11, 12, 1, 2, 3})
    for month in range(1, 13):
        in_force = version.prices_in_month(month)
        if month in season.months:
            assert in_force == season.prices
        else:
            assert in_force == version.prices
    assert all(h > o for h, o in zip(season.prices, version.prices, strict=True))
    assert version.household.mode is HouseholdMode.WIDEN
    assert version.thresholds_for(persons=4) == volumes("700", "1400")
    assert version.opening_proration is Proration.BY_MONTH


def test_price_change_example_changes_mid_cycle_and_keeps_the_counter():
    tariff = load_tariff(TARIFFS / "price-change-example.toml")
    first, second = tariff.versions
    assert second.effective_from == datetime(2025, 7, 1, tzinfo=SHANGHAI)
    assert first.same_cycle_as(second)
    assert first.cycle.bounds(date(2025, 7, 1)) == (date(2025, 1, 1), date(2026, 1, 1))
    assert not second.reset_on_change
    assert second.prices != first.prices
    # inherited from [defaults]
    assert first.thresholds == second.thresholds == volumes("300", "600")
    assert first.opening_proration is second.opening_proration is Proration.BY_DAY
    assert tariff.version_at(datetime(2025, 6, 30, 15, 59, tzinfo=UTC)) is first
    assert tariff.version_at(datetime(2025, 6, 30, 16, 0, tzinfo=UTC)) is second


def test_at_least_one_shipped_file_uses_defaults():
    assert any(
        re.search(r"^\[defaults\]", p.read_text(encoding="utf-8"), re.MULTILINE)
        for p in TARIFFS.glob("*.toml")
    )


# -- the format --------------------------------------------------------------------


def test_minimal_file_and_its_defaults(tmp_path):
    tariff = load_tariff(write(tmp_path, GOOD, "test-tariff"))
    assert tariff.id == "test-tariff"
    assert tariff.zone == "Asia/Shanghai"
    assert tariff.volume_basis is VolumeBasis.STD_SUM
    assert tariff.rounding == "ROUND_HALF_UP"
    (version,) = tariff.versions
    assert version.label == "2025-01-01"
    assert version.effective_from == datetime(2025, 1, 1, tzinfo=SHANGHAI)
    assert version.household.bonus_for(10) == Volume(0)


def test_default_zone_comes_from_the_caller_and_timezone_overrides_it(tmp_path):
    path = write(tmp_path, GOOD)
    london = load_tariff(path, default_zone="Europe/London")
    assert london.zone == "Europe/London"
    assert london.versions[0].effective_from == datetime(2025, 1, 1, tzinfo=UTC)
    path = write(tmp_path, 'timezone = "Asia/Urumqi"\n' + GOOD)
    assert load_tariff(path, default_zone="Europe/London").zone == "Asia/Urumqi"


def test_local_datetime_effective_from_and_top_level_options(tmp_path):
    text = (
        'id = "x"\nvolume_basis = "work_sum"\nrounding = "ROUND_HALF_EVEN"\n'
        + GOOD
        + SECOND.replace("2025-07-01", "2025-07-01T06:30:00")
    )
    tariff = load_tariff(write(tmp_path, text))
    assert tariff.volume_basis is VolumeBasis.WORK_SUM
    assert tariff.rounding == "ROUND_HALF_EVEN"
    assert tariff.versions[1].effective_from == datetime(2025, 7, 1, 6, 30, tzinfo=SHANGHAI)
    assert tariff.versions[1].label == "second"


def test_defaults_are_inherited_and_a_version_overrides_them(tmp_path):
    text = """\
name = "n"
source = "s"

[defaults]
prices = [1.5, 2.5]
thresholds = [100]
cycle_start = 2025-01-01
cycle_months = 1
opening_proration = "by_day"
reset_on_change = true

[defaults.household]
mode = "widen"
bonuses = [{ persons = 3, extra_m3 = 10.5 }]

[[versions]]
effective_from = 2025-01-01

[[versions]]
effective_from = 2025-06-01
prices = [1.6, 2.6, 3.6]
thresholds = [100, 200]
reset_on_change = false
"""
    first, second = load_tariff(write(tmp_path, text)).versions
    assert first.prices == prices("1.5", "2.5")
    assert first.thresholds == volumes("100")
    assert first.cycle == second.cycle == CycleRule(date(2025, 1, 1), 1)
    assert first.opening_proration is second.opening_proration is Proration.BY_DAY
    assert first.reset_on_change
    assert not second.reset_on_change
    assert second.prices == prices("1.6", "2.6", "3.6")
    assert second.household.mode is HouseholdMode.WIDEN
    assert second.thresholds_for(persons=3) == volumes("110.5", "221")


def test_a_problem_from_an_inherited_value_says_so(tmp_path):
    text = GOOD.replace("thresholds = [350, 500]\n", "") + SECOND.replace("thresholds = []\n", "")
    text = text.replace("[[versions]]", "[defaults]\nthresholds = [350, 500]\n\n[[versions]]", 1)
    error = refused(tmp_path, text)
    assert_names(
        error,
        tmp_path / "x.toml",
        "versions[1].thresholds",
        r"1 price need 0 thresholds, got 2 \(the value comes from defaults\.thresholds\)",
    )


def test_defaults_are_checked_on_their_own(tmp_path):
    text = GOOD.replace("[[versions]]", "[defaults]\ncycle_months = 0\n\n[[versions]]")
    assert_names(refused(tmp_path, text), tmp_path / "x.toml", "defaults.cycle_months", r"1\.\.120")


# -- floats are impossible ---------------------------------------------------------


def test_numbers_are_read_as_exact_decimals(tmp_path):
    # As a float, 2.6100000000000001 is 2.61 and would pass; as a Decimal it has
    # 16 decimals and is refused: the file is never read through float.
    text = GOOD.replace("2.61", "2.6100000000000001")
    error = refused(tmp_path, text)
    assert_names(error, tmp_path / "x.toml", "versions[0].prices[0]", r"more than 3 decimals")
    assert "2.6100000000000001" in str(error)
    tariff = load_tariff(write(tmp_path, GOOD.replace("2.83", "2.830")))
    assert tariff.versions[0].prices[1].value == Decimal("2.83")
    assert tariff.versions[0].prices[1].milli == 2830


def test_a_float_is_refused_even_when_handed_in_directly():
    data = {
        "name": "n",
        "source": "s",
        "versions": [
            {
                "effective_from": date(2025, 1, 1),
                "prices": [2.61],
                "thresholds": [],
                "cycle_start": date(2025, 1, 1),
                "cycle_months": 12,
                "opening_proration": "none",
                "reset_on_change": False,
            }
        ],
    }
    with pytest.raises(TariffFileError, match=r"versions\[0\]\.prices\[0\]: is a binary float"):
        tariff_from_data(data, file="direct", stem="x")


def test_infinity_and_strings_are_not_numbers(tmp_path):
    path = tmp_path / "x.toml"
    assert_names(
        refused(tmp_path, GOOD.replace("2.61", "inf")),
        path,
        "versions[0].prices[0]",
        "must be a finite number",
    )
    assert_names(
        refused(tmp_path, GOOD.replace("2.61", '"2.61"')),
        path,
        "versions[0].prices[0]",
        r"must be a number, not a string \('2\.61'\)",
    )


# -- each rule names file, field and rule --------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "rule"),
    [
        ("[350, 500]", "[500, 350]", "versions[0].thresholds", r"must ascend \(500 then 350\)"),
        ("[350, 500]", "[350, 350]", "versions[0].thresholds", r"must ascend \(350 then 350\)"),
        ("[350, 500]", "[350]", "versions[0].thresholds", "3 prices need 2 thresholds, got 1"),
        (
            "[350, 500]",
            "[350, 500, 600]",
            "versions[0].thresholds",
            "3 prices need 2 thresholds, got 3",
        ),
        ("[350, 500]", "[0, 500]", "versions[0].thresholds[0]", r"must be greater than 0 \(0\)"),
        ("[350, 500]", "[350.0005, 500]", "versions[0].thresholds[0]", "more than 3 decimals"),
        ("4.23", "4.2345", "versions[0].prices[2]", r"more than 3 decimals \(4\.2345\)"),
        ("2.83", "-2.83", "versions[0].prices[1]", r"must not be negative \(-2\.83\)"),
        (
            "[2.61, 2.83, 4.23]",
            "[]",
            "versions[0].prices",
            "must have at least 1 entry, got 0",
        ),
        (
            "[2.61, 2.83, 4.23]",
            "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]",
            "versions[0].prices",
            "must have at most 10 entries, got 11",
        ),
        (
            "cycle_months = 12",
            "cycle_months = 0",
            "versions[0].cycle_months",
            "1..120 months, not 0",
        ),
        (
            "cycle_months = 12",
            "cycle_months = 121",
            "versions[0].cycle_months",
            "1..120 months, not 121",
        ),
        (
            "cycle_months = 12",
            "cycle_months = 12.0",
            "versions[0].cycle_months",
            "must be a whole number",
        ),
        (
            "reset_on_change = false",
            'reset_on_change = "no"',
            "versions[0].reset_on_change",
            "must be true or false, not a string",
        ),
        (
            "reset_on_change = false\n",
            "",
            "versions[0].reset_on_change",
            "required key is missing",
        ),
        (
            '"none"',
            '"weekly"',
            "versions[0].opening_proration",
            "must be 'none', 'by_month' or 'by_day', not a string \\('weekly'\\)",
        ),
        (
            "cycle_start = 2025-01-01",
            'cycle_start = "2025-01-01"',
            "versions[0].cycle_start",
            r"must be a TOML local date like 2019-01-01 \(unquoted\)",
        ),
        (
            "effective_from = 2025-01-01",
            "effective_from = 2025-01-01T00:00:00+08:00",
            "versions[0].effective_from",
            "without an offset",
        ),
        (
            "effective_from = 2025-01-01",
            "effective_from = 08:00:00",
            "versions[0].effective_from",
            "not a time of day",
        ),
        (
            "reset_on_change = false",
            "reset_on_change = false\ncolour = 'red'",
            "versions[0].colour",
            r"unknown key \(allowed here: label, effective_from, prices",
        ),
        (
            'name = "Test tariff"',
            'name = "Test tariff"\nnmae = "typo"',
            "nmae",
            r"unknown key \(allowed here: id, name, source, timezone",
        ),
        ('name = "Test tariff"', 'name = "  "', "name", "must not be empty"),
        ('source = "written for the tests"\n', "", "source", "required key is missing"),
        (
            'name = "Test tariff"',
            'name = "Test tariff"\ntimezone = "Mars/Olympus_Mons"',
            "timezone",
            "'Mars/Olympus_Mons' is not a known IANA time zone",
        ),
        (
            'name = "Test tariff"',
            'name = "Test tariff"\nrounding = "HALF_UP"',
            "rounding",
            "must be one of ROUND_CEILING, .*not a string",
        ),
        (
            'name = "Test tariff"',
            'name = "Test tariff"\nvolume_basis = "sum"',
            "volume_basis",
            "must be 'std_sum' or 'work_sum'",
        ),
        (
            'name = "Test tariff"',
            'name = "Test tariff"\nid = "y"',
            "id",
            "must equal the file name's stem 'x', not 'y'",
        ),
    ],
)
def test_rule_broken(tmp_path, old, new, field, rule):
    assert old in GOOD
    error = refused(tmp_path, GOOD.replace(old, new, 1))
    assert_names(error, tmp_path / "x.toml", field, rule)
    assert isinstance(error, TariffError)


def test_one_line_per_problem(tmp_path):
    text = GOOD.replace("2.83", "-1").replace("cycle_months = 12", "cycle_months = 0")
    error = refused(tmp_path, text)
    lines = str(error).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{tmp_path / 'x.toml'}: versions[0].") for line in lines)
    assert {field for field, _ in error.problems} == {
        "versions[0].prices[1]",
        "versions[0].cycle_months",
    }


def test_syntax_error_names_file_and_line(tmp_path):
    text = GOOD.replace("cycle_months = 12", "cycle_months = ")
    line = text.splitlines().index("cycle_months = ") + 1
    error = refused(tmp_path, text)
    assert_names(error, tmp_path / "x.toml", f"line {line}, column 16", "TOML syntax error")


def test_duplicate_key_is_a_syntax_error(tmp_path):
    error = refused(tmp_path, 'name = "first"\n' + GOOD)
    assert_names(error, tmp_path / "x.toml", None, r"x\.toml: line 2, column \d+: TOML syntax")


SEASON = """
[[versions.seasons]]
name = "heating"
months = {months}
prices = {prices}
"""


def season(months: str = "[11, 12, 1, 2, 3]", season_prices: str = "[3, 3.5, 5]") -> str:
    return SEASON.replace("{months}", months).replace("{prices}", season_prices)


@pytest.mark.parametrize(
    ("extra", "field", "rule"),
    [
        (
            season(season_prices="[3, 3.5]"),
            "versions[0].seasons[0].prices",
            "season 'heating' needs 3 prices like the version's, got 2",
        ),
        (season(months="[12, 13]"), "versions[0].seasons[0].months[1]", r"1\.\.12 .*not 13"),
        (season(months="[1, 2, 1]"), "versions[0].seasons[0].months[2]", "month 1 is listed twice"),
        (season(months="[]"), "versions[0].seasons[0].months", "at least 1 entry"),
        (
            season() + season(months="[3, 4]").replace("heating", "spring"),
            "versions[0].seasons[1].months",
            "month 3 is already in season 'heating'",
        ),
        (
            season(season_prices="[3, -3.5, 5]"),
            "versions[0].seasons[0].prices[1]",
            "must not be negative",
        ),
        (
            "[versions.household]\nmode = 'double'\nbonuses = [{ persons = 5, extra_m3 = 1 }]",
            "versions[0].household.mode",
            "must be 'shift' or 'widen'",
        ),
        (
            "[versions.household]\nmode = 'shift'\nbonuses = []",
            "versions[0].household.bonuses",
            "at least 1 entry",
        ),
        (
            "[versions.household]\nmode = 'shift'\nbonuses = [{ persons = 0, extra_m3 = 1 }]",
            "versions[0].household.bonuses[0].persons",
            "must be 1 or more persons, not 0",
        ),
        (
            "[versions.household]\nmode = 'shift'\nbonuses = [{ persons = 5, extra_m3 = -1 }]",
            "versions[0].household.bonuses[0].extra_m3",
            "must be greater than 0",
        ),
        (
            "[versions.household]\nmode = 'shift'\n"
            "bonuses = [{ persons = 5, extra_m3 = 1, x = 2 }]",
            "versions[0].household.bonuses[0].x",
            r"unknown key \(allowed here: persons, extra_m3\)",
        ),
        (
            "[versions.household]\nmode = 'shift'\n"
            "bonuses = [{ persons = 5, extra_m3 = 1 }, { persons = 5, extra_m3 = 2 }]",
            "versions[0].household.bonuses[1].persons",
            r"persons = 5 is also in bonuses\[0\]",
        ),
        (
            "[versions.household]\nmode = 'shift'\n"
            "bonuses = [{ persons = 5, extra_m3 = 100 }, { persons = 7, extra_m3 = 50 }]",
            "versions[0].household.bonuses[1].extra_m3",
            r"7 or more persons get less \(50 m³\) than 5 or more \(100 m³\)",
        ),
        ("household = 5", "versions[0].household", "must be a table, not an integer"),
    ],
)
def test_season_and_household_rules(tmp_path, extra, field, rule):
    error = refused(tmp_path, GOOD + extra)
    assert_names(error, tmp_path / "x.toml", field, rule)


def test_versions_must_be_strictly_ordered(tmp_path):
    path = tmp_path / "x.toml"
    error = refused(tmp_path, GOOD + SECOND.replace("2025-07-01", "2024-07-01"))
    assert_names(
        error,
        path,
        "versions[1].effective_from",
        r"must be later than versions\[0\]\.effective_from \(2025-01-01, here 2024-07-01\)",
    )
    same = SECOND.replace("2025-07-01", "2025-01-01T00:00:00")
    assert_names(refused(tmp_path, GOOD + same), path, "versions[1].effective_from", "later")


def test_version_labels_are_unique(tmp_path):
    text = GOOD + SECOND.replace('label = "second"', 'label = "2025-01-01"')
    assert_names(
        refused(tmp_path, text),
        tmp_path / "x.toml",
        "versions[1].label",
        r"label '2025-01-01' is also versions\[0\]'s",
    )


def test_at_least_one_version(tmp_path):
    text = 'name = "n"\nsource = "s"\nversions = []\n'
    assert_names(refused(tmp_path, text), tmp_path / "x.toml", "versions", "at least 1 entry")
    text = 'name = "n"\nsource = "s"\n'
    assert_names(refused(tmp_path, text), tmp_path / "x.toml", "versions", "required")


@pytest.mark.parametrize(
    ("when", "rule"),
    [
        ("2025-03-09T02:30:00", "does not exist in America/New_York"),
        ("2025-11-02T01:30:00", "happens twice"),
    ],
)
def test_local_times_the_clock_skips_or_repeats_are_refused(tmp_path, when, rule):
    text = 'timezone = "America/New_York"\n' + GOOD.replace("2025-01-01", when, 1)
    assert_names(refused(tmp_path, text), tmp_path / "x.toml", "versions[0].effective_from", rule)


def test_bad_default_zone_is_named(tmp_path):
    with pytest.raises(TariffFileError, match="the default zone 'Nowhere/City'"):
        load_tariff(write(tmp_path, GOOD), default_zone="Nowhere/City")


def test_file_name_must_be_an_id(tmp_path):
    error = refused(tmp_path, GOOD, name="my tariff")
    assert "file name 'my tariff' is not a valid tariff id" in str(error)


def test_domain_errors_get_the_file_name(tmp_path, monkeypatch):
    def broken_rule(anchor, months):
        raise TariffError("cycle_months must be in 1..120, not 7 (as the domain says)")

    monkeypatch.setattr(loader, "CycleRule", broken_rule)
    error = refused(tmp_path, GOOD)
    assert (
        str(error)
        == f"{tmp_path / 'x.toml'}: cycle_months must be in 1..120, not 7 (as the domain says)"
    )
    assert isinstance(error.__cause__, TariffError)


def test_unreadable_files(tmp_path):
    with pytest.raises(TariffFileError, match="no such file"):
        load_tariff(tmp_path / "missing.toml")
    path = tmp_path / "latin.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(TariffFileError, match=r"latin\.toml: is not UTF-8"):
        load_tariff(path)


def test_parse_tariff_from_text_without_a_file():
    tariff = parse_tariff('id = "inline"\n' + GOOD)
    assert tariff.id == "inline"
    with pytest.raises(TariffFileError, match=r"^<tariff>: id: required key is missing"):
        parse_tariff(GOOD)


# -- listing and finding -------------------------------------------------------------


def test_list_tariffs_raises_on_a_broken_file(tmp_path):
    write(tmp_path, GOOD, "a")
    write(tmp_path, GOOD.replace("[350, 500]", "[500, 350]"), "b")
    with pytest.raises(TariffFileError, match=r"b\.toml: versions\[0\]\.thresholds: must ascend"):
        list_tariffs(tmp_path)


def test_list_tariffs_sorts_by_id_and_ignores_other_files(tmp_path):
    write(tmp_path, GOOD, "zeta")
    write(tmp_path, GOOD, "alpha")
    (tmp_path / "notes.md").write_text("not a tariff")
    assert [t.id for t in list_tariffs(tmp_path)] == ["alpha", "zeta"]
    with pytest.raises(TariffFileError, match="is not a directory"):
        list_tariffs(tmp_path / "absent")


def test_find_tariff_by_id_and_by_path(tmp_path):
    assert find_tariff("shanghai-residential", TARIFFS).id == "shanghai-residential"
    path = write(tmp_path, GOOD, "elsewhere")
    assert find_tariff(str(path), TARIFFS).id == "elsewhere"


def test_find_tariff_not_found_lists_the_ids(tmp_path):
    with pytest.raises(TariffNotFound) as info:
        find_tariff("tokyo-residential", TARIFFS)
    message = str(info.value)
    assert "'tokyo-residential'" in message
    for stem in SHIPPED:
        assert stem in message
    assert isinstance(info.value, TariffError)
    assert info.value.available == tuple(SHIPPED)


@pytest.mark.parametrize("wanted", ["../tariffs/beijing-residential", "missing.toml", ""])
def test_find_tariff_refuses_what_is_neither_an_id_nor_a_file(wanted):
    with pytest.raises(TariffNotFound, match="available: beijing-residential"):
        find_tariff(wanted, TARIFFS)


@pytest.mark.parametrize(
    "asked",
    [
        str(Path(__file__).parents[2] / "tariffs" / "beijing-residential.toml"),  # a path
        "../tariffs/beijing-residential",
        "beijing-residential.toml",
    ],
)
def test_the_catalog_finds_tariffs_by_id_only_never_by_path(asked):
    catalog = TariffCatalog(Path(__file__).parents[2] / "tariffs", "Asia/Shanghai")
    assert catalog.get("beijing-residential").id == "beijing-residential"
    with pytest.raises(TariffNotFound):
        catalog.get(asked)
