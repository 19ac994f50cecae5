"""Every kiosk path ends on a kiosk page (issue 19): when CashNet's sign-out names a payment the
proxy cannot find, a kiosk's browser goes back to the kiosk's own return page (its Chromium may
open nothing else), and a web browser to the web receipt's "unknown payment" page."""

from __future__ import annotations

import httpx
from support.kiosk import MARIA
from support.waiting import wait_for

UNKNOWN_ID = "0" * 32


def test_a_kiosk_payment_returns_with_the_kiosk_mark(kiosk):
    k = kiosk()
    k.scan(MARIA)
    handle = k.handle()
    created = k.page().post("/api/payments", json={"amount": "5.00"},
                            headers={"X-CSRF-Token": handle}).json()
    fields = dict(created["checkout"]["fields"])
    assert fields["signouturl"] == (
        f"{k.d.url}/cashnet/return?kiosk=1&p={created['payment']['id']}")


def test_an_unknown_payment_from_a_kiosk_goes_back_to_the_kiosk(kiosk):
    k = kiosk()
    wait_for(lambda: k.page().get("/healthz").status_code == 200, "the agent")
    back = httpx.get(f"{k.d.url}/cashnet/return", params={"kiosk": "1", "p": UNKNOWN_ID})
    assert back.status_code == 303
    assert back.headers["location"] == f"{k.url}/kiosk/return?p={UNKNOWN_ID}"
    # The kiosk's return page, which finds no such payment under way and starts over.
    assert httpx.get(back.headers["location"]).status_code == 200


def test_an_unknown_payment_from_the_web_goes_to_the_receipt_page(deploy):
    d = deploy()
    web = d.browser().get("/cashnet/return", params={"p": UNKNOWN_ID})
    assert web.status_code == 303
    assert web.headers["location"] == "/receipt.html?error=unknown_payment"
    web_payment = d.start_payment(d.sign_in_sso("mkowalski"), amount="5.00")
    assert "kiosk=1" not in dict(web_payment["checkout"]["fields"])["signouturl"]
