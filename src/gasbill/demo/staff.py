"""The demo's staff at work: every clerk's, auditor's and admin's action over the staff API.

Only the first admin is made by the use case `gasbill user add` calls (there
is nobody yet to log in as); the admin then creates the clerk and the
auditor over HTTP, and each logs in with a password of its own.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime
from typing import Any

import httpx

from gasbill.api.security import Argon2Passwords
from gasbill.bootstrap import Services
from gasbill.service.staff import add_user

API = "/api/v1"
ROLES = ("clerk", "auditor", "admin")
# a command's stages (as the clerk sees them) while it is on its way or its outcome unknown
WAITING = frozenset(
    {"queued", "sending", "sent", "waiting for the meter", "checking with the meter"}
)


class StaffRefused(RuntimeError):
    """The staff API answered an error the demo did not expect."""


class Desk:
    """One logged-in member of staff: the calls their role makes."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        token = self._call("POST", "/auth/login", {"username": username, "password": password})
        self.http.headers["Authorization"] = f"Bearer {token['access_token']}"

    def _call(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, **params: Any
    ) -> Any:
        headers = {"Idempotency-Key": key} if key else None
        answer = self.http.request(
            method, API + path, json=body, headers=headers, params=params or None
        )
        if answer.status_code >= 400:
            raise StaffRefused(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, **params)

    def post(self, path: str, body: Any = None, *, key: str | None = None) -> Any:
        return self._call("POST", path, body, key=key)

    def close(self) -> None:
        self.http.close()


class Clerk(Desk):
    def new_customer(self, name: str) -> int:
        return int(self.post("/customers", {"name": name})["id"])

    def open_account(
        self,
        *,
        customer_id: int,
        number: str,
        company_no: str,
        mode: str,
        tariff_id: str,
        opened_on: date,
        bound_at: datetime,
        comm_no: str,
        register: str,
        persons: int,
        initial_fen: int,
        thresholds: dict[str, int],
    ) -> int:
        body = {
            "customer_id": customer_id, "number": number, "company_no": company_no,
            "billing_mode": mode, "tariff_id": tariff_id, "opened_on": opened_on.isoformat(),
            "bound_at": bound_at.isoformat(), "meter_comm_no": comm_no,
            "opening_register": register, "persons": persons, "initial_fen": initial_fen,
            **thresholds,
        }  # fmt: skip
        return int(self.post("/accounts", body)["id"])

    def pay(self, account_id: int, fen: int, key: str) -> dict[str, Any]:
        body = {"amount_fen": fen, "channel": "counter"}
        paid: dict[str, Any] = self.post(f"/accounts/{account_id}/payments", body, key=key)
        return paid

    def top_up_waiting(self, account_id: int) -> bool:
        """A top-up of this account still on its way (or its outcome unknown)."""
        stages = [t["stage"] for t in self.get(f"/accounts/{account_id}/top-ups")]
        return any(stage in WAITING for stage in stages)

    def commands(self, account_id: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get("/commands", account_id=account_id, limit=500)
        return found

    def ledger(self, account_id: int) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        while True:
            page = self.get(f"/accounts/{account_id}/ledger", offset=len(lines), limit=1000)
            lines.extend(page)
            if len(page) < 1000:
                return lines


def first_admin(services: Services) -> str:
    """The first admin, as `gasbill user add admin --role admin` makes it; its password."""
    password = secrets.token_urlsafe(9)
    add_user(
        services.uow(),
        username="admin",
        password=password,
        role="admin",
        passwords=Argon2Passwords(),
        actor="demo",
        now=services.now(),
    )
    return password


def staff_logins(services: Services, base_url: str) -> dict[str, str]:
    """An admin, who creates a clerk and an auditor over HTTP: every role's password."""
    passwords = {"admin": first_admin(services)}
    admin = Desk(base_url, "admin", passwords["admin"])
    try:
        for role in ("clerk", "auditor"):
            passwords[role] = secrets.token_urlsafe(9)
            admin.post("/users", {"username": role, "password": passwords[role], "role": role})
    finally:
        admin.close()
    return passwords


def payment_key() -> str:
    return str(uuid.uuid4())
