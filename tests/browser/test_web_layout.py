"""Layout for every patron: 320 px wide and 200% zoom without sideways scrolling of the page,
reduced motion respected, the receipt's print style, and the colour palette's contrast."""

import re
from pathlib import Path

import pytest
from browser_support import contrast, off_the_loop
from playwright.sync_api import Page, expect

STYLE = Path(__file__).resolve().parents[2] / "site" / "style.css"
# 320 CSS px (WCAG 1.4.10 reflow), and a 1280x900 desktop at 200% zoom (640x450 CSS px).
NARROW = {"viewport": {"width": 320, "height": 640}}
ZOOMED = {"viewport": {"width": 640, "height": 450}, "device_scale_factor": 2}


def page_scrolls_sideways(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")


@pytest.mark.browser
@pytest.mark.parametrize("size", [NARROW, ZOOMED], ids=["320px", "zoom200"])
def test_pages_reflow_without_sideways_scrolling(deploy, open_page, lang, L, axe, size):
    d = deploy()
    page = open_page(d.url, lang, **size)
    page.goto(d.url + "/")
    expect(page.get_by_role("heading", name=L["signin.heading"])).to_be_visible()
    assert not page_scrolls_sideways(page)
    axe(page, "sign-in, narrow")

    page = open_page(d.url, lang, sso_user="mkowalski", **size)
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#fee-rows tr")).to_have_count(3)
    assert not page_scrolls_sideways(page)
    region = page.get_by_role("region", name=L["fees.caption"])
    expect(region).to_have_attribute("tabindex", "0")  # keyboard users can scroll it too
    if size is NARROW:  # the table scrolls inside its own region, and its caption stays put
        assert region.evaluate("e => e.scrollWidth > e.clientWidth")
        region.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
        caption = page.locator("#fees-caption").bounding_box()
        assert caption["x"] >= 0 and caption["x"] + caption["width"] <= 320
    page.get_by_label(L["pay.amount"]).fill("1000")
    page.locator("#pay-button").click()
    expect(page.locator("#amount-error")).to_be_visible()
    assert not page_scrolls_sideways(page)
    axe(page, "fees with an error, narrow")

    created, completion = off_the_loop(d.pay, d.sign_in_sso("tlee"))
    token = d.services.receipts.token(created["payment"]["id"])
    page.goto(f"{d.url}/receipt.html?r={token}")
    expect(page.locator("body")).to_have_attribute("data-state", "posted")
    assert not page_scrolls_sideways(page)
    axe(page, "receipt, narrow")


@pytest.mark.browser
@pytest.mark.parametrize(("motion", "transition", "scrolling"), [
    ("reduce", "0s", "auto"), ("no-preference", "0.15s", "smooth")])
def test_reduced_motion_is_respected(deploy, open_page, motion, transition, scrolling):
    d = deploy()
    page = open_page(d.url, reduced_motion=motion)
    page.goto(d.url + "/")
    button = page.locator("#guest-form button")
    expect(button).to_be_visible()
    assert button.evaluate("e => getComputedStyle(e).transitionDuration") == transition
    assert page.evaluate("getComputedStyle(document.documentElement).scrollBehavior") == scrolling


@pytest.mark.browser
def test_receipt_prints_without_the_page_furniture(deploy, open_page):
    d = deploy()
    created, _ = off_the_loop(d.pay, d.sign_in_sso("mkowalski"), amount="10.00")
    token = d.services.receipts.token(created["payment"]["id"])
    page = open_page(d.url)
    page.goto(f"{d.url}/receipt.html?r={token}")
    expect(page.locator("body")).to_have_attribute("data-state", "posted")
    expect(page.locator("header")).to_be_visible()
    page.emulate_media(media="print")
    for hidden in ("header", "footer", "#print", "#back", ".skip-link", ".language-switch"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator(".print-only")).to_have_text("Library fines and fees")
    expect(page.locator("#r-amount")).to_have_text("$10.00")
    expect(page.locator("#r-fees li")).to_have_text(["Lost item replacement fee: $10.00"])
    page.emulate_media(media="screen")
    expect(page.locator("header")).to_be_visible()


# Text and background pairs the stylesheet uses, by custom property name.
TEXT_PAIRS = [("ink", "paper"), ("ink", "soft"), ("muted", "paper"), ("muted", "soft"),
              ("accent", "paper"), ("accent", "soft"), ("accent-ink", "accent"),
              ("error", "paper"), ("error", "error-soft"), ("error", "soft")]
# Non-text: borders of inputs, the focus ring against both backgrounds it meets.
UI_PAIRS = [("ink", "paper"), ("focus", "accent"), ("ink", "focus"), ("line", "paper"),
            ("ok", "soft")]


def test_palette_contrast_meets_wcag_aa():
    palette = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", STYLE.read_text()))
    for fg, bg in TEXT_PAIRS:
        assert contrast(palette[fg], palette[bg]) >= 4.5, (fg, bg)
    for fg, bg in UI_PAIRS:
        assert contrast(palette[fg], palette[bg]) >= 3.0, (fg, bg)
    assert round(contrast(palette["ink"], palette["paper"]), 1) == 17.4
    assert round(contrast(palette["accent-ink"], palette["accent"]), 1) == 8.4
