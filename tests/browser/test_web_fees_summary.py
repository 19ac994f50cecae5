"""The fees page with what real Alma accounts carry (issue 12, items 8 and 9), in every
language, axe-clean: what is owed, that a credit exists and what it does, a fee billed to the
student account, a fee whose amount is not whole cents, and what paying here charges under
both credit policies."""

import pytest
from browser_support import text
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

BILLED, OVERDUE, CREDIT, SUB_CENT, INSTITUTION, NO_OWNER = (
    f"77300800{n}0004146" for n in range(1, 7))


def open_fees(deploy, open_page, lang: str, **settings: str) -> Page:
    d = deploy(show_exported_fees="true", **settings)
    page = open_page(d.url, lang, sso_user="lnguyen")
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#fee-rows tr")).to_have_count(6)
    return page


def notes(page: Page) -> list[str]:
    return page.locator("#fee-rows td.hint").all_text_contents()


def test_owed_credit_billed_and_desk_fees_are_told_apart(deploy, open_page, lang, L, axe):
    page = open_fees(deploy, open_page, lang)
    assert notes(page) == [L["fees.billed"], L["fees.credit"], L["fees.inexact"]]
    expect(page.locator("#total-owed")).to_have_text(text(L["fees.total_owed"], amount="$17.50"))
    expect(page.locator("#credit-line")).to_have_text(text(L["fees.credit_show"], amount="$4.00"))
    expect(page.locator("#inexact-line")).to_have_text(L["fees.inexact_one"])
    # The fee for the desk shows no amount to add up, never a guess at one.
    sub_cent = page.locator("#fee-rows tr").nth(3).locator("td.num")
    expect(sub_cent).to_have_text(["—", "—"])
    expect(page.get_by_role("checkbox")).to_have_count(3)
    expect(page.locator("#selected-total")).to_have_text(
        text(L["pay.selected_total"], amount="$17.50"))
    expect(page.locator("#pay-button")).to_have_text(text(L["pay.submit"], amount="$17.50"))
    axe(page, "fees with a credit, a billed fee and a fee for the desk")


def test_net_policy_takes_the_credit_off_what_paying_here_charges(deploy, open_page, lang, L,
                                                                   axe):
    page = open_fees(deploy, open_page, lang, credit_policy="net")
    expect(page.locator("#credit-line")).to_have_text(text(L["fees.credit_net"], amount="$4.00"))
    expect(page.locator("#selected-total")).to_have_text(text(
        L["pay.selected_total_net"], chosen="$17.50", credit="$4.00", amount="$13.50"))
    expect(page.locator("#pay-button")).to_have_text(text(L["pay.submit"], amount="$13.50"))
    expect(page.get_by_label(L["pay.amount"])).to_have_value("13.50")
    axe(page, "fees, credit taken off")

    # Only the $3.50 locker key: the credit covers it, so there is nothing to pay here.
    boxes = page.get_by_role("checkbox")
    boxes.nth(0).uncheck()
    boxes.nth(1).uncheck()
    expect(page.locator("#pay-button")).to_be_disabled()
    expect(page.locator("#amount-help")).to_have_text(L["pay.credit_covers"])
    axe(page, "fees covered by the credit")
