"""The staff pages in Chromium (docs/operations.md#staff-pages): staff sign in through the
sandbox's campus sign-on gateway, find a payment in attention, retry it and see it posted;
reconcile and export; the kiosks, one offline; a patron who signs in there gets 403. axe-core
checks every page."""

import time
from datetime import UTC, datetime

import pytest
from browser_support import off_the_loop
from playwright.sync_api import Page, expect

from proxy import kiosk_fleet

pytestmark = pytest.mark.browser

OVERDUE = "7730012450004146"


def campus_sign_in(page: Page, user: str, password: str) -> None:
    """The sandbox's stand-in for the campus sign-on in front of /staff/auth/sso."""
    page.get_by_label("Campus user name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def menu(page: Page, name: str):
    return page.get_by_role("navigation", name="Staff pages").get_by_role("link", name=name)


def test_staff_find_an_attention_payment_retry_it_and_see_it_posted(deploy, open_page, axe):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski", amount="62.00")
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")  # gone before posting
    off_the_loop(d.cashnet.complete, cid)
    d.wait_for_state(payment_id, "attention")

    page = open_page(d.url, "en")
    page.goto(d.url + "/staff/")
    campus_sign_in(page, "tlee", "staff-pass")
    expect(page.get_by_role("heading", level=1)).to_have_text("Payments that need staff")
    expect(page.get_by_text("Signed in as tlee")).to_be_visible()
    attention = page.get_by_role("table", name="Payments in attention, oldest first")
    expect(attention.locator("tbody tr")).to_have_count(1)
    axe(page, "staff home, one payment in attention")

    attention.get_by_role("link", name=payment_id).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Payment {payment_id}")
    expect(page.locator("#state")).to_have_text("attention")
    advice = page.get_by_role("region", name="What to do")
    expect(advice).to_contain_text("2.00 taken by CashNet")
    axe(page, "payment in attention")

    # The fee was closed by mistake: staff reopen it in Alma, then retry here.
    d.alma.set_fee("mkowalski", OVERDUE, balance="4.75", status="ACTIVE")
    page.get_by_role("button", name="Retry posting to Alma").click()
    expect(page.get_by_role("status")).to_have_text(
        "Sent back to posting: the service reads Alma before paying.")
    d.wait_for_state(payment_id, "posted")
    page.reload()
    expect(page.locator("#state")).to_have_text("posted")
    expect(page.get_by_role("table").filter(has_text="Event trail")).to_contain_text("staff:tlee")
    expect(page.get_by_role("button", name="Retry posting to Alma")).to_have_count(0)
    axe(page, "payment posted after the retry")

    menu(page, "Needs staff").click()
    expect(page.get_by_text("No payment is in attention.")).to_be_visible()

    menu(page, "Payments").click()
    page.get_by_label("Patron (Alma primary id)").fill("mkowalski")
    page.get_by_role("button", name="Find payments").click()
    expect(page.get_by_role("table", name="Matching payments, newest first")
           .locator("tbody tr")).to_have_count(1)
    axe(page, "search results")

    today = datetime.now(UTC).date().isoformat()
    menu(page, "Reconcile").click()
    page.get_by_label("Payments started from (YYYY-MM-DD)").fill(today)
    page.get_by_role("button", name="Reconcile").click()
    expect(page.locator("#summary")).to_contain_text("Nothing needs staff.")
    axe(page, "reconcile report")
    page.get_by_label("Payments started from (YYYY-MM-DD)").fill("2025-01-01")
    page.get_by_role("button", name="Reconcile").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Reconcile at most 31 days at a time: each one reads Alma.")
    axe(page, "reconcile, range too long")

    menu(page, "Export").click()
    page.get_by_label("Paid from (YYYY-MM-DD)").fill(today)
    page.get_by_label("to (YYYY-MM-DD, whole day)").fill(today)
    axe(page, "export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == f"patronpay-payments-{today}-to-{today}.csv"

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Signed out")
    axe(page, "signed out")


def test_a_patron_gets_403_on_the_staff_pages(deploy, open_page, axe):
    d = deploy()
    page = open_page(d.url, "en")
    page.goto(d.url + "/staff/")
    campus_sign_in(page, "mkowalski", "student-pass")
    # The gateway shows patronpay's refusal with its status (a campus web server in front
    # would pass patronpay's own page through, as below).
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in refused by patronpay")
    expect(page.get_by_text("patronpay answered HTTP 403.")).to_be_visible()
    page.goto(d.url + "/staff/payments")
    assert page.url.startswith(d.sandbox.url)  # back to the sign-on: still no staff session

    # A patron signed in to the fees page, with the campus web server adding the header.
    patron = open_page(d.url, "en", sso_user="mkowalski")
    patron.goto(d.url + "/auth/sso?next=/")
    expect(patron.locator("#fee-rows tr")).to_have_count(3)
    response = patron.goto(d.url + "/staff/auth/sso?next=/staff/")
    assert response is not None and response.status == 403
    expect(patron.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(patron.get_by_text("mkowalski may not use the staff pages")).to_be_visible()
    expect(patron.get_by_role("navigation", name="Staff pages")).to_have_count(0)
    axe(patron, "403 for a patron")


def test_staff_see_the_kiosks_and_which_is_offline(deploy, open_page, axe):
    d = deploy(kiosk_keys=f"lobby={'k' * 40},stacks={'s' * 40}")
    now = time.time()
    for kiosk_id, heard_at, printer in (("lobby", now, "ready"), ("stacks", now - 600,
                                                                   "paper_out")):
        kiosk_fleet.record_report(d.services.db, kiosk_id, kiosk_fleet.parse_report(
            {"version": "0.1.0", "reader": "connected", "printer": printer}), heard_at)
    page = open_page(d.url, "en")
    page.goto(d.url + "/staff/")
    campus_sign_in(page, "tlee", "staff-pass")
    menu(page, "Kiosks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Kiosks")
    table = page.get_by_role("table", name="Kiosks by id")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.get_by_role("row", name="stacks")).to_contain_text("offline")
    expect(page.locator("#kiosk-summary")).to_have_text(
        "1 of the configured kiosks is not online.")
    axe(page, "kiosks, one offline")
