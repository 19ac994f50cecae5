"""The rest of what patrons meet: the language switch, the server-rendered hand-off page,
every receipt state, and a whole payment made with the keyboard alone."""

import pytest
from browser_support import off_the_loop, strings, text
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

OTHER = {"en": "es", "es": "en"}
NAMES = {"en": "English", "es": "Español"}
TAB_LIMIT = 40


def language_cookie(page: Page) -> str | None:
    cookies = {c["name"]: c for c in page.context.cookies()}
    cookie = cookies.get("patronpay_lang")
    if cookie:
        assert (cookie["sameSite"], cookie["httpOnly"], cookie["path"]) == ("Lax", False, "/")
    return cookie["value"] if cookie else None


def test_language_switch_keeps_what_the_patron_did(deploy, open_page, lang, L, axe):
    d = deploy()
    other = OTHER[lang]
    L2 = strings(other)
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    switch = page.get_by_role("navigation", name=L["nav.language"])
    expect(switch.get_by_role("link")).to_have_text(["English", "Español"])
    expect(switch.get_by_role("link", name=NAMES[lang])).to_have_attribute("aria-current", "true")
    expect(switch.get_by_role("link", name=NAMES[other])).to_have_attribute("lang", other)
    page.get_by_role("checkbox").nth(1).uncheck()
    page.get_by_label(L["pay.amount"]).fill("30")
    assert language_cookie(page) is None  # the browser's language is not a choice to remember

    switch.get_by_role("link", name=NAMES[other]).click()
    expect(page.locator("html")).to_have_attribute("lang", other)
    expect(page.get_by_role("heading", level=2)).to_have_text(L2["fees.heading"])
    expect(page.get_by_role("navigation", name=L2["nav.language"]).get_by_role(
        "link", name=NAMES[other])).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("link", name=NAMES[other])).to_be_focused()
    expect(page.get_by_role("checkbox")).to_have_count(3)
    assert [box.is_checked() for box in page.get_by_role("checkbox").all()] == [True, False, True]
    expect(page.get_by_label(L2["pay.amount"])).to_have_value("30")
    expect(page.locator("#selected-total")).to_have_text(text(L2["pay.selected_total"], amount="$72.50"))
    expect(page.get_by_role("columnheader")).to_have_text([L2[f"fees.col.{c}"] for c in (
        "pay", "type", "library", "title", "date", "original", "balance")])
    expect(page).to_have_title(L2["site.title"])
    assert language_cookie(page) == other
    axe(page, f"fees after switching to {other}")

    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", other)
    expect(page.get_by_role("heading", level=2)).to_have_text(L2["fees.heading"])
    page.goto(f"{d.url}/?lang={lang}")
    expect(page.get_by_role("heading", level=2)).to_have_text(L["fees.heading"])
    assert language_cookie(page) == lang


def test_dates_and_amounts_follow_the_language(deploy, open_page):
    d = deploy()
    page = open_page(d.url, "es", sso_user="tlee")
    page.goto(d.url + "/auth/sso?next=/")
    cells = page.locator("#fee-rows tr").first.locator("td")
    expect(cells.nth(3)).to_have_text("5 may 2025")
    expect(cells.nth(5)).to_have_text("$1,250.00")
    page.get_by_role("link", name="English").click()
    expect(cells.nth(3)).to_have_text("May 5, 2025")
    expect(cells.nth(5)).to_have_text("$1,250.00")


def create_payment(page: Page, amount: str) -> dict:
    """A payment made by the page's own API client (as the pay button would)."""
    return page.evaluate(
        "async (amount) => (await apiCall('POST', '/api/payments', { amount })).data",
        amount)


def test_hand_off_page_without_javascript(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#fee-rows tr")).to_have_count(3)
    payment = create_payment(page, "10.00")["payment"]
    page.route("**/pay.js", lambda route: route.abort())  # a browser without JavaScript
    page.goto(f"{d.url}/pay/{payment['id']}")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page).to_have_title(f"{L['handoff.title']} – {L['site.title']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(L["handoff.heading"])
    expect(page.get_by_role("main")).to_contain_text(text(L["handoff.amount"], amount="$10.00"))
    axe(page, "hand-off page")

    other = OTHER[lang]
    L2 = strings(other)
    page.get_by_role("navigation", name=L["nav.language"]).get_by_role(
        "link", name=NAMES[other]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(L2["handoff.heading"])
    expect(page.locator("html")).to_have_attribute("lang", other)
    assert language_cookie(page) == other
    axe(page, f"hand-off page in {other}")

    page.get_by_role("button", name=L2["handoff.submit"]).click()
    expect(page.locator("[data-total]")).to_have_attribute("data-total", "10.00")


def test_receipt_states(deploy, open_page, lang, L, axe):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    pending = d.start_payment(patron, amount="5.00")["payment"]
    restricted = d.sign_in_sso("rgarcia")
    created, _ = off_the_loop(d.pay, restricted)
    d.wait_for_state(created["payment"]["id"], "attention")
    page = open_page(d.url, lang)

    page.goto(f"{d.url}/receipt.html?r={pending['receipt_token']}")
    expect(page.locator("body")).to_have_attribute("data-state", "pending")
    expect(page.get_by_role("status")).to_have_text(L["receipt.state.pending"])
    expect(page.locator("#receipt")).to_be_hidden()
    axe(page, "receipt, pending")

    token = d.services.receipts.token(created["payment"]["id"])
    page.goto(f"{d.url}/receipt.html?r={token}")
    expect(page.get_by_role("status")).to_have_text(L["receipt.state.attention"])
    expect(page.locator("#r-amount")).to_have_text("$21.00")
    axe(page, "receipt, attention")

    page.goto(f"{d.url}/receipt.html?r=not-a-token")
    expect(page.get_by_role("status")).to_have_text(L["receipt.unknown"])
    axe(page, "receipt, unknown")
    page.goto(f"{d.url}/receipt.html?error=unknown_payment")
    expect(page.get_by_role("status")).to_have_text(L["receipt.unknown"])


def has_visible_focus(page: Page) -> bool:
    """The focused element shows a focus indicator: an outline at least 2px wide."""
    return page.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    }""")


def tab_to(page: Page, target: Locator, origin: str) -> None:
    """Press Tab until `target` has focus; on our pages every stop on the way must show
    where the focus is (CashNet's pages are not ours to judge)."""
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        if target.evaluate("e => e === document.activeElement"):
            return
        if page.url.startswith(origin) and not page.evaluate("document.activeElement === document.body"):
            assert has_visible_focus(page), page.evaluate("document.activeElement.outerHTML")
    raise AssertionError(f"{TAB_LIMIT} presses of Tab never reached {target}")


def test_keyboard_only_payment(deploy, open_page):
    d = deploy()
    L = strings("en")
    page = open_page(d.url)
    page.goto(d.url + "/")
    expect(page.get_by_role("heading", name=L["signin.heading"])).to_be_visible()

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name=L["site.skip"])
    expect(skip).to_be_focused()
    assert skip.bounding_box()["x"] >= 0 and has_visible_focus(page)
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    tab_to(page, page.get_by_label(L["signin.alma.user"]), d.url)
    page.keyboard.type("jsmith")
    page.keyboard.press("Tab")
    expect(page.get_by_label(L["signin.alma.password"])).to_be_focused()
    page.keyboard.type("correct-horse-7")
    page.keyboard.press("Enter")

    overdue = page.get_by_role("checkbox", name="Pay Overdue fine of $3.25")
    tab_to(page, overdue, d.url)
    page.keyboard.press("Space")
    expect(overdue).not_to_be_checked()
    tab_to(page, page.get_by_label(L["pay.amount"]), d.url)
    page.keyboard.press("Control+A")
    page.keyboard.type("4.00")
    page.keyboard.press("Enter")

    expect(page.locator("[data-total]")).to_have_attribute("data-total", "4.00")
    tab_to(page, page.get_by_label("Card number"), d.url)
    page.keyboard.type("4111111111111111")
    tab_to(page, page.get_by_role("button", name="Pay $4.00"), d.url)
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_role("button", name="Sign out"), d.url)
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_have_text(L["receipt.state.posted"])
    expect(page.locator("#r-fees li")).to_have_text(["Card renewal: $4.00"])
    tab_to(page, page.get_by_role("button", name=L["receipt.print"]), d.url)
    tab_to(page, page.get_by_role("link", name=L["receipt.back"]), d.url)
    page.keyboard.press("Enter")
    expect(page.locator("#fee-rows tr")).to_have_count(2)
