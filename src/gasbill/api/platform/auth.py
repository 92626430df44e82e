"""Key authentication for pushes and queries (spec §3.1): company_no + data_api_key headers."""

from __future__ import annotations

import hmac

from fastapi import Request

from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.api.platform.envelope import PlatformFailure

# compared against when the company is unknown, so timing does not reveal which companies exist
_DUMMY_KEY = "0" * 32


def company_of(request: Request, settings: PushSettings) -> str:
    """The authenticated company, or a 401 `failed` envelope."""
    company_no = request.headers.get("company_no", "")
    key = request.headers.get("data_api_key", "")
    expected = settings.keys.get(company_no, _DUMMY_KEY)
    matches = hmac.compare_digest(key.encode("utf-8"), expected.encode("utf-8"))
    if not company_no or not key or company_no not in settings.keys or not matches:
        raise PlatformFailure(401, "company_no or data_api_key is missing or wrong")
    return company_no
