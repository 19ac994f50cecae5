"""One payment at a time, as the patron sees it on the fees page: a fee another tab is paying
shows "payment in progress", starting a payment that overlaps it answers with that payment and
its choices (go back to CashNet, cancel), and the payments of the last twelve months link to
their receipts. In every language, axe-clean."""

import pytest
from browser_support import off_the_loop, text
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LOST, OVERDUE = "7730018830004146", "7730012450004146"


def test_payment_in_progress_and_the_choice_it_offers(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#fee-rows input[type=checkbox]")).to_have_count(3)
    expect(page.locator("#in-progress")).to_be_hidden()

    # Another tab of the same patron starts paying the overdue fine meanwhile.
    other_tab = d.sign_in_sso("mkowalski")
    started = d.start_payment(other_tab, fee_ids=[OVERDUE])["payment"]
    page.locator("#pay-button").click()
    expect(page.locator("#alert")).to_have_text(L["error.payment_in_progress"])
    panel = page.get_by_role("region", name=L["payments.progress.heading"])
    expect(panel).to_be_visible()
    expect(page.locator("#in-progress-heading")).to_be_focused()
    expect(panel.locator("li p").first).to_contain_text("$4.75")
    expect(panel.get_by_role("button", name=L["payments.resume"])).to_be_visible()
    expect(panel.get_by_role("button", name=L["payments.cancel"])).to_be_visible()
    overdue_row = page.locator("#fee-rows tr", has_text="$4.75").first
    expect(overdue_row.locator("td").first).to_have_text(L["fees.in_progress"])
    expect(page.locator("#fee-rows input[type=checkbox]")).to_have_count(2)
    expect(page.locator("#selected-total")).to_have_text(
        text(L["pay.selected_total"], amount="$72.50"))
    axe(page, "payment in progress, after the 409")

    panel.get_by_role("button", name=L["payments.cancel"]).click()
    expect(page.locator("#status")).to_have_text(text(L["payments.cancelled"], amount="$4.75"))
    expect(page.locator("#in-progress")).to_be_hidden()
    expect(page.locator("#fee-rows input[type=checkbox]")).to_have_count(3)
    assert d.ledger.payment(started["id"]).state == "cancelled"

    # A payment started here, left on CashNet's page, is offered back when the patron returns.
    page.locator("#pay-button").click()
    page.wait_for_url(d.settings.cashnet_checkout_url + "**")
    page.goto(d.url + "/")
    expect(page.locator("#in-progress")).to_be_visible()
    expect(page.locator("#fee-rows input[type=checkbox]")).to_have_count(0)
    expect(page.locator("#fees-empty")).to_have_text(L["fees.none_payable_in_progress"])
    axe(page, "every fee in progress")
    page.get_by_role("button", name=L["payments.resume"]).click()
    page.wait_for_url(d.settings.cashnet_checkout_url + "**")
    expect(page.locator("[data-total]")).to_have_attribute("data-total", "77.25")


def test_the_payments_of_the_last_year_link_to_their_receipts(deploy, open_page, lang, L, axe):
    d = deploy()
    tab = d.sign_in_sso("mkowalski")
    created, _ = off_the_loop(d.pay, tab, fee_ids=[OVERDUE])
    d.wait_for_state(created["payment"]["id"], "posted")
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    history = page.get_by_role("region", name=L["payments.caption"])
    expect(history.locator("tbody tr")).to_have_count(1)
    cells = history.locator("tbody tr").first.locator("td")
    expect(cells).to_have_text(["$4.75", L["payments.where.web"], L["payments.state.posted"],
                                L["payments.receipt"]])
    axe(page, "fees with the payments of the last year")
    history.get_by_role("link").click()
    page.wait_for_url(d.url + "/receipt.html?r=*")
    expect(page.locator("#r-amount")).to_have_text("$4.75")
