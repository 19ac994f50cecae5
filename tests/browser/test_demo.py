"""The README's demo command, run the way a newcomer runs it, serves the whole flow: a real
`patronpay demo` process, driven in Chromium from sign-in to a posted receipt, and that receipt
e-mailed to the mail page the demo prints."""

from collections.abc import Iterator

import httpx
import pytest
from browser_support import strings
from playwright.sync_api import expect
from support.demo_process import DemoProcess, running_demo
from support.waiting import wait_for

pytestmark = pytest.mark.browser


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    with running_demo() as running:
        yield running


def test_the_demo_serves_the_whole_flow(demo, open_page):
    site = demo.url(r"pay library fines at").rstrip("/")
    assert "jsmith / correct-horse-7" in demo.printed()
    L = strings("en")
    page = open_page(site, "en")
    page.goto(site + "/")
    page.get_by_label(L["signin.alma.user"]).fill("jsmith")
    page.get_by_label(L["signin.alma.password"]).fill("correct-horse-7")
    page.get_by_role("button", name=L["signin.alma.submit"]).click()
    expect(page.locator("#fee-rows tr")).to_have_count(2)
    page.get_by_label(L["pay.amount"]).fill("5.00")
    page.get_by_role("button", name="Pay $13.25 with CashNet").click()

    expect(page.get_by_role("heading", name="Your order")).to_be_visible()
    page.get_by_label("Card number").fill("4111 1111 1111 1111")
    page.get_by_label("Expiry date (MM/YY)").fill("12/30")
    page.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Pay $5.00").click()
    page.get_by_role("button", name="Sign out").click()

    expect(page.locator("body")).to_have_attribute("data-state", "posted")
    expect(page.locator("#r-amount")).to_have_text("$5.00")
    expect(page.locator("#r-fees li")).to_have_text(["Card renewal: $5.00"])

    # The demo says where its mail lands, and the receipt just paid for is there (issue 13).
    mail = demo.url(r"e-mail: receipts")
    wait_for(lambda: httpx.get(mail + "messages.json", timeout=5).json(),
             "the receipt at the demo's mail page")
    page.goto(mail)
    received = page.locator("tbody tr")
    expect(received).to_have_count(1)
    expect(received).to_contain_text("jsmith@example.org")
    expect(received).to_contain_text("Your payment to Example University Library: $5.00")
    received.get_by_role("link").click()
    expect(page.locator("pre")).to_contain_text("Card renewal: $5.00")


def test_the_demo_offers_campus_sign_on(demo, open_page):
    site = demo.url(r"pay library fines at").rstrip("/")
    L = strings("en")
    page = open_page(site, "en")
    page.goto(site + "/")
    page.get_by_role("link", name=L["signin.sso"]).click()
    page.get_by_label("Campus user name").fill("mkowalski")
    page.get_by_label("Password").fill("student-pass")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#fee-rows tr")).to_have_count(3)
