"""A payment id alone never gets a receipt (issue 14 item 8): the browser return gives a receipt
link only to the payment's own patron signed in on that browser, the payment's JSON only to
that patron's session, and receipt links expire after PATRONPAY_RECEIPT_DAYS with an answer
that asks for a new receipt. Over loopback, as an attacker holding someone's payment reference
(printed on their receipt) would try it."""

from __future__ import annotations

import time

import httpx

from proxy.patron_sessions import signer

DAY = 86400


def paid(d, patron_id="mkowalski"):
    patron = d.sign_in_sso(patron_id)
    created, completion = d.pay(patron, amount="5.00")
    d.wait_for_state(created["payment"]["id"], "posted")
    return patron, created["payment"], completion


def test_a_payment_reference_alone_gets_no_receipt(deploy):
    d = deploy()
    _, payment, _ = paid(d)
    stranger = httpx.Client(base_url=d.url, timeout=15.0)
    d.clients.append(stranger)
    by_query = stranger.get("/cashnet/return", params={"p": payment["id"]})
    assert by_query.headers["location"] == f"/receipt.html?p={payment['id']}"  # no link
    by_fields = stranger.post("/cashnet/return", data={
        "result": "0", "ref1type1": "PAYMENT_ID", "ref1val1": payment["id"]})
    assert by_fields.headers["location"] == f"/receipt.html?p={payment['id']}"
    assert stranger.get(f"/api/payments/{payment['id']}").status_code == 401
    other = d.sign_in_sso("jsmith")
    assert other.get(f"/api/payments/{payment['id']}").status_code == 404
    assert other.get("/cashnet/return", params={"p": payment["id"]}).headers[
        "location"] == f"/receipt.html?p={payment['id']}"


def test_the_patron_who_paid_gets_the_receipt_and_a_fresh_link(deploy):
    d = deploy()
    patron, payment, completion = paid(d)
    back = patron.get("/cashnet/return", params={"p": payment["id"]})  # a GET sign-out
    assert back.headers["location"].startswith("/receipt.html?r=")
    assert d.receipt(back)["id"] == payment["id"]
    own = patron.get(f"/api/payments/{payment['id']}").json()
    assert own["payment"]["state"] == "posted" and own["receipt_token"]
    link = httpx.get(f"{d.url}/api/receipts/{own['receipt_token']}")
    assert link.status_code == 200 and link.json()["payment"]["id"] == payment["id"]
    # CashNet's default sign-out is a cross-site POST: no cookie, so the page asks the session.
    assert d.receipt(d.follow_signout(completion), patron)["state"] == "posted"


def test_receipt_links_expire_and_say_so(deploy):
    d = deploy(receipt_days="30")
    _, payment, _ = paid(d)
    token = payment["receipt_token"]
    assert httpx.get(f"{d.url}/api/receipts/{token}").status_code == 200
    d.services.receipts.clock = lambda: time.time() + 29 * DAY
    assert httpx.get(f"{d.url}/api/receipts/{token}").status_code == 200
    d.services.receipts.clock = lambda: time.time() + 31 * DAY
    expired = httpx.get(f"{d.url}/api/receipts/{token}")
    assert expired.status_code == 410
    assert expired.json() == {
        "error": {"code": "receipt_expired",
                  "message": "This receipt link has expired. Ask for a new receipt."},
        "reference": payment["id"]}


def test_a_shorter_receipt_life_is_a_setting(deploy):
    d = deploy(receipt_days="1")
    _, payment, _ = paid(d)
    d.services.receipts.clock = lambda: time.time() + 2 * DAY
    assert httpx.get(f"{d.url}/api/receipts/{payment['receipt_token']}").status_code == 410


def test_forged_and_old_style_links(deploy):
    d = deploy()
    _, payment, _ = paid(d)
    token = payment["receipt_token"]
    for forged in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), payment["id"],
                   "x"):
        answer = httpx.get(f"{d.url}/api/receipts/{forged}")
        assert answer.status_code == 404 and "reference" not in answer.json()
    # Links made before receipt links expired (no time in them) count as expired.
    old = signer(d.settings.secret_keys, "receipt").dumps(payment["id"])
    assert httpx.get(f"{d.url}/api/receipts/{old}").status_code == 410
