"""The effective settings (file, environment and defaults combined), secrets masked.

Which settings are secret is decided by their marking in the settings model
(`gasbill.secret`), never by their names.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gasbill.api.deps import ContextDep
from gasbill.api.policy import API
from gasbill.secret import masked

router = APIRouter(prefix=API, tags=["settings"])


@router.get("/settings", summary="The effective settings, secrets masked")
def effective(ctx: ContextDep) -> dict[str, Any]:
    return masked(ctx.settings)
