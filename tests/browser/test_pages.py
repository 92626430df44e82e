"""A day at the counter, in the audit office and in administration, in real Chromium."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.live import Live
from tests.browser.pages import Roles, login, new_page, shot

pytestmark = pytest.mark.browser

CONFIRMED_WITHIN_MS = 90_000


def test_clerk_opens_an_account_takes_a_payment_and_sees_the_meter_confirm_it(
    roles: Roles, live: Live, shots: Path
) -> None:
    page = roles.page("clerk")
    page.add_init_script("window.print = () => { window.__printed = true; };")
    page.goto("/ui/customers")
    # find the customer by phone, open a meter-mode account on the free meter
    page.fill("#search", "13800138000")
    page.press("#search", "Enter")
    page.wait_for_selector("#results")
    shot(page, shots, "clerk-01-search")
    page.click(f"#results >> text={live.new_customer}")  # the customer's row
    page.click("#results a[href*='/accounts/new']")
    page.fill("input[name=number]", "B9001")
    page.fill("input[name=meter_comm_no]", live.free_meter)
    page.fill("input[name=opening_register]", str(live.world.sim.meter(live.free_meter).std_sum))
    page.select_option("select[name=billing_mode]", "meter")
    page.select_option("select[name=tariff_id]", "price-change-example")
    page.fill("input[name=persons]", "3")
    page.fill("input[name=initial]", "50")
    shot(page, shots, "clerk-02-open-account")
    page.click("#open-account button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/accounts/\d+$"))
    assert "B9001" in page.inner_text("h1")
    shot(page, shots, "clerk-03-account")

    # the payment: what it costs in clicks and seconds
    started = time.monotonic()
    clicks = 0
    page.click("#pay")
    clicks += 1
    page.fill("#amount", "1234.56")
    page.click("#pay-form button[type=submit]")
    clicks += 1
    page.wait_for_selector("#receipt")
    receipt_at = time.monotonic() - started
    assert page.inner_text("#amount-capitals") == "壹仟贰佰叁拾肆元伍角陆分"
    assert "1,234.56" in page.inner_text("#amount-figures")
    paid_on = page.inner_text("#receipt-time")[:10]
    page.click("#print")  # window.print(): the print stylesheet hides everything but the receipt
    clicks += 1
    assert page.evaluate("window.__printed") is True
    page.emulate_media(media="print")
    page.pdf(path=str(shots / "receipt.pdf"))  # what the printer gets
    page.emulate_media(media="screen")
    live.running.set()  # the meters live on: the top-up reaches its meter
    try:
        page.wait_for_selector("[data-stage='confirmed']", timeout=CONFIRMED_WITHIN_MS)
    finally:
        live.running.clear()
    confirmed_at = time.monotonic() - started
    shot(page, shots, "clerk-04-receipt-confirmed")
    print(
        f"\npayment: {clicks} clicks and one amount typed; receipt on screen after "
        f"{receipt_at:.1f} s, top-up confirmed by the meter after {confirmed_at:.1f} s"
    )
    (shots / "payment-cost.txt").write_text(
        f"clicks={clicks} receipt_seconds={receipt_at:.2f} confirmed_seconds={confirmed_at:.2f}\n"
    )

    page.goto(f"/ui/day-end?day={paid_on}")
    assert "1,234.56" in page.inner_text("#day-end")  # with the 50.00 the account opened with
    shot(page, shots, "clerk-05-day-end")


def test_an_auditor_opens_a_difference_and_its_evidence(
    roles: Roles, live: Live, shots: Path
) -> None:
    page = roles.page("auditor")
    page.goto("/ui/reconciliation")
    assert page.inner_text("#differing") != "0"
    assert page.locator("svg.chart").count() == 3
    shot(page, shots, "auditor-01-reconciliation")
    page.click(f"#to-act a[href='/ui/reconciliation/{live.differing_account}']")
    page.wait_for_selector("#findings")
    assert re.search(r"12\.3[0-9]", page.inner_text("#findings"))  # the card's 12.34 yuan
    shot(page, shots, "auditor-02-evidence")


def test_a_clerk_is_refused_the_auditors_page_and_not_offered_it(
    roles: Roles, live: Live, shots: Path
) -> None:
    page = roles.page("clerk")
    page.goto("/ui/customers")
    assert page.locator("nav a[href='/ui/reconciliation']").count() == 0
    response = page.goto("/ui/reconciliation")
    assert response.status == 403
    assert page.locator("#forbidden").is_visible()
    shot(page, shots, "clerk-06-refused")


def test_the_language_switch_is_remembered(roles: Roles, live: Live, shots: Path) -> None:
    page = roles.page("clerk", language="zh")
    page.goto("/ui/customers")
    assert "查找客户" in page.inner_text("main h1")
    page.click("a.lang")  # English
    assert page.inner_text("main h1") == "Find a customer"
    page.goto("/ui/day-end")
    assert "Day-end" in page.inner_text("main h1")
    page.click("a.lang")  # back to Chinese
    assert "日结" in page.inner_text("main h1")


def test_an_admin_unlocks_a_user(browser: Any, roles: Roles, live: Live, shots: Path) -> None:
    locked_out = new_page(browser, live)
    for _ in range(live.world.settings.staff.login_max_failures + 1):
        login(locked_out, "locked", "wrong-password")
    assert locked_out.locator("[role=alert]").is_visible()
    locked_out.context.close()
    page = roles.page("admin")
    page.goto("/ui/admin/users")
    page.click("tr[data-user=locked] button.unlock")
    page.wait_for_selector("[role=status]")
    shot(page, shots, "admin-02-unlocked")
    other = new_page(browser, live)
    login(other, "locked")
    assert "/ui/customers" in other.url


PAGES = {
    "clerk": [
        "/ui/customers?q=张",
        "/ui/customers/new",
        "/ui/accounts/1",
        "/ui/accounts/1/pay",
        "/ui/accounts/1/refund",
        "/ui/accounts/1/replace-meter",
        "/ui/accounts/1/close",
        "/ui/accounts/1/statement",
        "/ui/exceptions",
        "/ui/day-end",
        "/ui/accounts/new?customer_id=4",
        "/ui/ledger",
        "/ui/me/password",
    ],
    "auditor": [
        "/ui/reconciliation",
        "/ui/ledger",
        "/ui/audit",
        "/ui/accounts/1/adjust",
        "/ui/day-end?clerk=clerk",
        "/ui/admin/users",
    ],
    "admin": ["/ui/admin/users", "/ui/admin/tariffs", "/ui/admin/campaigns", "/ui/admin/settings"],
}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_page_in_both_languages(
    browser: Any, roles: Roles, live: Live, shots: Path, language: str
) -> None:
    page = new_page(browser, live, language=language)
    page.goto("/ui/login")
    shot(page, shots, "login")
    page.context.close()
    for role, paths in PAGES.items():
        page = roles.page(role, language=language)
        for path in paths:
            began = time.monotonic()
            response = page.goto(path)
            assert response.status == 200, (role, path, response.status)
            name = f"{role}-" + re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/ui/")).strip("-")
            loaded = time.monotonic() - began
            shot(page, shots, name)
            print(f"{path}: {loaded:.2f}s load, {time.monotonic() - began:.2f}s with the shot")
    if language == "en":  # Swagger UI speaks English only: one shot of it is enough
        page.goto("/docs")
        page.wait_for_selector(".swagger-ui .info", timeout=15_000)
        shot(page, shots, "docs")
