"""Small helpers over Playwright's page for the browser tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.live import PASSWORD, Live


def new_page(browser: Any, live: Live, language: str = "zh") -> Any:
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    host = live.url.split("//", 1)[1].split(":", 1)[0]
    context.add_cookies([{"name": "gasbill_lang", "value": language, "domain": host, "path": "/"}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/ui/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


def shot(page: Any, folder: Path, name: str) -> None:
    language = page.evaluate("document.documentElement.lang").split("-")[0]
    target = folder / language
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=True)
