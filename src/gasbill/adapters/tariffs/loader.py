"""Tariff files: `tariffs/*.toml` read, validated and built into domain tariffs.

A file is read with `tomllib.loads(text, parse_float=Decimal)`, so `2.61`
is the exact decimal 2.61 and a binary float never appears; a float that
reaches the validators any other way is refused. The raw table is checked
with pydantic models (structure, types, every rule that can name its field),
then turned into the domain's `Tariff`, whose own checks run as well.

Every problem is raised as `TariffFileError` with one line per problem:
`<file>: <field>: <rule>`, e.g.
`tariffs/x.toml: versions[1].thresholds: must ascend (500 then 350)`.
The format itself is described in `tariffs/README.md`.
"""

from __future__ import annotations

import inspect
import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from gasbill.domain.cycles import MAX_CYCLE_MONTHS, MIN_CYCLE_MONTHS, CycleRule, local_midnight
from gasbill.domain.errors import GasbillError, TariffError
from gasbill.domain.money import DEFAULT_ROUNDING, MILLI, ROUNDING_MODES, Price, Volume
from gasbill.domain.tariff import (
    MAX_PRICES,
    HouseholdMode,
    HouseholdPolicy,
    Proration,
    Season,
    Tariff,
    TariffVersion,
    VolumeBasis,
)

__all__ = [
    "DEFAULT_ZONE",
    "TariffFileError",
    "TariffNotFound",
    "available_ids",
    "find_tariff",
    "list_tariffs",
    "load_tariff",
    "parse_tariff",
    "tariff_from_data",
]

DEFAULT_ZONE = "Asia/Shanghai"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
ID_RULE = "letters, digits, '-' and '_', starting with a letter or digit"
MAX_DECIMALS = 3
LIMIT = Decimal(10) ** 9  # far above any real price or threshold; keeps storage in int64


# -- errors ------------------------------------------------------------------------


class TariffFileError(TariffError):
    """A tariff file that cannot be read or breaks a rule.

    `problems` holds (field, rule) pairs; the field is None when the problem
    is the file as a whole. The message has one `file: field: rule` line each.
    """

    def __init__(self, file: str, problems: Sequence[tuple[str | None, str]]) -> None:
        self.file = file
        self.problems: tuple[tuple[str | None, str], ...] = tuple(problems)
        lines = [
            f"{file}: {rule}" if field is None else f"{file}: {field}: {rule}"
            for field, rule in self.problems
        ]
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.problems))

    @property
    def field(self) -> str | None:
        return self.problems[0][0] if self.problems else None

    @property
    def rule(self) -> str:
        return self.problems[0][1] if self.problems else ""


class TariffNotFound(TariffError):
    """No tariff file with that id (or at that path)."""

    def __init__(self, wanted: str, directory: Path, available: Sequence[str]) -> None:
        self.wanted = wanted
        self.directory = directory
        self.available = tuple(available)
        listed = ", ".join(self.available) if self.available else "none"
        super().__init__(
            f"no tariff {wanted!r}: not a .toml file nor a tariff id in {directory} "
            f"(available: {listed})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.wanted, self.directory, self.available))


# -- value checks (each raises a PydanticCustomError whose message is the rule) --------


def _rule(kind: str, message: str, at: str | None = None) -> PydanticCustomError:
    # The message is pydantic's template, but only "{at}" could be replaced in it.
    return PydanticCustomError(kind, message, _at(at))


def _at(at: str | None) -> dict[str, Any] | None:
    return None if at is None else {"at": at}


def _kind(value: object) -> str:
    """What a value is, in TOML's words, with the value when it is short."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, float):
        return f"a binary float ({value!r})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, Decimal):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, datetime):
        return f"a date-time ({value.isoformat()})"
    if isinstance(value, date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, time):
        return f"a time of day ({value.isoformat()})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


def _number(value: object) -> Decimal:
    if isinstance(value, float):
        raise _rule(
            "float",
            f"is a binary float ({value!r}), which cannot hold prices exactly: tariff numbers "
            "must be exact decimals (TOML is read with parse_float=Decimal)",
        )
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise _rule("number_type", f"must be a number, not {_kind(value)}")
    number = Decimal(value)
    if not number.is_finite():
        raise _rule("finite", f"must be a finite number, not {value}")
    if abs(number) >= LIMIT:
        raise _rule("too_large", f"must be below {LIMIT:f}, not {number}")
    return number


def _decimals(number: Decimal, unit: str) -> None:
    if number != number.quantize(MILLI):
        raise _rule(
            "decimals",
            f"has more than {MAX_DECIMALS} decimals ({number}); {unit} are kept in thousandths",
        )


def _price(value: object) -> Decimal:
    number = _number(value)
    if number < 0:
        raise _rule("negative", f"must not be negative ({number})")
    _decimals(number, "prices (yuan/m³)")
    return number


def _volume(value: object) -> Decimal:
    number = _number(value)
    if number <= 0:
        raise _rule("not_positive", f"must be greater than 0 ({number})")
    _decimals(number, "volumes (m³)")
    return number


def _int_between(low: int, high: int | None, what: str) -> Any:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _rule("int_type", f"must be a whole number, not {_kind(value)}")
        if value < low or (high is not None and value > high):
            allowed = f"{low}..{high}" if high is not None else f"{low} or more"
            raise _rule("range", f"must be {allowed} {what}, not {value}")
        return value

    return PlainValidator(check)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _rule("string_type", f"must be a string, not {_kind(value)}")
    text = value.strip()
    if not text:
        raise _rule("empty", "must not be empty")
    return text


def _tariff_id(value: object) -> str:
    text = _text(value)
    if not ID_PATTERN.match(text):
        raise _rule("id_pattern", f"{text!r} is not a valid tariff id ({ID_RULE})")
    return text


def _zone(value: object) -> str:
    name = _text(value)
    if not _is_zone(name):
        raise _rule("zone", f"{name!r} is not a known IANA time zone (like 'Asia/Shanghai')")
    return name


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _rounding(value: object) -> str:
    if not isinstance(value, str) or value not in ROUNDING_MODES:
        modes = ", ".join(sorted(ROUNDING_MODES))
        raise _rule("rounding", f"must be one of {modes}, not {_kind(value)}")
    return value


def _local_date(value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        hint = " (unquoted)" if isinstance(value, str) else ""
        raise _rule(
            "date_type", f"must be a TOML local date like 2019-01-01{hint}, not {_kind(value)}"
        )
    return value


def _effective(value: object) -> date | datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise _rule(
                "offset",
                f"must be a local date-time without an offset (it is read in the tariff's "
                f"time zone), not {value.isoformat()}",
            )
        return value
    if isinstance(value, date):
        return value
    hint = " (unquoted)" if isinstance(value, str) else ""
    raise _rule(
        "date_type",
        f"must be a TOML local date or date-time like 2025-07-01 or 2025-07-01T08:00:00{hint}, "
        f"not {_kind(value)}",
    )


PriceValue = Annotated[Decimal, PlainValidator(_price)]
VolumeValue = Annotated[Decimal, PlainValidator(_volume)]
Text = Annotated[str, PlainValidator(_text)]
TariffId = Annotated[str, PlainValidator(_tariff_id)]
Zone = Annotated[str, PlainValidator(_zone)]
Rounding = Annotated[str, PlainValidator(_rounding)]
LocalDate = Annotated[date, PlainValidator(_local_date)]
EffectiveFrom = Annotated[date | datetime, PlainValidator(_effective)]
CycleMonths = Annotated[int, _int_between(MIN_CYCLE_MONTHS, MAX_CYCLE_MONTHS, "months")]
Month = Annotated[int, _int_between(1, 12, "(a calendar month)")]
Persons = Annotated[int, _int_between(1, None, "persons")]
ProrationName = Literal["none", "by_month", "by_day"]
ModeName = Literal["shift", "widen"]
BasisName = Literal["std_sum", "work_sum"]


# -- the file's models ---------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class BonusModel(_Model):
    persons: Persons
    extra_m3: VolumeValue


class HouseholdModel(_Model):
    mode: ModeName
    bonuses: list[BonusModel] = Field(min_length=1)

    @field_validator("bonuses")
    @classmethod
    def _sizes_distinct_and_bonuses_grow(cls, bonuses: list[BonusModel]) -> list[BonusModel]:
        first: dict[int, int] = {}
        for j, bonus in enumerate(bonuses):
            if bonus.persons in first:
                raise _rule(
                    "duplicate",
                    f"persons = {bonus.persons} is also in bonuses[{first[bonus.persons]}]",
                    f"[{j}].persons",
                )
            first[bonus.persons] = j
        ordered = sorted(bonuses, key=lambda b: b.persons)
        for smaller, larger in itertools.pairwise(ordered):
            if larger.extra_m3 < smaller.extra_m3:
                raise _rule(
                    "shrinking",
                    f"{larger.persons} or more persons get less ({larger.extra_m3} m³) than "
                    f"{smaller.persons} or more ({smaller.extra_m3} m³)",
                    f"[{first[larger.persons]}].extra_m3",
                )
        return bonuses


class SeasonModel(_Model):
    name: Text
    months: list[Month] = Field(min_length=1, max_length=12)
    prices: list[PriceValue] = Field(min_length=1, max_length=MAX_PRICES)

    @field_validator("months")
    @classmethod
    def _months_once(cls, months: list[int]) -> list[int]:
        seen: set[int] = set()
        for j, month in enumerate(months):
            if month in seen:
                raise _rule("duplicate", f"month {month} is listed twice", f"[{j}]")
            seen.add(month)
        return months


class VersionModel(_Model):
    label: Text | None = None
    effective_from: EffectiveFrom
    prices: list[PriceValue] = Field(min_length=1, max_length=MAX_PRICES)
    thresholds: list[VolumeValue]
    cycle_start: LocalDate
    cycle_months: CycleMonths
    seasons: list[SeasonModel] = Field(default_factory=list)
    household: HouseholdModel | None = None
    opening_proration: ProrationName
    reset_on_change: bool

    @field_validator("thresholds")
    @classmethod
    def _ladder(cls, thresholds: list[Decimal], info: ValidationInfo) -> list[Decimal]:
        prices = info.data.get("prices")
        if prices is not None and len(thresholds) != len(prices) - 1:
            raise _rule(
                "count",
                f"{len(prices)} price{'s' if len(prices) > 1 else ''} need "
                f"{len(prices) - 1} threshold{'s' if len(prices) != 2 else ''}, "
                f"got {len(thresholds)}",
            )
        for lower, upper in itertools.pairwise(thresholds):
            if upper <= lower:
                raise _rule("ascending", f"must ascend ({lower} then {upper})")
        return thresholds

    @model_validator(mode="after")
    def _seasons_fit(self) -> Self:
        owner: dict[int, str] = {}
        for j, season in enumerate(self.seasons):
            if len(season.prices) != len(self.prices):
                raise _rule(
                    "season_prices",
                    f"season {season.name!r} needs {len(self.prices)} prices like the "
                    f"version's, got {len(season.prices)}",
                    f"seasons[{j}].prices",
                )
            for month in season.months:
                if month in owner:
                    raise _rule(
                        "overlap",
                        f"month {month} is already in season {owner[month]!r}",
                        f"seasons[{j}].months",
                    )
                owner[month] = season.name
        return self


class DefaultsModel(_Model):
    """`[defaults]`: any version key, inherited by every version that lacks it."""

    label: Text | None = None
    effective_from: EffectiveFrom | None = None
    prices: list[PriceValue] | None = Field(default=None, min_length=1, max_length=MAX_PRICES)
    thresholds: list[VolumeValue] | None = None
    cycle_start: LocalDate | None = None
    cycle_months: CycleMonths | None = None
    seasons: list[SeasonModel] | None = None
    household: HouseholdModel | None = None
    opening_proration: ProrationName | None = None
    reset_on_change: bool | None = None


class TariffModel(_Model):
    id: TariffId | None = None
    name: Text
    source: Text
    timezone: Zone | None = None
    volume_basis: BasisName = "std_sum"
    rounding: Rounding = DEFAULT_ROUNDING
    versions: list[VersionModel] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_is_stem(cls, value: str | None, info: ValidationInfo) -> str | None:
        stem = (info.context or {}).get("stem")
        if value is not None and stem is not None and value != stem:
            raise _rule("id_stem", f"must equal the file name's stem {stem!r}, not {value!r}")
        return value

    @model_validator(mode="after")
    def _versions_in_order(self, info: ValidationInfo) -> Self:
        zone = ZoneInfo(self.timezone or (info.context or {}).get("default_zone", DEFAULT_ZONE))
        previous: datetime | None = None
        for i, version in enumerate(self.versions):
            instant = _localize(version.effective_from, zone, f"versions[{i}].effective_from")
            if previous is not None and instant <= previous:
                raise _rule(
                    "order",
                    f"must be later than versions[{i - 1}].effective_from "
                    f"({_show_when(self.versions[i - 1].effective_from)}, here "
                    f"{_show_when(version.effective_from)}): versions are listed in the order "
                    "they take effect",
                    f"versions[{i}].effective_from",
                )
            previous = instant
        first: dict[str, int] = {}
        for i, version in enumerate(self.versions):
            label = version_label(version)
            if label in first:
                raise _rule(
                    "duplicate",
                    f"label {label!r} is also versions[{first[label]}]'s: labels must be unique",
                    f"versions[{i}].label",
                )
            first[label] = i
        return self


def version_label(version: VersionModel) -> str:
    return version.label or _show_when(version.effective_from)


def _show_when(value: date | datetime) -> str:
    return value.isoformat()


def _localize(value: date | datetime, zone: ZoneInfo, at: str) -> datetime:
    """The aware instant of a local date (its midnight) or a local date-time in `zone`."""
    if not isinstance(value, datetime):
        return local_midnight(value, zone)
    aware = value.replace(tzinfo=zone)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
        raise _rule(
            "dst_gap", f"{value.isoformat()} does not exist in {zone.key} (clocks skip it)", at
        )
    if aware.replace(fold=1).utcoffset() != aware.utcoffset():
        raise _rule(
            "dst_fold", f"{value.isoformat()} happens twice in {zone.key} (clocks go back)", at
        )
    return aware


# -- pydantic errors → (field, rule) -----------------------------------------------


def _path(parts: Sequence[int | str]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _join(path: str, at: str) -> str:
    if not path:
        return at
    return path + at if at.startswith("[") else f"{path}.{at}"


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(root: type[BaseModel], parent: Sequence[int | str]) -> list[str]:
    model: type[BaseModel] | None = root
    for part in parent:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return []
        model = _submodel(model.model_fields[part].annotation)
    if model is None:
        return []
    keys = list(model.model_fields)
    if model is TariffModel:
        keys.insert(keys.index("versions"), "defaults")
    return keys


_TYPE_NAMES = {
    "model_type": "a table",
    "dict_type": "a table",
    "list_type": "an array",
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "a whole number",
}


def _describe(error: ErrorDetails, root: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, error["loc"][:-1])
        return f"unknown key (allowed here: {', '.join(allowed)})" if allowed else "unknown key"
    if kind in ("too_short", "too_long"):
        actual = ctx.get("actual_length")
        if actual is None and isinstance(value, list):
            actual = len(value)
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        entries = "entry" if bound == 1 else "entries"
        return f"must have {word} {bound} {entries}, got {actual}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, not {_kind(value)}"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, not {_kind(value)}"
    message = error["msg"]
    if message.startswith("Input should be "):
        return f"must be {message.removeprefix('Input should be ')}, not {_kind(value)}"
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    return message


_INHERITED = re.compile(r"versions\[(\d+)\]\.([a-z_]+)")


def _problems(
    exc: ValidationError,
    root: type[BaseModel],
    prefix: Sequence[str] = (),
    inherited: Sequence[set[str]] = (),
) -> list[tuple[str | None, str]]:
    problems: list[tuple[str | None, str]] = []
    for error in exc.errors(include_url=False):
        path = _path([*prefix, *error["loc"]])
        at = (error.get("ctx") or {}).get("at")
        if isinstance(at, str):
            path = _join(path, at)
        rule = _describe(error, root)
        match = _INHERITED.match(path)
        if match is not None:
            index, key = int(match.group(1)), match.group(2)
            if index < len(inherited) and key in inherited[index]:
                rule += f" (the value comes from defaults.{key})"
        problems.append((path or None, rule))
    return problems


def _syntax_problem(exc: tomllib.TOMLDecodeError) -> tuple[str | None, str]:
    text = str(exc)
    found = re.fullmatch(r"(?s)(.*) \(at line (\d+), column (\d+)\)", text)
    if found is not None:
        detail = found.group(1)
        where = f"line {found.group(2)}, column {found.group(3)}"
    elif text.endswith(" (at end of document)"):
        detail, where = text.removesuffix(" (at end of document)"), "end of file"
    else:
        detail, where = text, None
    detail = detail[:1].lower() + detail[1:]
    return where, f"TOML syntax error: {detail}"


# -- building the domain tariff --------------------------------------------------------


def _build(model: TariffModel, tariff_id: str, zone_name: str) -> Tariff:
    zone = ZoneInfo(zone_name)
    versions = []
    for i, version in enumerate(model.versions):
        household = HouseholdPolicy()
        if version.household is not None:
            household = HouseholdPolicy(
                mode=HouseholdMode(version.household.mode),
                bonuses=tuple(
                    (bonus.persons, Volume(bonus.extra_m3)) for bonus in version.household.bonuses
                ),
            )
        versions.append(
            TariffVersion(
                label=version_label(version),
                effective_from=_localize(version.effective_from, zone, f"versions[{i}]"),
                prices=tuple(Price(p) for p in version.prices),
                thresholds=tuple(Volume(t) for t in version.thresholds),
                cycle=CycleRule(version.cycle_start, version.cycle_months),
                seasons=tuple(
                    Season(
                        name=season.name,
                        months=frozenset(season.months),
                        prices=tuple(Price(p) for p in season.prices),
                    )
                    for season in version.seasons
                ),
                household=household,
                opening_proration=Proration(version.opening_proration),
                reset_on_change=version.reset_on_change,
            )
        )
    return Tariff(
        id=tariff_id,
        name=model.name,
        zone=zone_name,
        versions=tuple(versions),
        volume_basis=VolumeBasis(model.volume_basis),
        rounding=model.rounding,
        source=model.source,
    )


# -- public API ------------------------------------------------------------------------


def tariff_from_data(
    data: Mapping[str, Any],
    *,
    file: str = "<tariff>",
    stem: str | None = None,
    default_zone: str = DEFAULT_ZONE,
) -> Tariff:
    """Validate a parsed tariff table and build the domain tariff.

    `stem` is the file name without `.toml`: the id when the table has none,
    and what a given `id` must equal. Floats anywhere are refused.
    """
    if stem is not None and not ID_PATTERN.match(stem):
        raise TariffFileError(
            file, [(None, f"file name {stem!r} is not a valid tariff id ({ID_RULE})")]
        )
    if not _is_zone(default_zone):
        raise TariffFileError(
            file,
            [("timezone", f"the default zone {default_zone!r} is not a known IANA time zone")],
        )
    context = {"stem": stem, "default_zone": default_zone}
    raw = dict(data)
    defaults = raw.pop("defaults", None)
    inherited: list[set[str]] = []
    if defaults is not None:
        try:
            DefaultsModel.model_validate(defaults, context=context)
        except ValidationError as exc:
            raise TariffFileError(file, _problems(exc, DefaultsModel, ("defaults",))) from None
        versions = raw.get("versions")
        if isinstance(defaults, Mapping) and isinstance(versions, list):
            merged: list[Any] = []
            for version in versions:
                if isinstance(version, Mapping):
                    inherited.append(set(defaults) - set(version))
                    merged.append({**defaults, **version})
                else:
                    inherited.append(set())
                    merged.append(version)
            raw["versions"] = merged
    try:
        model = TariffModel.model_validate(raw, context=context)
    except ValidationError as exc:
        raise TariffFileError(file, _problems(exc, TariffModel, (), inherited)) from None
    tariff_id = model.id or stem
    if tariff_id is None:
        raise TariffFileError(
            file, [("id", "required key is missing (no file name to take it from)")]
        )
    try:
        return _build(model, tariff_id, model.timezone or default_zone)
    except GasbillError as exc:
        raise TariffFileError(file, [(None, str(exc))]) from exc


def parse_tariff(
    text: str,
    *,
    file: str = "<tariff>",
    stem: str | None = None,
    default_zone: str = DEFAULT_ZONE,
) -> Tariff:
    """A tariff from TOML text, numbers read as exact decimals."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise TariffFileError(file, [_syntax_problem(exc)]) from None
    return tariff_from_data(data, file=file, stem=stem, default_zone=default_zone)


def load_tariff(path: Path, default_zone: str = DEFAULT_ZONE) -> Tariff:
    """Read, validate and build the tariff in one `.toml` file; its stem is its id."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TariffFileError(file, [(None, "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise TariffFileError(
            file, [(None, f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    except OSError as exc:
        raise TariffFileError(file, [(None, f"cannot be read ({exc.strerror or exc})")]) from None
    return parse_tariff(text, file=file, stem=path.stem, default_zone=default_zone)


def _tariff_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise TariffFileError(str(directory), [(None, "is not a directory")])
    return sorted((p for p in directory.glob("*.toml") if p.is_file()), key=lambda p: p.stem)


def available_ids(directory: Path) -> list[str]:
    """The ids (file stems) of the tariff files in a directory, sorted; nothing is loaded."""
    return [p.stem for p in _tariff_files(Path(directory))]


def list_tariffs(directory: Path, default_zone: str = DEFAULT_ZONE) -> list[Tariff]:
    """Every `*.toml` tariff in a directory, sorted by id; a broken file raises."""
    return [load_tariff(p, default_zone) for p in _tariff_files(Path(directory))]


def find_tariff(id_or_path: str, directory: Path, default_zone: str = DEFAULT_ZONE) -> Tariff:
    """A tariff by the path of its `.toml` file, or by its id (file stem) in `directory`."""
    directory = Path(directory)
    candidate = Path(id_or_path)
    if candidate.suffix == ".toml" and candidate.is_file():
        return load_tariff(candidate, default_zone)
    if ID_PATTERN.match(id_or_path):
        by_id = directory / f"{id_or_path}.toml"
        if by_id.is_file():
            return load_tariff(by_id, default_zone)
    available = available_ids(directory) if directory.is_dir() else []
    raise TariffNotFound(id_or_path, directory, available)
