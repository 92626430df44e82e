"""Log in for a bearer token, log out, and who am I."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from gasbill.api.deps import ClientDep, ContextDep, CurrentUser, UowDep
from gasbill.api.policy import API
from gasbill.api.staff.schemas import Body
from gasbill.service import staff

router = APIRouter(prefix=API, tags=["auth"])


class LoginIn(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class MeOut(BaseModel):
    id: int
    username: str
    role: str
    token_expires_at: datetime


@router.post("/auth/login", summary="Log in: a bearer token for username and password")
def login(body: LoginIn, ctx: ContextDep, uow: UowDep, client: ClientDep) -> TokenOut:
    issued = staff.login(
        uow,
        username=body.username,
        password=body.password,
        client=client,
        passwords=ctx.passwords,
        tokens=ctx.tokens,
        ttl=timedelta(minutes=ctx.settings.staff.token_ttl_minutes),
        limits=ctx.limits,
        now=ctx.clock(),
    )
    return TokenOut(access_token=issued.token, expires_at=issued.expires_at)


@router.post("/auth/logout", status_code=204, summary="Revoke the token of this request")
def logout(user: CurrentUser, ctx: ContextDep, uow: UowDep) -> Response:
    staff.logout(uow, user, now=ctx.clock())
    return Response(status_code=204)


@router.get("/me", summary="The user this token belongs to")
def me(user: CurrentUser) -> MeOut:
    return MeOut(
        id=user.user_id, username=user.username, role=user.role, token_expires_at=user.expires_at
    )
