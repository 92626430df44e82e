"""Settings of the platform-facing data interface (push receiver and query endpoints)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gasbill.secret import Secret


class PushSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # company_no -> data_api_key; several companies may push to one server
    keys: Annotated[dict[str, str], Secret()] = Field(
        default_factory=lambda: {"1001": "496d1bac094f11e79d9c0a0027000010"}
    )
    max_body_bytes: int = Field(default=65_536, ge=1_024)
    max_future_minutes: int = Field(default=1_440, ge=0)
    default_rowcount: int = Field(default=100, ge=1)
    max_rowcount: int = Field(default=1_000, ge=1)
    # group commit: concurrent pushes share a transaction of at most this many readings
    group_commit_max: int = Field(default=256, ge=1, le=10_000)
    group_commit_writers: int = Field(default=1, ge=1, le=16)

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for company_no, key in value.items():
            if not (len(company_no) == 4 and company_no.isdigit()):
                raise ValueError(f"company_no {company_no!r} must be 4 digits")
            if len(key) < 16:
                raise ValueError(f"the data_api_key of company {company_no} is too short")
        return value
