"""Log in for a bearer token, log out, who am I, and change my own password."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from gasbill.api.deps import ClientDep, ContextDep, CurrentUser, UowDep
from gasbill.api.policy import API
from gasbill.api.staff.schemas import Body, Password
from gasbill.service import credentials, staff

router = APIRouter(prefix=API, tags=["auth"])


class LoginIn(Body):
    username: str = Field(min_length=1, max_length=64)
    password: Password = Field(min_length=1, max_length=1024)


class PasswordChangeIn(Body):
    current_password: Password = Field(min_length=1, max_length=1024)
    new_password: Password = Field(min_length=8, max_length=1024)


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


@router.put(
    "/me/password",
    status_code=204,
    summary="Change my password (the current one proves it); my other tokens stop working",
    responses={403: {"description": "the current password is wrong"}},
)
def change_password(
    body: PasswordChangeIn, user: CurrentUser, ctx: ContextDep, uow: UowDep
) -> Response:
    credentials.change_own_password(
        uow,
        user.user_id,
        current=body.current_password,
        new=body.new_password,
        passwords=ctx.passwords,
        limits=ctx.limits,
        now=ctx.clock(),
        keep_token=user.token_hash,
    )
    return Response(status_code=204)
