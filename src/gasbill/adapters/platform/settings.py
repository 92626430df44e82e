"""Settings of the remote-control client (spec §3.2, §5.2): one set per company."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from gasbill.secret import Secret


class PlatformSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Root of the remote-control API (the vendor's test server used port 2101).
    base_url: Annotated[str, Secret("url")] = "http://127.0.0.1:2101/"
    # Project company number: 4 digit characters, assigned by the platform admin.
    company_no: str = "1001"
    login_name: str = "admin"
    # Sent as the 32-character hex MD5 of its UTF-8 bytes, never in clear.
    password: SecretStr = SecretStr("")
    # The MD5 in upper-case hex (the original does not say which case).
    password_md5_upper: bool = False
    connect_timeout_seconds: Decimal = Field(default=Decimal("5"), gt=0)
    read_timeout_seconds: Decimal = Field(default=Decimal("30"), gt=0)
    # Log in again this long before the token's `expiration`.
    token_renew_margin_seconds: int = Field(default=60, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, not {value!r}")
        return value
