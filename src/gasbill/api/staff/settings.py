"""The effective settings (file, environment and defaults combined), secrets masked."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter

from gasbill.api.deps import ContextDep
from gasbill.api.policy import API
from gasbill.config import Settings

router = APIRouter(prefix=API, tags=["settings"])

MASK = "********"
SECRET_NAME = re.compile(r"(^|_)(secret|password|passwd|token|key)$", re.IGNORECASE)


def masked(settings: Settings) -> dict[str, Any]:
    """Every setting as JSON; secrets (and a database URL's password) never leave."""
    document = settings.model_dump(mode="json")

    def scrub(value: Any, name: str = "") -> Any:
        if isinstance(value, dict):
            return {k: scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v, name) for v in value]
        if SECRET_NAME.search(name) and value not in (None, ""):
            return MASK
        return value

    result: dict[str, Any] = scrub(document)
    url = settings.database.url
    try:
        result["database"]["url"] = sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        result["database"]["url"] = MASK
    return result


@router.get("/settings", summary="The effective settings, secrets masked")
def effective(ctx: ContextDep) -> dict[str, Any]:
    return masked(ctx.settings)
