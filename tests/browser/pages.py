"""Small helpers over Playwright's page for the browser tests.

Logging in costs a slow password hash and a page load, so each role logs in
once per run (`Roles`): its tests take a fresh page in that role's context,
with the language chosen by the cookie the language switch sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.live import PASSWORD, Live

TIMEOUT_MS = 15_000


def new_context(browser: Any, live: Live) -> Any:
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    return context


def set_language(context: Any, live: Live, language: str) -> None:
    host = live.url.split("//", 1)[1].split(":", 1)[0]
    context.add_cookies([{"name": "gasbill_lang", "value": language, "domain": host, "path": "/"}])


def new_page(browser: Any, live: Live, language: str = "zh") -> Any:
    """A page in a context of its own: nobody logged in."""
    context = new_context(browser, live)
    set_language(context, live, language)
    return context.new_page()


def login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/ui/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form button[type=submit]")


class Roles:
    """One logged-in browser context per role, shared by the tests of a run."""

    def __init__(self, browser: Any, live: Live) -> None:
        self.browser = browser
        self.live = live
        self.contexts: dict[str, Any] = {}

    def page(self, role: str, language: str = "zh") -> Any:
        context = self.contexts.get(role)
        if context is None:
            context = self.contexts[role] = new_context(self.browser, self.live)
            set_language(context, self.live, language)
            login(context.new_page(), role)
        set_language(context, self.live, language)
        for old in context.pages:
            old.close()
        return context.new_page()

    def close(self) -> None:
        for context in self.contexts.values():
            context.close()


def shot(page: Any, folder: Path, name: str) -> None:
    """The whole page as the reviewer sees it, under the page's own language."""
    language = page.evaluate("document.documentElement.lang").split("-")[0]
    target = folder / language
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(target / f"{name}.png"), full_page=True, animations="disabled", caret="hide"
    )
