"""The kiosk pages in Debian's Chromium (issue 5): a keyboard-wedge scan, the fees in large type
with titles hidden, a payment on the sandbox CashNet page that comes back to the kiosk's
receipt, the idle warning with "I need more time" (extended many times) and the full reset,
the receipt's countdown, a bank card refused on screen, and axe-core on every screen.

Playwright's fake clock (page.clock) moves the page's wall clock, so 90 s of idleness take no
time; the agent's own deadlines run on the real clock and are not reached here."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_kiosk_agent import BANK_SWIPE, MARIA, Kiosk, start_kiosk, stop_kiosks, wait_for

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless=new", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
AXE_JS = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WAIT_MS = 15_000
STRINGS = json.loads((Path(__file__).resolve().parent.parent / "site" / "locales" / "en.json")
                     .read_text(encoding="utf-8"))

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (bash .ci/run does)")
    args = LAUNCH_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


@pytest.fixture
def kiosk(deploy, tmp_path) -> Iterator:
    started: list[Kiosk] = []
    yield lambda **options: start_kiosk(deploy, tmp_path, started, **options)
    stop_kiosks(started)


@pytest.fixture
def screen(chromium) -> Iterator:
    """`screen(kiosk)`: the kiosk's browser at a portrait touch panel's size, with a fake clock.
    Any script error or CSP refusal fails the test."""
    contexts, problems = [], []

    def open_(k: Kiosk) -> Page:
        context = chromium.new_context(viewport={"width": 1080, "height": 1920}, locale="en-US")
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" and "Content Security Policy" in m.text else None)
        page.clock.install()
        page.goto(k.url + "/kiosk/")
        expect(page.locator("#idle")).to_be_visible()
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], problems


def scan_by_wedge(page: Page, data: str) -> None:
    """A keyboard-wedge scanner: fast keys, then Enter."""
    page.keyboard.type(data, delay=5)
    page.keyboard.press("Enter")


def assert_accessible(page: Page, state: str) -> None:
    if not AXE_JS.exists():
        pytest.skip(f"{AXE_JS} is missing: run `npm ci --prefix tests/browser`")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;0")
    violations = page.evaluate("""async () => (await axe.run(document, { resultTypes: ["violations"],
        runOnly: ["wcag2a", "wcag2aa", "wcag2aaa", "wcag21aa", "wcag22aa", "best-practice"] }))
        .violations.filter((v) => ["serious", "critical"].includes(v.impact))
        .map((v) => ({ id: v.id, nodes: v.nodes.map((n) => n.target.join(" ")) }))""")
    assert violations == [], f"axe, {state}: {violations}"


def target_sizes(page: Page) -> list[tuple[str, float, float]]:
    return page.evaluate("""() => [...document.querySelectorAll("button, a, label.fee-row")]
        .filter((el) => el.offsetParent !== null)
        .map((el) => { const r = el.getBoundingClientRect();
                       return [el.id || el.textContent.trim().slice(0, 20), r.width, r.height]; })""")


def test_scan_fees_pay_on_cashnet_receipt_and_done(kiosk, screen):
    k = kiosk()
    page = screen(k)
    assert_accessible(page, "idle")
    expect(page.locator("#idle-limit")).to_have_text(STRINGS["kiosk.idle.limit"].replace("{seconds}", "90"))

    scan_by_wedge(page, MARIA)
    expect(page.locator("#fees-heading")).to_have_text("Hello, Maria")
    assert page.evaluate("() => getComputedStyle(document.body).fontSize") == "24px"
    rows = page.locator(".fee-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Lost item replacement fee")
    expect(rows.nth(0)).to_contain_text("$60.00")
    expect(page.locator(".fee-title")).to_have_count(0)  # privacy mode: titles hidden
    page.click("#titles-toggle")
    expect(page.locator(".fee-title").first).to_have_text("The structure of scientific revolutions")
    expect(page.locator("#titles-toggle")).to_have_attribute("aria-pressed", "true")
    assert_accessible(page, "fees")
    for name, width, height in target_sizes(page):
        assert width >= 48 and height >= 48, (name, width, height)
    assert page.locator("#pay-all").bounding_box()["height"] >= 64
    # Never the card number on screen.
    assert MARIA not in page.content() and MARIA[-4:] not in page.inner_text("body")

    page.locator(".fee-row").nth(0).click()  # untick the lost-item fee
    expect(page.locator("#pay-all")).to_have_text("Pay $17.25")
    page.click("#pay-part")
    expect(page.locator("#amount-heading")).to_be_visible()
    for key in ["1", "0", ".", "5"]:
        page.click(f'[data-key="{key}"]')
    expect(page.locator("#amount-display")).to_have_text("$10.50")
    assert_accessible(page, "amount")
    page.click("#pay-amount")

    # The sandbox CashNet page (another origin), then its sign-out back to the kiosk.
    page.wait_for_url(k.d.settings.cashnet_checkout_url + "**")
    assert k.scan(MARIA) == {"result": "ignored", "reason": "payment_in_progress"}
    page.get_by_role("button", name="Pay $10.50").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(k.url + "/kiosk/return?p=*")
    expect(page.locator("#receipt-heading")).to_have_text("Thank you, Maria")
    expect(page.locator("#receipt-status")).to_have_text(STRINGS["kiosk.state.posted"])
    expect(page.locator("#r-amount")).to_have_text("$10.50")
    expect(page.locator("#r-fees li")).to_have_text(["Overdue fine: $4.75", "Damaged item fine: $5.75"])
    assert_accessible(page, "receipt")
    payment_id = page.locator("#r-ref").inner_text()
    assert k.d.ledger.payment(payment_id).channel == "kiosk:lib1"

    page.click("#done")
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    assert k.session() is None
    assert k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 0)]


def test_idle_warning_extensions_and_full_reset(kiosk, screen):
    k = kiosk()
    page = screen(k)
    scan_by_wedge(page, MARIA)
    expect(page.locator("#fees-heading")).to_have_text("Hello, Maria")
    handle = k.handle()

    page.clock.fast_forward(89_000)
    expect(page.locator("#warning")).to_be_hidden()
    page.clock.fast_forward(2_000)
    expect(page.locator("#warning")).to_be_visible()
    expect(page.locator("#more-time")).to_be_focused()
    expect(page.locator("#warning-live")).to_have_attribute("aria-live", "assertive")
    expect(page.locator("#warning-live")).to_have_text(
        STRINGS["kiosk.warning.live"].replace("{seconds}", "30"))
    expect(page.locator("#warning-count")).to_have_text(
        STRINGS["kiosk.warning.countdown"].replace("{seconds}", "29"))
    assert page.locator("#main").evaluate("el => el.inert") is True
    assert page.locator("#more-time").bounding_box()["height"] >= 64
    assert_accessible(page, "warning")

    touched = k.service.holder.current.last_activity
    for _ in range(12):  # unlimited extensions; each also keeps the agent's session alive
        page.click("#more-time")
        expect(page.locator("#warning")).to_be_hidden()
        page.clock.fast_forward(91_000)
        expect(page.locator("#warning")).to_be_visible()
    assert k.service.holder.current.last_activity > touched
    assert k.handle() == handle

    page.clock.fast_forward(30_000)
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("#fees")).to_be_hidden()
    wait_for(lambda: k.session() is None, "the agent to drop the session")
    assert k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 0)]
    assert page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]") == [0, 0, ""]


def test_the_receipt_resets_after_its_countdown(kiosk, screen):
    k = kiosk()
    page = screen(k)
    scan_by_wedge(page, MARIA)
    expect(page.locator("#pay-all")).to_have_text("Pay $77.25")
    page.click("#pay-all")
    page.wait_for_url(k.d.settings.cashnet_checkout_url + "**")
    page.get_by_role("button", name="Pay $77.25").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#receipt-heading")).to_have_text("Thank you, Maria")
    expect(page.locator("#receipt-count")).to_have_text(
        STRINGS["kiosk.receipt.countdown"].replace("{seconds}", "30"))
    page.clock.fast_forward(25_000)
    page.click("#receipt-more-time")  # the same "I need more time" control
    page.clock.fast_forward(25_000)
    expect(page.locator("#receipt")).to_be_visible()
    page.clock.fast_forward(6_000)
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    wait_for(lambda: k.session() is None, "the agent to drop the session")


def test_start_over_and_a_bank_card_at_the_scanner(kiosk, screen):
    k = kiosk()
    page = screen(k)
    scan_by_wedge(page, BANK_SWIPE)
    expect(page.locator("#scan-message")).to_have_text(STRINGS["kiosk.scan.payment_card"])
    assert k.session() is None
    scan_by_wedge(page, "23191000999995")
    expect(page.locator("#scan-message")).to_have_text(STRINGS["kiosk.scan.not_recognised"])
    assert_accessible(page, "refused")

    scan_by_wedge(page, MARIA)
    expect(page.locator("#fees-heading")).to_have_text("Hello, Maria")
    page.click("#start-over")
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    wait_for(lambda: k.session() is None, "the session to end")


def test_a_serial_scan_shows_on_the_page_and_a_new_patron_gets_a_fresh_page(kiosk, screen):
    k = kiosk()
    page = screen(k)
    k.scan(MARIA)  # as the serial reader would: the page learns of it by the event stream
    expect(page.locator("#fees-heading")).to_have_text("Hello, Maria")
    k.scan("23191000200063")
    expect(page.locator("#fees-heading")).to_have_text("Hello, Thomas")
    expect(page.locator(".fee-row")).to_have_count(1)


def test_titles_are_shown_when_privacy_mode_is_off(kiosk, screen):
    k = kiosk(privacy=False)
    page = screen(k)
    scan_by_wedge(page, MARIA)
    expect(page.locator(".fee-title")).to_have_count(3)
    expect(page.locator("#titles-toggle")).to_be_hidden()
