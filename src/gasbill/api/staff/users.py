"""Staff users: the admin creates them, changes their role, deactivates, unlocks them and
resets their password."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gasbill.adapters.db.repositories.staff import StaffRepository
from gasbill.api.deps import ContextDep, CurrentUser, UowDep
from gasbill.api.edge import NO_NUL
from gasbill.api.errors import not_found
from gasbill.api.policy import API
from gasbill.api.staff.schemas import Body, Password, PathId, Role
from gasbill.service import credentials, staff
from gasbill.service.ports import StaffUserRecord

router = APIRouter(prefix=f"{API}/users", tags=["users"])


class UserIn(Body):
    # the service's rule (staff.USERNAME), shown in OpenAPI
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]*$")
    password: Password = Field(min_length=8, max_length=1024, pattern=NO_NUL)
    role: Role


class RoleIn(Body):
    role: Role


class PasswordIn(Body):
    password: Password = Field(min_length=8, max_length=1024)


class UnlockOut(BaseModel):
    id: int
    username: str
    failures_cleared: int


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, user: StaffUserRecord) -> UserOut:
        assert user.id is not None
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            active=user.active,
            created_at=user.created_at,
        )


@router.get("", summary="Every staff user")
def list_users(uow: UowDep) -> list[UserOut]:
    return [UserOut.of(u) for u in staff.list_users(uow)]


@router.post("", status_code=201, summary="Create a staff user")
def create_user(body: UserIn, user: CurrentUser, ctx: ContextDep, uow: UowDep) -> UserOut:
    created = staff.add_user(
        uow,
        username=body.username,
        password=body.password,
        role=body.role,
        passwords=ctx.passwords,
        actor=user.username,
        now=ctx.clock(),
    )
    return UserOut.of(created)


@router.get("/{user_id}", summary="One staff user")
def get_user(user_id: PathId, uow: UowDep) -> UserOut:
    with uow:
        found = StaffRepository(uow.session).user(user_id)
    if found is None:
        raise not_found(f"no user {user_id}")
    return UserOut.of(found)


@router.put("/{user_id}/role", summary="Change a user's role")
def change_role(
    user_id: PathId, body: RoleIn, user: CurrentUser, ctx: ContextDep, uow: UowDep
) -> UserOut:
    changed = staff.change_role(uow, user_id, body.role, actor=user.username, now=ctx.clock())
    return UserOut.of(changed)


@router.post("/{user_id}/deactivate", summary="Deactivate a user and revoke their tokens")
def deactivate(user_id: PathId, user: CurrentUser, ctx: ContextDep, uow: UowDep) -> UserOut:
    changed = staff.deactivate_user(uow, user_id, actor=user.username, now=ctx.clock())
    return UserOut.of(changed)


@router.post("/{user_id}/activate", summary="Let a deactivated user log in again")
def activate(user_id: PathId, user: CurrentUser, ctx: ContextDep, uow: UowDep) -> UserOut:
    changed = staff.activate_user(uow, user_id, actor=user.username, now=ctx.clock())
    return UserOut.of(changed)


@router.post("/{user_id}/unlock", summary="Clear a user's failed logins so they may log in now")
def unlock(user_id: PathId, user: CurrentUser, ctx: ContextDep, uow: UowDep) -> UnlockOut:
    found, cleared = credentials.unlock_user(uow, user_id, actor=user.username, now=ctx.clock())
    return UnlockOut(id=user_id, username=found.username, failures_cleared=cleared)


@router.put("/{user_id}/password", summary="Set a user's password; their tokens stop working")
def reset_password(
    user_id: PathId, body: PasswordIn, user: CurrentUser, ctx: ContextDep, uow: UowDep
) -> UserOut:
    changed = credentials.reset_password(
        uow,
        user_id,
        password=body.password,
        passwords=ctx.passwords,
        actor=user.username,
        now=ctx.clock(),
    )
    return UserOut.of(changed)
