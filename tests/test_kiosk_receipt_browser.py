"""The kiosk's receipt choices in Debian's Chromium (issue 19): after a payment the receipt screen
offers "Print receipt" beside "Done" (never forced) when the kiosk has a printer, and none
without one; a receipt prints on the virtual printer in the patron's language; out of paper,
the screen says so plainly, says the payment is not affected and shows the web receipt's code.
"E-mail receipt" stands beside "Print receipt" when the proxy can mail the receipt (the sandbox's
mail server), is offered again when the printer fails, and once chosen says where the receipt
goes, masked; no mail goes unless chosen. axe-core (AAA rules, as tests/test_kiosk_browser.py
runs it) on each, in every language."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from support.kiosk import MARIA, Kiosk
from support.waiting import wait_for

from kiosk.printer import parse_printer
from sandbox.printer import VirtualPrinter
from sandbox.smtp import Mailbox, SmtpServer

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
from browser_support import (  # noqa: E402 - shared with tests/browser, which is not a package
    INTL,
    LANGS,
    WAIT_MS,
    assert_kiosk_accessible,
    launched_chromium,
    strings,
    text,
)

pytestmark = pytest.mark.browser

HINT = "m\u2022\u2022\u2022@example.edu"  # Maria's address, as a shared screen may show it
PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture(params=LANGS)
def lang(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def printer(tmp_path) -> Iterator[VirtualPrinter]:
    virtual = VirtualPrinter(tmp_path / "receipts").start()
    yield virtual
    virtual.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(Mailbox()).start()
    yield server
    server.stop()


def mail_settings(smtp_server: SmtpServer) -> dict[str, str]:
    return {"smtp_url": smtp_server.url, "mail_from": "Library fines <fines@example.edu>",
            "mail_backoff_cap_seconds": "0.3"}


@pytest.fixture
def browser_page(chromium) -> Iterator:
    contexts, problems = [], []

    def open_(k: Kiosk, lang: str) -> Page:
        context = chromium.new_context(viewport=PORTRAIT, locale=INTL["en"])
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" and "Content Security Policy" in m.text else None)
        page.goto(k.url + "/kiosk/")
        expect(page.locator("#idle")).to_be_visible()
        page.locator(f'.language-switch a[data-lang="{lang}"]').click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], problems


def assert_fits(page: Page, state: str) -> None:
    for size in (PORTRAIT, LANDSCAPE):
        page.set_viewport_size(size)
        assert page.evaluate("() => document.documentElement.scrollWidth <= "
                             "document.documentElement.clientWidth"), (state, size)
    page.set_viewport_size(PORTRAIT)


def pay_and_come_back(page: Page, k: Kiosk, L: dict[str, str]) -> None:
    assert k.scan(MARIA)["result"] == "accepted"  # as a serial reader would
    expect(page.locator("#fees-heading")).to_have_text(text(L["kiosk.fees.hello"], name="Maria"))
    page.click("#pay-all")
    page.wait_for_url(k.d.settings.cashnet_checkout_url + "**")
    page.get_by_role("button", name="Pay $77.25").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(k.url + "/kiosk/return?p=*")
    expect(page.locator("#receipt-heading")).to_have_text(text(L["kiosk.receipt.thanks"],
                                                               name="Maria"))


def test_print_receipt_is_offered_and_prints_in_the_patrons_language(kiosk, browser_page,
                                                                       printer, lang):
    L = strings(lang)
    k = kiosk(printer=parse_printer(printer.connection))
    page = browser_page(k, lang)
    pay_and_come_back(page, k, L)
    button = page.locator("#print-receipt")
    expect(button).to_be_visible()
    expect(button).to_have_text(L["kiosk.print.button"])
    expect(page.locator("#done")).to_be_visible()  # the patron may just leave
    assert button.bounding_box()["height"] >= 64
    assert printer.receipts == []  # nothing prints unless asked
    assert_kiosk_accessible(page, "receipt with Print receipt")
    assert_fits(page, "receipt with Print receipt")

    button.click()
    expect(page.locator("#print-status")).to_have_text(L["kiosk.print.done"])
    expect(button).to_be_hidden()  # one receipt per payment
    [receipt] = printer.wait_for(1)
    assert receipt.texts[1] == L["slip.heading"]
    assert L["slip.fees"] in receipt.texts
    expect(page.locator("#print-trouble")).to_be_hidden()
    assert_kiosk_accessible(page, "receipt printed")


def test_paper_out_is_said_plainly_with_the_web_receipt(kiosk, browser_page, printer, lang):
    L = strings(lang)
    printer.set_state("paper_out")
    k = kiosk(printer=parse_printer(printer.connection))
    page = browser_page(k, lang)
    pay_and_come_back(page, k, L)
    page.click("#print-receipt")
    alert = page.get_by_role("alert").filter(has_text=L["kiosk.print.paper_out"])
    expect(alert).to_have_text(f"{L['kiosk.print.paper_out']} {L['kiosk.print.not_affected']}")
    code = page.locator("#web-receipt-code")
    expect(code).to_be_visible()
    expect(code).to_have_attribute("alt", L["kiosk.print.code"])
    page.wait_for_function("() => document.getElementById('web-receipt-code').naturalWidth > 0")
    expect(page.locator("#web-receipt p")).to_have_text(L["kiosk.print.web_receipt"])
    expect(page.locator("#print-receipt")).to_be_enabled()  # try again once the paper is in
    assert printer.receipts == []
    assert_kiosk_accessible(page, "printer out of paper")
    assert_fits(page, "printer out of paper")
    page.click("#contrast")
    assert_kiosk_accessible(page, "printer out of paper, high contrast")

    printer.set_state("ready")
    page.click("#print-receipt")
    expect(page.locator("#print-status")).to_have_text(L["kiosk.print.done"])
    expect(page.locator("#print-trouble")).to_be_hidden()
    assert len(printer.wait_for(1)) == 1


def test_no_printer_no_print_choice(kiosk, browser_page):
    L = strings("en")
    k = kiosk()
    page = browser_page(k, "en")
    pay_and_come_back(page, k, L)
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#print-receipt")).to_be_hidden()
    expect(page.locator("#print-trouble")).to_be_hidden()
    expect(page.locator("#email-receipt")).to_be_hidden()  # no mail server: no e-mail choice


def test_email_receipt_beside_print_and_where_it_went(kiosk, browser_page, printer,
                                                      smtp_server, lang):
    L = strings(lang)
    k = kiosk(printer=parse_printer(printer.connection),
              proxy_settings=mail_settings(smtp_server))
    page = browser_page(k, lang)
    pay_and_come_back(page, k, L)
    email = page.locator("#email-receipt")
    expect(email).to_be_visible()
    expect(email).to_have_text(L["kiosk.email.button"])
    expect(page.locator("#print-receipt")).to_be_visible()  # both offered, neither forced
    expect(page.locator("#done")).to_be_visible()
    assert email.bounding_box()["height"] >= 64
    assert "mkowalski" not in page.content()  # never the address at a shared kiosk
    assert_kiosk_accessible(page, "receipt with Print and E-mail receipt")
    assert_fits(page, "receipt with Print and E-mail receipt")
    k.d.wait_for_state(k.service.holder.current.payment.id, "posted")
    assert smtp_server.mailbox.messages() == []  # nothing is mailed unless chosen

    email.click()
    expect(page.locator("#email-status")).to_have_text(text(L["kiosk.email.done"], to=HINT))
    expect(email).to_be_hidden()  # once per payment
    expect(page.locator("#print-receipt")).to_be_visible()  # printing is still a choice
    [received] = wait_for_mail(smtp_server)
    assert received.rcpt_tos == ("mkowalski@example.edu",)
    assert_kiosk_accessible(page, "receipt e-mailed")
    page.click("#contrast")
    assert_kiosk_accessible(page, "receipt e-mailed, high contrast")


def test_printer_trouble_offers_the_email(kiosk, browser_page, printer, smtp_server, lang):
    L = strings(lang)
    printer.set_state("paper_out")
    k = kiosk(printer=parse_printer(printer.connection),
              proxy_settings=mail_settings(smtp_server))
    page = browser_page(k, lang)
    pay_and_come_back(page, k, L)
    page.click("#print-receipt")
    instead = page.locator("#email-instead")
    expect(instead).to_have_text(text(L["kiosk.print.email_instead"], to=HINT))
    expect(page.locator("#web-receipt-code")).to_be_visible()
    assert_kiosk_accessible(page, "printer out of paper, e-mail offered")
    assert_fits(page, "printer out of paper, e-mail offered")

    page.click("#email-receipt")
    expect(page.locator("#email-status")).to_have_text(text(L["kiosk.email.done"], to=HINT))
    expect(instead).to_be_hidden()
    assert_kiosk_accessible(page, "printer out of paper, receipt e-mailed")


def wait_for_mail(smtp_server: SmtpServer) -> list:
    return wait_for(lambda: smtp_server.mailbox.messages(), "the e-mailed receipt")
