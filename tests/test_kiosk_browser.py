"""The kiosk pages in Debian's Chromium (issues 5 and 7): a keyboard-wedge scan, the fees in large
type with titles hidden, a payment on the sandbox CashNet page that comes back to the kiosk's
receipt, the idle warning with "I need more time" (extended many times) and the full reset,
the receipt's countdown, a bank card refused on screen; and, in every language of the site,
axe-core (AAA contrast included) on every screen and display mode, with every screen fitting
the panel upright (1080x1920) and on its side (1920x1080).

The kiosk's browser starts in the kiosk's own language (English here); a patron picks another
with the language switch, and the next patron starts in English again.

Playwright's fake clock (page.clock) moves the page's wall clock, so 90 s of idleness take no
time; the agent's own deadlines run on the real clock and are not reached here."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from support.kiosk import BANK_SWIPE, MARIA, Kiosk
from support.waiting import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
from browser_support import (  # noqa: E402 - shared with tests/browser, which is not a package
    INTL,
    LANGS,
    WAIT_MS,
    assert_kiosk_accessible,
    launched_chromium,
    off_the_loop,
    strings,
    text,
)
from browser_support import contrast as contrast_ratio  # noqa: E402

pytestmark = pytest.mark.browser

PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
PRIYA, DAVID = "23191000200030", "23191000200048"  # no fees; a credit and a fine
ENGLISH = strings("en")

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture(params=LANGS)
def lang(request: pytest.FixtureRequest) -> str:
    """Run the test once per language of the site."""
    return request.param


@pytest.fixture
def L(lang: str) -> dict[str, str]:  # noqa: N802 - reads like the site's t()
    return strings(lang)


@pytest.fixture
def screen(chromium) -> Iterator:
    """`screen(kiosk, lang="en", go=True)`: the kiosk's browser (its own language English) at a
    portrait touch panel's size, with a fake clock; with `go`, on the idle screen, where the
    patron has picked `lang` with the language switch. Any script error or CSP refusal fails
    the test."""
    contexts, problems = [], []

    def open_(k: Kiosk, lang: str = "en", go: bool = True) -> Page:
        context = chromium.new_context(viewport=PORTRAIT, locale=INTL["en"])
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" and "Content Security Policy" in m.text else None)
        page.clock.install()
        if go:
            page.goto(k.url + "/kiosk/")
            expect(page.locator("#idle")).to_be_visible()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            choose_language(page, lang)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], problems


def choose_language(page: Page, lang: str) -> None:
    """The patron taps their language in the kiosk's header."""
    page.locator(f'.language-switch a[data-lang="{lang}"]').click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator(f'.language-switch a[data-lang="{lang}"]')).to_have_attribute(
        "aria-current", "true")


def pause_clock(page: Page) -> None:
    """Stop the page's clock (a second ahead: pause_at cannot go back, and the clock runs on
    meanwhile); from then on only fast_forward moves it, so timings are exact however busy
    the test machine is."""
    page.clock.pause_at(page.evaluate("() => (Date.now() + 1000) / 1000"))  # Unix seconds


def scan_by_wedge(page: Page, data: str, resume: bool = True) -> None:
    """A keyboard-wedge scanner: fast keys, then Enter. The page's clock stands still while
    the keys arrive, so a busy test machine cannot stretch a gap past the wedge's 100 ms and
    split the read (the wedge's timing has its own tests, tests/test_kiosk_page_timers.py).
    `resume=False` leaves it stopped, for tests that count the seconds after the scan."""
    pause_clock(page)
    page.keyboard.type(data, delay=5)
    page.keyboard.press("Enter")
    if resume:
        page.clock.resume()


def hold(page: Page, url_glob: str) -> list[Route]:
    """Requests to `url_glob` wait until the test lets them go (route.continue_()), so the
    screens shown while the kiosk waits can be checked."""
    held: list[Route] = []
    page.route(url_glob, lambda route: held.append(route))
    return held


def release(page: Page, url_glob: str, held: list[Route]) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while not held:  # Playwright hands the route over while it is waited on
        assert time.monotonic() < deadline, f"no request to {url_glob}"
        page.wait_for_timeout(20)
    for route in held:
        route.continue_()
    page.unroute(url_glob)


def fee_label(L: dict[str, str], code: str) -> str:
    """English shows Alma's own labels (the sandbox's are en.json's); other languages ours."""
    return L[f"feetype.{code}"]


# What does not fit the panel: the page scrolling sideways, anything reaching past its left or
# right edge, a box whose content is wider or taller than it (cut text), and anything in the
# fixed full-screen warning that is off screen (it cannot be scrolled to).
OVERFLOWS = """() => {
  const width = document.documentElement.clientWidth, height = window.innerHeight;
  const problems = [];
  const name = (el) => el.id || `${el.tagName.toLowerCase()}.${el.className}`;
  if (document.documentElement.scrollWidth > width) problems.push("the page scrolls sideways");
  for (const el of document.body.querySelectorAll("*")) {
    if (!el.checkVisibility() || el.closest(".visually-hidden")) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -0.5 || r.right > width + 0.5) problems.push(`${name(el)} reaches off screen`);
    const style = getComputedStyle(el);
    if (style.display !== "inline" && (el.scrollWidth > el.clientWidth + 1 ||
        (style.overflowY !== "visible" && el.scrollHeight > el.clientHeight + 1))) {
      problems.push(`${name(el)} is cut: ${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}`);
    }
    if (el.closest("#warning") && (r.top < -0.5 || r.bottom > height + 0.5)) {
      problems.push(`${name(el)} is off the warning's screen`);
    }
  }
  return problems;
}"""


def assert_fits(page: Page, state: str) -> None:
    """The screen as it is now fits the panel upright and on its side."""
    for size in (PORTRAIT, LANDSCAPE):
        page.set_viewport_size(size)
        assert page.evaluate(OVERFLOWS) == [], f"{state} at {size['width']}x{size['height']}"
    page.set_viewport_size(PORTRAIT)


def check(page: Page, state: str) -> None:
    assert_kiosk_accessible(page, state)
    assert_fits(page, state)


def target_sizes(page: Page) -> list[tuple[str, float, float]]:
    return page.evaluate("""() => [...document.querySelectorAll("button, a, label.fee-row")]
        .filter((el) => el.offsetParent !== null)
        .map((el) => { const r = el.getBoundingClientRect();
                       return [el.id || el.textContent.trim().slice(0, 20), r.width, r.height]; })""")


def test_scan_fees_pay_on_cashnet_receipt_and_done(kiosk, screen, lang, L):
    k = kiosk()
    page = screen(k, lang)
    expect(page).to_have_title(L["kiosk.title"])
    expect(page.locator("#idle-heading")).to_have_text(L["kiosk.idle.heading"])
    expect(page.locator("#idle-limit")).to_have_text(text(L["kiosk.idle.limit"], seconds="90"))
    check(page, "idle")

    fees_held = hold(page, "**/api/fees*")
    scan_by_wedge(page, MARIA)
    expect(page.locator("#working-heading")).to_have_text(L["kiosk.working"])
    check(page, "finding the account")
    release(page, "**/api/fees*", fees_held)

    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Maria"))
    expect(page.locator("#fees-intro")).to_have_text(L["kiosk.fees.intro"])
    assert page.evaluate("() => getComputedStyle(document.body).fontSize") == "24px"
    rows = page.locator(".fee-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(fee_label(L, "LOSTITEMREPLACEMENTFEE"))
    expect(rows.nth(0)).to_contain_text("$60.00")
    expect(page.locator("#fees-total")).to_have_text(text(L["kiosk.fees.total"], amount="$77.25"))
    expect(page.locator(".fee-title")).to_have_count(0)  # privacy mode: titles hidden
    expect(page.locator("#titles-toggle")).to_have_text(L["kiosk.fees.show_titles"])
    page.click("#titles-toggle")
    expect(page.locator(".fee-title").first).to_have_text("The structure of scientific revolutions")
    expect(page.locator("#titles-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#titles-toggle")).to_have_text(L["kiosk.fees.hide_titles"])
    check(page, "fees")
    sizes = target_sizes(page)
    assert len(sizes) >= 6  # the fee rows, the pay buttons, the header's controls
    for name, width, height in sizes:
        assert width >= 48 and height >= 48, (name, width, height)
    assert page.locator("#pay-all").bounding_box()["height"] >= 64
    # Never the card number on screen.
    assert MARIA not in page.content() and MARIA[-4:] not in page.inner_text("body")

    page.locator(".fee-row").nth(0).click()  # untick the lost-item fee
    expect(page.locator("#pay-all")).to_have_text(text(L["kiosk.pay.all"], amount="$17.25"))
    page.click("#pay-part")
    expect(page.locator("#amount-heading")).to_have_text(L["kiosk.amount.heading"])
    expect(page.locator("#amount-help")).to_have_text(
        text(L["kiosk.amount.help"], min="$1.00", max="$17.25"))
    expect(page.locator("#pay-amount")).to_have_text(L["kiosk.pay.amount_plain"])
    expect(page.locator("#pay-amount")).to_be_disabled()
    for key in ["1", "0", ".", "5"]:
        page.click(f'[data-key="{key}"]')
    expect(page.locator("#amount-display")).to_have_text("$10.50")
    expect(page.get_by_role("group", name=L["kiosk.amount.keypad"])).to_be_visible()
    expect(page.get_by_role("button", name=L["kiosk.amount.delete"])).to_be_visible()
    check(page, "amount")

    page.click("#pay-amount")

    # The sandbox CashNet page (another origin), then its sign-out back to the kiosk.
    page.wait_for_url(k.d.settings.cashnet_checkout_url + "**")
    assert k.scan(MARIA) == {"result": "ignored", "reason": "payment_in_progress"}
    page.get_by_role("button", name="Pay $10.50").click()
    current_held = hold(page, "**/api/payments/current*")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(k.url + "/kiosk/return?p=*")
    expect(page.locator("html")).to_have_attribute("lang", lang)  # the patron's choice holds
    expect(page.locator("#checking-heading")).to_have_text(L["kiosk.receipt.checking"])
    check(page, "checking the payment")
    release(page, "**/api/payments/current*", current_held)

    expect(page).to_have_title(L["kiosk.receipt.title"])
    expect(page.locator("#receipt-heading")).to_have_text(text(L["kiosk.receipt.thanks"], name="Maria"))
    expect(page.locator("#receipt-status")).to_have_text(L["kiosk.state.posted"])
    expect(page.locator("#r-amount")).to_have_text("$10.50")
    expect(page.locator("#r-fees li")).to_have_text([
        text(L["kiosk.receipt.fee_line"], type=fee_label(L, "OVERDUEFINE"), amount="$4.75"),
        text(L["kiosk.receipt.fee_line"], type=fee_label(L, "DAMAGEDITEMFINE"), amount="$5.75")])
    expect(page.locator("#receipt dt")).to_have_text([
        L["kiosk.receipt.amount"], L["kiosk.receipt.date"], L["kiosk.receipt.cashnet_tx"],
        L["kiosk.receipt.reference"]])
    expect(page.locator("#done")).to_have_text(L["kiosk.done"])
    check(page, "receipt")
    # The receipt has the language switch too, and is redrawn in the other language.
    other = next(code for code in LANGS if code != lang)
    choose_language(page, other)
    expect(page.locator("#receipt-heading")).to_have_text(
        text(strings(other)["kiosk.receipt.thanks"], name="Maria"))
    expect(page.locator("#r-fees li").first).to_have_text(text(
        strings(other)["kiosk.receipt.fee_line"], type=fee_label(strings(other), "OVERDUEFINE"),
        amount="$4.75"))
    payment_id = page.locator("#r-ref").inner_text()
    assert k.d.ledger.payment(payment_id).channel == "kiosk:lib1"

    page.click("#done")
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    # The next patron starts in the kiosk's own language.
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#idle-heading")).to_have_text(ENGLISH["kiosk.idle.heading"])
    assert k.session() is None
    assert k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 0)]


def test_idle_warning_extensions_and_full_reset(kiosk, screen, lang, L):
    k = kiosk()
    page = screen(k, lang)
    scan_by_wedge(page, MARIA, resume=False)  # the idle seconds below are exact
    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Maria"))
    handle = k.handle()

    page.clock.fast_forward(89_000)
    expect(page.locator("#warning")).to_be_hidden()
    page.clock.fast_forward(2_000)
    expect(page.locator("#warning")).to_be_visible()
    expect(page.locator("#more-time")).to_be_focused()
    expect(page.locator("#more-time")).to_have_text(L["kiosk.more_time"])
    expect(page.locator("#warning-heading")).to_have_text(L["kiosk.warning.heading"])
    expect(page.locator("#warning-live")).to_have_attribute("aria-live", "assertive")
    expect(page.locator("#warning-live")).to_have_text(text(L["kiosk.warning.live"], seconds="30"))
    expect(page.locator("#warning-count")).to_have_text(
        text(L["kiosk.warning.countdown"], seconds="29"))
    page.clock.resume()  # axe-core runs on timers; the exact seconds are checked
    assert page.locator("#main").evaluate("el => el.inert") is True
    assert page.locator("#more-time").bounding_box()["height"] >= 64
    check(page, "warning")

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
    expect(page.locator("html")).to_have_attribute("lang", "en")
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
    # Posted before the patron comes back, so the receipt shows on its first look (its polling
    # runs on timers, which stand still below); then the countdown's seconds are exact.
    k.d.wait_for_state(k.d.ledger.find_payments()[0].id, "posted")
    pause_clock(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#receipt-heading")).to_have_text("Thank you, Maria")
    expect(page.locator("#receipt-count")).to_have_text(
        text(ENGLISH["kiosk.receipt.countdown"], seconds="30"))
    page.clock.fast_forward(25_000)
    page.click("#receipt-more-time")  # the same "I need more time" control
    page.clock.fast_forward(25_000)
    expect(page.locator("#receipt")).to_be_visible()
    page.clock.fast_forward(6_000)
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    wait_for(lambda: k.session() is None, "the agent to drop the session")


def test_start_over_and_a_bank_card_at_the_scanner(kiosk, screen, lang, L):
    k = kiosk()
    page = screen(k, lang)
    scan_by_wedge(page, BANK_SWIPE)
    expect(page.locator("#scan-message")).to_have_text(L["kiosk.scan.payment_card"])
    assert k.session() is None
    scan_by_wedge(page, "23191000999995")
    expect(page.locator("#scan-message")).to_have_text(L["kiosk.scan.not_recognised"])
    check(page, "refused")

    scan_by_wedge(page, MARIA)
    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Maria"))
    expect(page.locator("#scan-message")).to_be_empty()
    # Switching language mid-session translates the screen and brings back no old message.
    other = next(code for code in LANGS if code != lang)
    choose_language(page, other)
    expect(page.locator("#fees-heading")).to_have_text(
        text(strings(other)["kiosk.fees.hello"], name="Maria"))
    expect(page.locator("#start-over")).to_have_text(strings(other)["kiosk.start_over"])
    expect(page.locator("#scan-message")).to_be_empty()
    page.click("#start-over")
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    wait_for(lambda: k.session() is None, "the session to end")


def test_display_modes_on_every_kind_of_screen(kiosk, screen, lang, L):
    """Larger text and high contrast, alone and together, on the fees (with a credit that
    cannot be paid here), the keypad and the warning; both stay for this patron only."""
    k = kiosk()
    page = screen(k, lang)
    scan_by_wedge(page, DAVID)
    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="David"))
    expect(page.locator(".fee-row")).to_have_count(2)
    expect(page.locator(".fee-note")).to_have_text(L["kiosk.fees.credit"])
    check(page, "fees with a credit")
    expect(page.locator("#contrast")).to_have_text(L["kiosk.controls.contrast"])
    expect(page.locator("#bigger-text")).to_have_text(L["kiosk.controls.bigger"])

    # Larger text; then high contrast too; then high contrast alone.
    for button, big, contrast in (("bigger-text", True, False), ("contrast", True, True),
                                  ("bigger-text", False, True)):
        page.click(f"#{button}")
        expect(page.locator("#bigger-text")).to_have_attribute("aria-pressed", str(big).lower())
        expect(page.locator("#contrast")).to_have_attribute("aria-pressed", str(contrast).lower())
        assert page.evaluate("() => getComputedStyle(document.body).fontSize") == (
            "30px" if big else "24px")
        mode = ("larger text" if big else "") + (", high contrast" if contrast else "")
        page.hover("#pay-all")  # a touch panel leaves the last tapped button hovered
        check(page, f"fees, {mode}")
        page.click("#pay-part")
        expect(page.locator("#amount-heading")).to_be_visible()
        for key in ["9", "9"]:
            page.click(f'[data-key="{key}"]')
        expect(page.locator("#pay-amount")).to_be_disabled()  # more than David's $8.00
        expect(page.locator("#amount-error")).to_have_text(L["kiosk.amount.out_of_range"])
        check(page, f"amount, {mode}")
        page.clock.fast_forward(91_000)
        expect(page.locator("#warning")).to_be_visible()
        check(page, f"warning, {mode}")
        page.click("#more-time")
        page.click("#amount-back")
        expect(page.locator("#fees")).to_be_visible()

    page.click("#start-over")
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    assert page.evaluate("() => document.documentElement.className") == ""


def test_nothing_to_pay(kiosk, screen, lang, L):
    k = kiosk()
    page = screen(k, lang)
    scan_by_wedge(page, PRIYA)
    expect(page.locator("#nothing-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Priya"))
    expect(page.locator("#nothing-text")).to_have_text(L["kiosk.fees.none"])
    expect(page.locator("#nothing-done")).to_have_text(L["kiosk.done"])
    check(page, "nothing to pay")
    page.click("#nothing-done")
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    wait_for(lambda: k.session() is None, "the session to end")


def test_cancelled_on_cashnet_and_back_to_the_fees(kiosk, screen, lang, L):
    """Not paid; and the patron's language and larger text come back with them from CashNet."""
    k = kiosk()
    page = screen(k, lang)
    scan_by_wedge(page, MARIA)
    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Maria"))
    page.click("#bigger-text")
    page.click("#pay-all")
    page.wait_for_url(k.d.settings.cashnet_checkout_url + "**")
    page.get_by_role("button", name="Cancel (902)").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(k.url + "/kiosk/return?p=*")
    expect(page.locator("#not-paid-heading")).to_have_text(L["kiosk.state.cancelled"])
    expect(page.locator("#back-to-fees")).to_have_text(L["kiosk.amount.back"])
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_class("big-text")
    expect(page.locator("#bigger-text")).to_have_attribute("aria-pressed", "true")
    check(page, "cancelled")
    page.click("#back-to-fees")
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Maria"))
    expect(page.locator("html")).to_have_attribute("lang", lang)  # the same patron
    expect(page.locator("html")).to_have_class("big-text")
    page.click("#start-over")
    page.wait_for_url(k.url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.evaluate("() => [document.documentElement.className, document.cookie]") == ["", ""]


def test_the_screen_while_leaving_for_cashnet(kiosk, screen, lang, L):
    k = kiosk()
    page = screen(k, lang)
    scan_by_wedge(page, MARIA)
    expect(page.locator("#pay-all")).to_have_text(text(L["kiosk.pay.all"], amount="$77.25"))
    # CashNet answers "204 No Content": the browser stays on the kiosk's page, as it is
    # while CashNet's page loads.
    page.route(k.d.settings.cashnet_checkout_url + "**", lambda route: route.fulfill(status=204))
    with page.expect_request(k.d.settings.cashnet_checkout_url + "**"):
        page.click("#pay-all")
    expect(page.locator("#redirecting-heading")).to_have_text(L["kiosk.pay.redirecting"])
    expect(page.locator("#redirecting .lead")).to_have_text(L["kiosk.pay.card_there"])
    expect(page.locator("#start-over")).to_be_hidden()
    check(page, "taking the patron to CashNet")


def test_the_kiosk_starting_up(kiosk, screen, lang, L):
    k = kiosk()
    page = screen(k, go=False)
    page.context.add_cookies([{"name": "patronpay_lang", "value": lang, "url": k.url}])
    page.route("**/api/session", lambda route: route.fulfill(status=503, json={}))
    page.goto(k.url + "/kiosk/")
    expect(page.locator("#offline-heading")).to_have_text(L["kiosk.offline"])
    check(page, "starting up")
    page.unroute("**/api/session")
    page.clock.fast_forward(5_000)
    expect(page.locator("#idle")).to_be_visible()


def test_a_serial_scan_shows_on_the_page_and_a_new_patron_gets_a_fresh_page(kiosk, screen):
    k = kiosk()
    page = screen(k, "es")
    k.scan(MARIA)  # as the serial reader would: the page learns of it by the event stream
    expect(page.locator("#fees-heading")).to_have_text("Hola, Maria")
    page.click("#bigger-text")
    k.scan("23191000200063")
    expect(page.locator("#fees-heading")).to_have_text("Hello, Thomas")  # and in English
    expect(page.locator(".fee-row")).to_have_count(1)
    assert page.evaluate("() => document.documentElement.className") == ""


def test_titles_are_shown_when_privacy_mode_is_off(kiosk, screen):
    k = kiosk(privacy=False)
    page = screen(k)
    scan_by_wedge(page, MARIA)
    expect(page.locator(".fee-title")).to_have_count(3)
    expect(page.locator("#titles-toggle")).to_be_hidden()


KIOSK_CSS = Path(__file__).resolve().parent.parent / "site" / "kiosk" / "kiosk.css"
# Text on its background, both palettes: AAA, 7:1 (fee rows and the keypad sit on `soft`).
TEXT_PAIRS = [("ink", "paper"), ("ink", "soft"), ("muted", "paper"), ("muted", "soft"),
              ("accent", "paper"), ("accent", "soft"), ("accent-ink", "accent"),
              ("error", "paper"), ("error", "error-soft")]
# Borders and focus rings: 3:1 (WCAG 1.4.11); the bar's focus ring is its own ink.
UI_PAIRS = [("line", "paper"), ("line", "soft"), ("accent-ink", "accent")]


def kiosk_palettes() -> dict[str, dict[str, str]]:
    css = KIOSK_CSS.read_text(encoding="utf-8")

    def block(selector: str) -> dict[str, str]:
        body = css[css.index(selector + " {"):]
        return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", body[:body.index("}")]))

    standard = block(":root")
    return {"standard": standard, "high contrast": standard | block("html.high-contrast")}


def test_kiosk_colours_are_aaa_in_both_palettes():
    palettes = kiosk_palettes()
    assert palettes["high contrast"]["paper"] == "#000000"
    for name, palette in palettes.items():
        for fg, bg in TEXT_PAIRS:
            assert contrast_ratio(palette[fg], palette[bg]) >= 7.0, (name, fg, bg)
        for fg, bg in UI_PAIRS:
            assert contrast_ratio(palette[fg], palette[bg]) >= 3.0, (name, fg, bg)
    assert round(contrast_ratio(palettes["standard"]["ink"], palettes["standard"]["paper"]), 1) == 18.9
    assert round(contrast_ratio(palettes["standard"]["accent-ink"], palettes["standard"]["accent"]), 1) == 11.4


def test_a_payment_in_progress_and_the_choice_at_the_kiosk(kiosk, screen, lang, L):
    """A fee the web is paying shows "payment in progress" and is left out of the total; paying
    what another payment covers brings up that payment with its choices; the last payments are
    listed (issue 13)."""
    lost, overdue, damaged = "7730018830004146", "7730012450004146", "7730020010004146"
    k = kiosk()
    web = k.d.sign_in_sso("mkowalski")
    paid, _ = off_the_loop(k.d.pay, web, fee_ids=[damaged])
    k.d.wait_for_state(paid["payment"]["id"], "posted")
    k.d.start_payment(web, fee_ids=[overdue])
    page = screen(k, lang)
    scan_by_wedge(page, MARIA)
    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Maria"))
    expect(page.locator("#fee-list .fee-row")).to_have_count(2)
    expect(page.locator("#fee-list .fee-row").nth(1)).to_contain_text(L["kiosk.fees.in_progress"])
    expect(page.locator("#fees-total")).to_have_text(text(L["kiosk.fees.total"], amount="$60.00"))
    progress = page.locator("#fees-progress-list li")
    expect(progress).to_have_count(1)
    expect(progress).to_contain_text("$4.75")
    expect(progress.get_by_role("button", name=L["payments.resume"])).to_have_count(0)  # web's
    expect(progress.get_by_role("button", name=L["payments.cancel"])).to_be_visible()
    recent = page.locator("#fees [data-recent] li")
    expect(recent).to_have_count(2)
    expect(recent.nth(1)).to_contain_text(L["payments.state.posted"])
    check(page, "fees with a payment in progress")

    k.d.start_payment(web, fee_ids=[lost])  # the web again, just before the kiosk's "Pay"
    page.click("#pay-all")
    expect(page.locator("#progress-heading")).to_have_text(L["kiosk.progress.heading"])
    expect(page.locator("#progress-error")).to_have_text(L["error.payment_in_progress"])
    expect(page.locator("#progress-list li")).to_have_count(1)
    expect(page.locator("#progress-list li")).to_contain_text("$60.00")
    check(page, "the payment in the way")
    page.locator("#progress-list").get_by_role("button", name=L["payments.cancel"]).click()
    expect(page.locator("#fees-heading")).to_be_visible()
    expect(page.locator("#fees-total")).to_have_text(text(L["kiosk.fees.total"], amount="$60.00"))
    expect(page.locator("#fees-progress-list li")).to_have_count(1)


LINH = "23191000200089"  # a credit, a fee sent to the bursar, a fee not in whole cents


def test_fees_with_a_credit_a_billed_fee_and_one_for_the_desk(kiosk, screen, lang, L):
    """What real accounts carry (issue 12): what is owed, the credit and what it does, a fee
    billed to the student account and one left for the desk, and what paying here charges."""
    k = kiosk(proxy_settings={"show_exported_fees": "true", "credit_policy": "net"})
    page = screen(k, lang)
    scan_by_wedge(page, LINH)
    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Linh"))
    expect(page.locator(".fee-row")).to_have_count(6)
    expect(page.locator(".fee-note")).to_have_text([
        L["kiosk.fees.billed"], L["kiosk.fees.credit"], L["kiosk.fees.at_desk"]])
    expect(page.locator("#fees-owed")).to_have_text(text(L["kiosk.fees.total_owed"], amount="$17.50"))
    expect(page.locator("#fees-credit")).to_have_text(
        text(L["kiosk.fees.credit_net"], amount="$4.00"))
    expect(page.locator("#fees-inexact")).to_have_text(L["kiosk.fees.inexact_one"])
    expect(page.locator("#fees-total")).to_have_text(text(
        L["kiosk.fees.total_net"], chosen="$17.50", credit="$4.00", amount="$13.50"))
    expect(page.locator("#pay-all")).to_have_text(text(L["kiosk.pay.all"], amount="$13.50"))
    check(page, "fees with a credit, a billed fee and a fee for the desk")

    # Only the $3.50 locker key: the $4.00 credit covers it, so nothing can be paid here.
    boxes = page.locator(".fee-row input[type=checkbox]")
    expect(boxes).to_have_count(3)
    boxes.nth(0).uncheck()
    boxes.nth(1).uncheck()
    expect(page.locator("#pay-all")).to_be_disabled()
    expect(page.locator("#pay-all")).to_have_text(L["kiosk.pay.credit_covers"])
    check(page, "fees covered by the credit")
