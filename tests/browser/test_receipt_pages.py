"""The receipt page without a receipt link (issue 14 item 8), in each language: back from
CashNet with the payment reference only, the patron's own session shows the receipt and puts a
fresh link in the address; a stranger is asked to sign in; an expired link asks for a new
receipt, naming the reference."""

import time

import pytest
from browser_support import off_the_loop
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_receipt_by_reference_and_expired_links(deploy, open_page, lang, L, axe):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    created, _ = off_the_loop(d.pay, patron, amount="5.00")
    payment_id = created["payment"]["id"]
    d.wait_for_state(payment_id, "posted")

    own = open_page(d.url, lang, sso_user="mkowalski")
    own.goto(d.url + "/auth/sso?next=/")
    own.goto(f"{d.url}/receipt.html?p={payment_id}")
    expect(own.get_by_role("status")).to_have_text(L["receipt.state.posted"])
    expect(own.locator("#r-ref")).to_have_text(payment_id)
    assert "?r=" in own.url and payment_id not in own.url
    axe(own, "receipt by the patron's session")

    stranger = open_page(d.url, lang)
    stranger.goto(f"{d.url}/receipt.html?p={payment_id}")
    expect(stranger.get_by_role("status")).to_have_text(
        L["receipt.sign_in_to_see"].replace("{reference}", payment_id))
    expect(stranger.locator("#receipt")).to_be_hidden()
    axe(stranger, "receipt by reference, no session")

    d.services.receipts.clock = lambda: time.time() + 400 * 86400
    stranger.goto(f"{d.url}/receipt.html?r={created['payment']['receipt_token']}")
    expect(stranger.get_by_role("status")).to_have_text(
        L["receipt.expired"].replace("{reference}", payment_id))
    expect(stranger.locator("#receipt")).to_be_hidden()
    axe(stranger, "expired receipt link")
