"""The web payment flow as patrons use it, in Chromium, in English and in Spanish: sign in,
choose fees, pay part, pay on the sandbox CashNet's own pages, decline, cancel, come back to
the receipt. axe-core checks every page state on the way."""

import re
from decimal import Decimal

import pytest
from browser_support import strings, text
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

D = Decimal
CARD_RENEWAL, JSMITH_OVERDUE = "7730030010004146", "7730030020004146"
LOST, OVERDUE, DAMAGED = "7730018830004146", "7730012450004146", "7730020010004146"
ALMA_LABELS = {"CARDRENEWAL": "Card renewal", "OVERDUEFINE": "Overdue fine",
               "LOSTITEMREPLACEMENTFEE": "Lost item replacement fee",
               "DAMAGEDITEMFINE": "Damaged item fine"}


def fee_label(L, code):
    """What the site shows for an Alma fee type: Alma's label in English, ours otherwise."""
    return ALMA_LABELS[code] if L["lang.intl"] == "en-US" else L[f"feetype.{code}"]


def fee_box(page: Page, L, code, amount):
    return page.get_by_role("checkbox", name=text(L["fees.select"], type=fee_label(L, code),
                                                  amount=amount))


def alma_fees(d, patron):
    return {f["id"]: (f["balance"], f["status"]) for f in d.alma.user_state(patron)["fees"]}


def guest_sign_in(page: Page, L, user, password):
    page.get_by_label(L["signin.alma.user"]).fill(user)
    page.get_by_label(L["signin.alma.password"]).fill(password)
    page.get_by_role("button", name=L["signin.alma.submit"], exact=True).click()


def on_cashnet(page: Page, total: str):
    """The sandbox CashNet's checkout page, with our amount filled in; type a test card."""
    expect(page.get_by_role("heading", name="Your order")).to_be_visible()
    expect(page.locator("[data-total]")).to_have_attribute("data-total", total)
    page.get_by_label("Card number").fill("4111 1111 1111 1111")
    page.get_by_label("Expiry date (MM/YY)").fill("12/30")
    page.get_by_label("Security code").fill("123")


def expect_receipt(page: Page, L, state):
    expect(page.locator("body")).to_have_attribute("data-state", state)
    expect(page.get_by_role("status")).to_have_text(L[f"receipt.state.{state}"])
    expect(page.get_by_role("heading", level=1)).to_have_text(L["receipt.heading"])


def test_guest_pays_part_of_one_fee(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang)
    page.goto(d.url + "/")
    expect(page.get_by_role("heading", name=L["signin.heading"])).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    axe(page, "sign-in")

    guest_sign_in(page, L, "jsmith", "not-the-password")
    expect(page.locator("#guest-error")).to_have_text(L["error.invalid_credentials"])
    expect(page.get_by_label(L["signin.alma.user"])).to_be_focused()
    axe(page, "sign-in, wrong password")

    guest_sign_in(page, L, "jsmith", "correct-horse-7")
    expect(page.get_by_role("heading", name=L["fees.heading"])).to_be_visible()
    expect(page.locator("#signed-in-as")).to_have_text(text(L["nav.signed_in_as"], name="Jordan Smith"))
    table = page.get_by_role("table", name=L["fees.caption"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first.locator("td.num")).to_have_text(["$10.00", "$10.00"])
    expect(page.locator("#selected-total")).to_have_text(text(L["pay.selected_total"], amount="$13.25"))
    axe(page, "fees")

    fee_box(page, L, "OVERDUEFINE", "$3.25").uncheck()
    expect(page.locator("#selected-total")).to_have_text(text(L["pay.selected_total"], amount="$10.00"))
    amount = page.get_by_label(L["pay.amount"])
    expect(amount).to_have_value("10.00")
    expect(amount).to_have_accessible_description(
        text(L["pay.amount.help"], min="$1.00", max="$10.00"))
    amount.fill("6.50")
    page.get_by_role("button", name=text(L["pay.submit"], amount="$10.00")).click()

    on_cashnet(page, "6.50")
    page.get_by_role("button", name="Pay $6.50").click()
    expect(page.get_by_role("heading", name="Payment received")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    expect_receipt(page, L, "posted")
    expect(page.locator("#r-amount")).to_have_text("$6.50")
    expect(page.locator("#r-fees li")).to_have_text(
        [text(L["receipt.fee_line"], type=fee_label(L, "CARDRENEWAL"), amount="$6.50")])
    expect(page.get_by_role("button", name=L["receipt.print"])).to_be_visible()
    axe(page, "receipt, posted")
    assert alma_fees(d, "jsmith") == {CARD_RENEWAL: (D("3.50"), "ACTIVE"),
                                      JSMITH_OVERDUE: (D("3.25"), "ACTIVE")}


def test_sso_patron_pays_everything(deploy, open_page):
    """Through the campus sign-on as the demo has it: our button, the campus login page (the
    sandbox's stand-in for Shibboleth in front of /auth/sso), back signed in."""
    d = deploy()
    L = strings("en")
    page = open_page(d.url, "en")
    page.goto(d.url + "/")
    page.get_by_role("link", name=L["signin.sso"]).click()
    page.get_by_label("Campus user name").fill("mkowalski")
    page.get_by_label("Password").fill("student-pass")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#fee-rows tr")).to_have_count(3)
    page.get_by_role("button", name="Pay $77.25 with CashNet").click()

    on_cashnet(page, "77.25")
    page.get_by_role("button", name="Pay $77.25").click()
    page.get_by_role("button", name="Sign out").click()

    expect_receipt(page, L, "posted")
    expect(page.locator("#r-amount")).to_have_text("$77.25")
    expect(page.locator("#r-fees li")).to_have_text([
        "Lost item replacement fee: $60.00", "Overdue fine: $4.75", "Damaged item fine: $12.50"])
    tx = page.locator("#r-tx").inner_text()
    payment = d.ledger.find_payments(patron_id="mkowalski")[0]
    assert (payment.state, payment.cashnet_tx, page.locator("#r-ref").inner_text()) == (
        "posted", tx, payment.id)
    assert alma_fees(d, "mkowalski") == {fee: (D("0.00"), "CLOSED")
                                         for fee in (LOST, OVERDUE, DAMAGED)}
    page.get_by_role("link", name=L["receipt.back"]).click()
    expect(page.locator("#fees-empty")).to_have_text(L["fees.none"])


def test_declined_card(deploy, open_page, lang, L, axe):
    d = deploy()
    before = d.alma.user_state("mkowalski")
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    page.get_by_role("button", name=text(L["pay.submit"], amount="$77.25")).click()

    on_cashnet(page, "77.25")
    page.get_by_role("button", name="Decline").click()
    expect(page.get_by_role("alert")).to_contain_text("Payment declined")
    payment = d.ledger.find_payments(patron_id="mkowalski")[0]
    d.wait_for_state(payment.id, "declined")
    assert d.alma.user_state("mkowalski") == before
    assert d.alma_calls("POST") == []

    # The declined card page offers a new try or Cancel, no sign-out; the patron leaves by
    # the sign-out address the checkout carried (what a "Return to the library" link does).
    page.goto(f"{d.url}/cashnet/return?p={payment.id}")
    expect_receipt(page, L, "declined")
    expect(page.locator("#receipt")).to_be_hidden()
    expect(page.get_by_role("button", name=L["receipt.print"])).to_be_hidden()
    expect(page.get_by_role("link", name=L["receipt.try_again"])).to_have_attribute("href", "/")
    axe(page, "receipt, declined")


def test_cancel_on_cashnet(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    page.get_by_label(L["pay.amount"]).fill("20")
    page.get_by_role("button", name=text(L["pay.submit"], amount="$77.25")).click()
    on_cashnet(page, "20.00")
    page.get_by_role("button", name="Cancel (902)").click()
    page.get_by_role("button", name="Sign out").click()

    expect_receipt(page, L, "cancelled")
    expect(page.get_by_role("link", name=L["receipt.try_again"])).to_be_visible()
    axe(page, "receipt, cancelled")
    assert d.ledger.find_payments(patron_id="mkowalski")[0].state == "cancelled"
    assert d.alma_calls("POST") == []


def test_patron_with_no_fees(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang, sso_user="pchen")
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#fees-empty")).to_have_text(L["fees.none"])
    expect(page.get_by_role("table")).to_have_count(0)
    expect(page.get_by_role("button", name=L["pay.submit_plain"])).to_have_count(0)
    axe(page, "fees, none")


def test_credit_shown_and_not_payable(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang, sso_user="dokafor")
    page.goto(d.url + "/auth/sso?next=/")
    rows = page.locator("#fee-rows tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").first).to_have_text(L["fees.credit"])
    expect(page.get_by_role("checkbox")).to_have_count(1)
    # What is owed, and the credit beside it (not netted into one figure: issue 12).
    expect(page.locator("#total-owed")).to_have_text(text(L["fees.total_owed"], amount="$8.00"))
    expect(page.locator("#credit-line")).to_have_text(text(L["fees.credit_show"], amount="$5.00"))
    axe(page, "fees with a credit")


def amount_error_shown(page: Page, L, message):
    """The error is by the field, tied to it, announced by focus, and not by colour alone."""
    field = page.get_by_label(L["pay.amount"])
    expect(page.locator("#amount-error")).to_have_text(message)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    expect(field).to_have_accessible_description(re_contains(message))
    assert page.locator("#amount-error").evaluate(
        "e => getComputedStyle(e, '::before').content").startswith('"⚠')


def re_contains(fragment):
    return re.compile(re.escape(fragment))


def test_field_errors_are_tied_to_their_field(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    field = page.get_by_label(L["pay.amount"])
    pay = page.get_by_role("button", name=text(L["pay.submit"], amount="$77.25"))

    field.fill("500")
    pay.click()
    amount_error_shown(page, L, text(L["error.amount_too_large"], amount="$77.25"))
    axe(page, "fees, amount too large")

    field.fill("0.50")
    pay.click()
    amount_error_shown(page, L, text(L["error.amount_too_small"], amount="$1.00"))

    field.fill("twelve")
    pay.click()
    amount_error_shown(page, L, L["error.invalid_amount"])

    field.fill("12.5")  # typing clears the error
    expect(field).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#amount-error")).to_be_hidden()

    for box in page.get_by_role("checkbox").all():
        box.uncheck()
    page.get_by_role("button", name=L["pay.submit_plain"]).click()
    expect(page.locator("#fees-error")).to_have_text(L["pay.nothing_chosen"])
    first = page.get_by_role("checkbox").first
    expect(first).to_be_focused()
    expect(first).to_have_accessible_description(L["pay.nothing_chosen"])
    axe(page, "fees, nothing chosen")
    assert d.ledger.find_payments() == []


def test_guest_form_errors(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang)
    page.goto(d.url + "/")
    user = page.get_by_label(L["signin.alma.user"])
    page.get_by_role("button", name=L["signin.alma.submit"], exact=True).click()
    expect(user).to_be_focused()
    expect(user).to_have_attribute("aria-invalid", "true")
    expect(user).to_have_accessible_description(re_contains(L["error.invalid_user_id"]))
    axe(page, "sign-in, user name missing")
    user.fill("jsmith")
    page.get_by_role("button", name=L["signin.alma.submit"], exact=True).click()
    password = page.get_by_label(L["signin.alma.password"])
    expect(password).to_be_focused()
    expect(password).to_have_accessible_description(L["error.invalid_password"])
    expect(user).not_to_have_attribute("aria-invalid", "true")


def test_alma_outage_is_explained_in_the_patrons_language(deploy, open_page, lang, L, axe):
    d = deploy()
    d.alma.set_faults({"rules": [{"match": {"method": "GET", "path": "*/fees"},
                                  "mode": "http_5xx", "status": 503}]})
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.get_by_role("alert").first).to_have_text(L["error.alma_unavailable"])
    axe(page, "fees, Alma down")


def test_unknown_error_code_shows_the_servers_message(deploy, open_page):
    d = deploy()
    page = open_page(d.url, "es", sso_user="mkowalski")
    page.route("**/api/fees", lambda route: route.fulfill(
        status=409, content_type="application/json",
        body='{"error": {"code": "something_new", "message": "A message from the server."}}'))
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#alert")).to_have_text("A message from the server.")


def test_sso_account_not_found_is_explained(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang, sso_user="nobody-here")
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#alert")).to_have_text(L["error.account_not_found"])
    axe(page, "sign-in, account not found")
