"""Shared fixtures. Database tests run on SQLite always, and on PostgreSQL when
GASBILL_TEST_DATABASE_URL is set (CI sets it); otherwise they show as skipped."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.tariff import VolumeBasis

PG_ENV = "GASBILL_TEST_DATABASE_URL"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
    yield url


@pytest.fixture
def tariffs_dir() -> Path:
    return ROOT / "tariffs"


# beijing-residential again, billing on the working-condition register (`work_sum_catalog`)
WORK_SUM_TARIFF = "beijing-residential-work-sum"


@pytest.fixture
def work_sum_catalog(tmp_path: Path) -> TariffCatalog:
    """The repository's tariffs and `WORK_SUM_TARIFF`: beijing-residential with
    `volume_basis = "work_sum"`, so rating and final registers take the work register."""
    directory = tmp_path / "tariffs"
    directory.mkdir()
    for source in (ROOT / "tariffs").glob("*.toml"):
        shutil.copyfile(source, directory / source.name)
    text = (ROOT / "tariffs" / "beijing-residential.toml").read_text(encoding="utf-8")
    text = text.replace('id = "beijing-residential"', f'id = "{WORK_SUM_TARIFF}"')
    text = text.replace('volume_basis = "std_sum"', 'volume_basis = "work_sum"')
    (directory / f"{WORK_SUM_TARIFF}.toml").write_text(text, encoding="utf-8")
    catalog = TariffCatalog(directory, "Asia/Shanghai")
    assert catalog.get(WORK_SUM_TARIFF).volume_basis is VolumeBasis.WORK_SUM
    return catalog
