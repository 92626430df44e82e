"""Who may call what: the one table of every route's roles.

Every route of the app is listed here by (method, path template). The staff
router checks each request against this table (see `deps.authorize`), and
`create_app` refuses to build an app that has a route missing from the table
or an entry left over from a route that is gone.

Roles: a **clerk** serves customers (customers, accounts, meters, payments,
refunds, exceptions); an **auditor** reads everything and changes nothing but
adjustments and reversals (each with a reason); an **admin** manages users,
tariffs and settings. Admins are deliberately not clerks: a change to the
books is always made by someone whose job it is.

Refunds are the clerk's: paying money back is a counter task like taking it
in, bounded by the customer's available prepaid balance, and it needs a
reason and an Idempotency-Key and is audited. Auditors correct the books
(adjustments, reversals); they do not hand out cash.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute

API = "/api/v1"
UI = "/ui"  # the staff pages


class Role(enum.StrEnum):
    CLERK = "clerk"
    AUDITOR = "auditor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Access:
    roles: frozenset[Role] = frozenset()
    public: bool = False  # no staff token needed
    external: bool = False  # not a staff route: it authenticates callers its own way

    def allows(self, role: str) -> bool:
        return self.public or role in self.roles


def allow(*roles: Role) -> Access:
    return Access(frozenset(roles))


PUBLIC = Access(public=True)
# For routes outside the staff API that check their own credentials (the
# platform-facing /api/Data endpoints check the platform's key): list each here.
EXTERNAL = Access(public=True, external=True)
ANY_STAFF = allow(Role.CLERK, Role.AUDITOR, Role.ADMIN)
CLERK = allow(Role.CLERK)
AUDITOR = allow(Role.AUDITOR)
ADMIN = allow(Role.ADMIN)
CLERK_READ = allow(Role.CLERK, Role.AUDITOR)  # what clerks keep, auditors read
ADMIN_READ = allow(Role.ADMIN, Role.AUDITOR)  # what admins keep, auditors read
MONEY_JUDGED = allow(Role.AUDITOR, Role.ADMIN)  # a person's judgement that moves money

POLICY: Mapping[tuple[str, str], Access] = {
    # the API's own documentation
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # operations (api/operations.py): probes and scrapers carry no token; serve internally
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # auth
    ("POST", f"{API}/auth/login"): PUBLIC,
    ("POST", f"{API}/auth/logout"): ANY_STAFF,
    ("GET", f"{API}/me"): ANY_STAFF,
    ("PUT", f"{API}/me/password"): ANY_STAFF,
    # staff users
    ("GET", f"{API}/users"): ADMIN_READ,
    ("POST", f"{API}/users"): ADMIN,
    ("GET", f"{API}/users/{{user_id}}"): ADMIN_READ,
    ("PUT", f"{API}/users/{{user_id}}/role"): ADMIN,
    ("POST", f"{API}/users/{{user_id}}/deactivate"): ADMIN,
    ("POST", f"{API}/users/{{user_id}}/activate"): ADMIN,
    ("POST", f"{API}/users/{{user_id}}/unlock"): ADMIN,
    ("PUT", f"{API}/users/{{user_id}}/password"): ADMIN,
    # customers
    ("POST", f"{API}/customers"): CLERK,
    ("GET", f"{API}/customers"): CLERK_READ,
    ("GET", f"{API}/customers/{{customer_id}}"): CLERK_READ,
    # accounts and meters
    ("POST", f"{API}/accounts"): CLERK,
    ("GET", f"{API}/accounts"): CLERK_READ,
    ("GET", f"{API}/accounts/{{account_id}}"): CLERK_READ,
    ("PATCH", f"{API}/accounts/{{account_id}}"): CLERK,
    ("POST", f"{API}/accounts/{{account_id}}/meter-replacements"): CLERK,
    ("GET", f"{API}/accounts/{{account_id}}/balance"): CLERK_READ,
    ("GET", f"{API}/accounts/{{account_id}}/ledger"): CLERK_READ,
    ("GET", f"{API}/accounts/{{account_id}}/opening"): CLERK_READ,
    ("GET", f"{API}/accounts/{{account_id}}/readings"): CLERK_READ,
    ("POST", f"{API}/accounts/{{account_id}}/closure"): CLERK,
    # money: payments and refunds at the desk, corrections by an auditor
    ("POST", f"{API}/accounts/{{account_id}}/payments"): CLERK,
    ("POST", f"{API}/accounts/{{account_id}}/refunds"): CLERK,
    ("POST", f"{API}/accounts/{{account_id}}/adjustments"): AUDITOR,
    ("POST", f"{API}/transfers/{{transfer_id}}/reversal"): AUDITOR,
    # commands to meters: top-up progress; cancel or retry what needs a person
    ("GET", f"{API}/accounts/{{account_id}}/top-ups"): CLERK_READ,
    ("GET", f"{API}/commands"): CLERK_READ,
    ("POST", f"{API}/commands/{{command_id}}/cancel"): CLERK,
    ("POST", f"{API}/commands/{{command_id}}/retry"): CLERK,
    ("GET", f"{API}/commands/{{command_id}}"): CLERK_READ,
    # tariff campaigns: progress n of m, failures with reasons; a clerk retries failed meters
    ("GET", f"{API}/campaigns"): ANY_STAFF,
    ("GET", f"{API}/campaigns/{{campaign_id}}"): ANY_STAFF,
    ("POST", f"{API}/campaigns/{{campaign_id}}/retry-failed"): allow(Role.CLERK, Role.ADMIN),
    # billing exceptions
    ("GET", f"{API}/exceptions"): CLERK_READ,
    ("GET", f"{API}/exceptions/{{exception_id}}"): CLERK_READ,
    ("POST", f"{API}/exceptions/{{exception_id}}/resolve"): CLERK,
    # push conflicts (corrected re-pushes): accepting moves money, dismissing does not
    ("GET", f"{API}/exceptions/conflicts"): CLERK_READ,
    ("POST", f"{API}/exceptions/conflicts/{{conflict_id}}/accept"): MONEY_JUDGED,
    ("POST", f"{API}/exceptions/conflicts/{{conflict_id}}/dismiss"): ANY_STAFF,
    # tariffs: everyone reads them (clerks choose one for an account)
    ("GET", f"{API}/tariffs"): ANY_STAFF,
    ("GET", f"{API}/tariffs/{{tariff_id}}"): ANY_STAFF,
    ("POST", f"{API}/tariffs/reload"): ADMIN,
    # settings and the audit trail
    ("GET", f"{API}/settings"): ADMIN_READ,
    ("GET", f"{API}/audit"): AUDITOR,
    ("GET", f"{API}/audit/verify"): AUDITOR,
    # reconciliation: meters against the books, the auditors' report
    ("GET", f"{API}/reconciliation"): AUDITOR,
    ("GET", f"{API}/reconciliation/readings"): AUDITOR,
    # the price-change true-up, run now (the job runs it daily): it only settles the books
    ("POST", f"{API}/true-ups"): allow(Role.AUDITOR, Role.ADMIN),
    ("GET", f"{API}/true-ups/check"): allow(Role.AUDITOR, Role.ADMIN),
    # the staff pages (gasbill.web), checked by the same Access rules as the API
    ("GET", f"{UI}/"): ANY_STAFF,
    ("GET", f"{UI}/login"): PUBLIC,
    ("POST", f"{UI}/login"): PUBLIC,
    ("POST", f"{UI}/logout"): ANY_STAFF,
    ("GET", f"{UI}/me/password"): ANY_STAFF,
    ("POST", f"{UI}/me/password"): ANY_STAFF,
    ("GET", f"{UI}/lang/{{language}}"): PUBLIC,
    ("GET", f"{UI}/customers"): CLERK_READ,
    ("GET", f"{UI}/customers/new"): CLERK,
    ("POST", f"{UI}/customers/new"): CLERK,
    ("GET", f"{UI}/accounts/new"): CLERK,
    ("POST", f"{UI}/accounts/new"): CLERK,
    ("GET", f"{UI}/accounts/{{account_id}}"): CLERK_READ,
    ("GET", f"{UI}/accounts/{{account_id}}/pay"): CLERK,
    ("POST", f"{UI}/accounts/{{account_id}}/pay"): CLERK,
    ("GET", f"{UI}/receipts/{{transfer_id}}"): CLERK_READ,
    ("GET", f"{UI}/top-ups/{{command_id}}"): CLERK_READ,
    ("GET", f"{UI}/accounts/{{account_id}}/refund"): CLERK,
    ("POST", f"{UI}/accounts/{{account_id}}/refund"): CLERK,
    ("GET", f"{UI}/accounts/{{account_id}}/replace-meter"): CLERK,
    ("POST", f"{UI}/accounts/{{account_id}}/replace-meter"): CLERK,
    ("GET", f"{UI}/accounts/{{account_id}}/close"): CLERK,
    ("POST", f"{UI}/accounts/{{account_id}}/close"): CLERK,
    ("GET", f"{UI}/accounts/{{account_id}}/statement"): CLERK_READ,
    ("GET", f"{UI}/exceptions"): CLERK_READ,
    ("POST", f"{UI}/exceptions/{{exception_id}}/resolve"): CLERK,
    ("POST", f"{UI}/exceptions/conflicts/{{conflict_id}}/accept"): MONEY_JUDGED,
    ("POST", f"{UI}/exceptions/conflicts/{{conflict_id}}/dismiss"): ANY_STAFF,
    ("POST", f"{UI}/commands/{{command_id}}/{{action}}"): CLERK,
    ("GET", f"{UI}/day-end"): CLERK_READ,
    ("GET", f"{UI}/day-end/export"): CLERK_READ,
    ("GET", f"{UI}/reconciliation"): AUDITOR,
    ("GET", f"{UI}/reconciliation/{{account_id}}"): AUDITOR,
    ("GET", f"{UI}/ledger"): CLERK_READ,
    ("GET", f"{UI}/accounts/{{account_id}}/adjust"): AUDITOR,
    ("POST", f"{UI}/accounts/{{account_id}}/adjust"): AUDITOR,
    ("GET", f"{UI}/transfers/{{transfer_id}}/reverse"): AUDITOR,
    ("POST", f"{UI}/transfers/{{transfer_id}}/reverse"): AUDITOR,
    ("GET", f"{UI}/audit"): AUDITOR,
    ("GET", f"{UI}/admin/users"): ADMIN_READ,
    ("POST", f"{UI}/admin/users"): ADMIN,
    ("POST", f"{UI}/admin/users/{{user_id}}/{{action}}"): ADMIN,
    ("GET", f"{UI}/admin/tariffs"): ANY_STAFF,
    ("GET", f"{UI}/admin/campaigns"): ADMIN_READ,
    ("GET", f"{UI}/admin/settings"): ADMIN_READ,
    ("GET", f"{UI}/exports/ledger"): CLERK_READ,
    ("GET", f"{UI}/exports/payments"): CLERK_READ,
    ("GET", f"{UI}/exports/reconciliation"): AUDITOR,
    # the platform's side (spec §4, §5.3): it authenticates with company_no + data_api_key
    ("POST", "/api/Data/MeterData/Add"): EXTERNAL,
    ("POST", "/api/Data/MeterData/GetRealModel/{meter_comm_no}"): EXTERNAL,
    ("POST", "/api/Data/MeterData/GetRealList2"): EXTERNAL,
    ("POST", "/api/Data/MeterData/GetHistoryList2"): EXTERNAL,
    ("POST", "/api/Data/DeviceAlarm/Add"): EXTERNAL,
    ("POST", "/api/Data/DeviceAlarm/GetList2"): EXTERNAL,
    ("POST", "/api/Data/DeviceEvent/Add"): EXTERNAL,
    ("POST", "/api/Data/DeviceEvent/GetList2"): EXTERNAL,
    ("POST", "/api/Conf/CtrlData/Report"): EXTERNAL,
}

IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})  # Starlette adds HEAD to every GET


def access_for(method: str, path: str) -> Access | None:
    return POLICY.get((method.upper(), path))


def flat_routes(routes: Iterable[BaseRoute]) -> list[Any]:
    """Every route with its full path, through included routers (FastAPI ≥ 0.16x nests them)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI copies included routes into the app
        return list(routes)
    return list(iter_route_contexts(list(routes)))


def route_keys(routes: Iterable[BaseRoute]) -> set[tuple[str, str]]:
    """(method, path template) of every route that answers HTTP."""
    keys: set[tuple[str, str]] = set()
    for route in flat_routes(routes):
        methods = getattr(route, "methods", None) or ()
        path = getattr(route, "path", None)
        if isinstance(path, str):
            keys.update((m, path) for m in methods if m not in IGNORED_METHODS)
    return keys


class PolicyMismatch(RuntimeError):
    """The app's routes and the policy table disagree."""


def check_covers(routes: Iterable[BaseRoute]) -> None:
    keys = route_keys(routes)
    missing = sorted(keys - POLICY.keys())
    stale = sorted(POLICY.keys() - keys)
    problems = []
    if missing:
        problems.append(f"routes with no access policy: {missing}")
    if stale:
        problems.append(f"policy entries for routes that do not exist: {stale}")
    if problems:
        raise PolicyMismatch("; ".join(problems) + " (see gasbill/api/policy.py)")
