"""The page routers, each area its own module; all under /ui and in the policy table."""

from __future__ import annotations

from fastapi import APIRouter

from gasbill.web.pages import accounts, admin, auditor, auth, counter, dayend, exports

PAGES: tuple[APIRouter, ...] = (
    auth.router,
    counter.router,
    accounts.router,
    dayend.router,
    auditor.router,
    admin.router,
    exports.router,
)
