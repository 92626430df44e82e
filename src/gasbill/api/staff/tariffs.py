"""The tariff catalog: what is loaded, each tariff in full, and reloading the files (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from gasbill.adapters.tariffs import TariffNotFound
from gasbill.api.deps import CatalogDep, ContextDep, CurrentUser, UowDep
from gasbill.api.errors import not_found
from gasbill.api.policy import API
from gasbill.domain.tariff import Tariff, TariffVersion
from gasbill.service.staff import reload_tariffs

router = APIRouter(prefix=f"{API}/tariffs", tags=["tariffs"])

TariffIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class TariffOut(BaseModel):
    id: str
    name: str
    zone: str
    volume_basis: str
    rounding: str
    versions: int
    in_force_from: datetime


class SeasonOut(BaseModel):
    name: str
    months: list[int]
    prices: list[str]


class VersionOut(BaseModel):
    label: str
    effective_from: datetime
    prices: list[str]  # yuan per m³
    thresholds: list[str]  # m³ per cycle
    cycle_anchor: str
    cycle_months: int
    seasons: list[SeasonOut]
    household_mode: str
    household_bonuses: list[tuple[int, str]]
    opening_proration: str
    reset_on_change: bool

    @classmethod
    def of(cls, version: TariffVersion) -> VersionOut:
        return cls(
            label=version.label,
            effective_from=version.effective_from,
            prices=[p.fixed() for p in version.prices],
            thresholds=[t.fixed() for t in version.thresholds],
            cycle_anchor=version.cycle.anchor.isoformat(),
            cycle_months=version.cycle.months,
            seasons=[
                SeasonOut(
                    name=s.name, months=sorted(s.months), prices=[p.fixed() for p in s.prices]
                )
                for s in version.seasons
            ],
            household_mode=str(version.household.mode),
            household_bonuses=[(n, v.fixed()) for n, v in version.household.bonuses],
            opening_proration=str(version.opening_proration),
            reset_on_change=version.reset_on_change,
        )


class TariffDetailOut(TariffOut):
    history: list[VersionOut]


def tariff_out(tariff: Tariff) -> TariffOut:
    return TariffOut(
        id=tariff.id,
        name=tariff.name,
        zone=tariff.zone,
        volume_basis=str(tariff.volume_basis),
        rounding=tariff.rounding,
        versions=len(tariff.versions),
        in_force_from=tariff.versions[0].effective_from,
    )


@router.get("", summary="Every tariff in the tariffs directory")
def list_(catalog: CatalogDep) -> list[TariffOut]:
    return [tariff_out(t) for t in catalog.all()]


@router.post("/reload", summary="Read the tariff files again (every file must validate)")
def reload(user: CurrentUser, ctx: ContextDep, uow: UowDep, catalog: CatalogDep) -> list[TariffOut]:
    tariffs = reload_tariffs(uow, catalog, actor=user.username, now=ctx.clock())
    return [tariff_out(t) for t in tariffs]


@router.get("/{tariff_id}", summary="One tariff: every version, price and threshold")
def show(tariff_id: TariffIdPath, catalog: CatalogDep) -> TariffDetailOut:
    try:
        tariff = catalog.get(tariff_id)
    except TariffNotFound as exc:
        raise not_found(str(exc)) from None
    return TariffDetailOut(
        **tariff_out(tariff).model_dump(), history=[VersionOut.of(v) for v in tariff.versions]
    )
