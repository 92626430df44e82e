"""Tariff files: `tariffs/*.toml` read, validated and built into domain tariffs.

A file is read with `tomllib.loads(text, parse_float=Decimal)`, so `2.61`
is the exact decimal 2.61 and a binary float never appears; a float that
reaches the validators any other way is refused. The raw table is checked
with pydantic models (structure, types, every rule that can name its field),
then turned into the domain's `Tariff`, whose own checks run as well.

Every problem is raised as `TariffFileError` with one line per problem:
`<file>: <field>: <rule>`, e.g.
`tariffs/x.toml: versions[1].thresholds: must ascend (500 then 350)`.
The format itself is described in `tariffs/README.md`; the file's schema is in
`schema` (its field rules in `fields`), its errors in `errors`, and how
validation errors become problems in `problems`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from gasbill.adapters.tariffs.errors import TariffFileError, TariffNotFound
from gasbill.adapters.tariffs.fields import ID_PATTERN, ID_RULE, is_zone, localize
from gasbill.adapters.tariffs.problems import syntax_problem, validation_problems
from gasbill.adapters.tariffs.schema import (
    DEFAULT_ZONE,
    DefaultsModel,
    TariffModel,
    version_label,
)
from gasbill.domain.cycles import CycleRule
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Price, Volume
from gasbill.domain.tariff import (
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
                effective_from=localize(version.effective_from, zone, f"versions[{i}]"),
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
    if not is_zone(default_zone):
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
            raise TariffFileError(
                file, validation_problems(exc, DefaultsModel, ("defaults",))
            ) from None
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
        raise TariffFileError(file, validation_problems(exc, TariffModel, (), inherited)) from None
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
        raise TariffFileError(file, [syntax_problem(exc)]) from None
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
