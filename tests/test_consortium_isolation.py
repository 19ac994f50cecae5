"""Isolation between a consortium's institutions (docs/consortium.md#isolation), over loopback
against the consortium sandbox: a session, a receipt link, a kiosk key and a CashNet
notification of one institution are refused at another; a payment at each is posted to its
own Alma with its own store's item codes; one institution's Alma outage slows no other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from support.consortium import ConsortiumDeployment, start_consortium
from support.waiting import wait_for

from kiosk.signing import KioskAuth

A_KIOSK_SECRET = "campus-a-kiosk-secret-0123456789abcdef"
B_KIOSK_SECRET = "campus-b-kiosk-secret-0123456789abcdef"
MARIA_CARD = "23191000105866"  # mkowalski's library card, known at both Almas


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(
        tmp_path_factory.mktemp("consortium"),
        tables={"campus-a": {"kiosk_keys": f"a-kiosk={A_KIOSK_SECRET}"},
                "campus-b": {"kiosk_keys": f"b-kiosk={B_KIOSK_SECRET}"}})
    yield deployment
    deployment.stop()


def session_cookie(client: httpx.Client) -> str:
    return next(c.value for c in client.cookies.jar if c.name == "patronpay_session")


def test_a_session_of_one_institution_is_refused_at_another(d):
    browser = d.sign_in_sso("campus-a", "mkowalski")
    cookie = {"Cookie": f"patronpay_session={session_cookie(browser)}"}
    assert httpx.get(f"{d.url}/campus-a/api/session", headers=cookie).status_code == 200
    # The same patron exists at Campus B, yet Campus A's session means nothing there.
    at_b = httpx.get(f"{d.url}/campus-b/api/session", headers=cookie)
    assert at_b.status_code == 401
    fees = httpx.get(f"{d.url}/campus-b/api/fees", headers=cookie)
    assert fees.status_code == 401
    assert not d.alma_calls("campus-b")  # nothing was read from Campus B's Alma for it


def test_a_receipt_link_of_one_institution_is_refused_at_another(d):
    browser = d.sign_in_sso("campus-a", "jsmith")
    created = d.start_payment("campus-a", browser)
    token = created["payment"]["receipt_token"]
    mine = httpx.get(f"{d.url}/campus-a/api/receipts/{token}")
    assert mine.status_code == 200 and mine.json()["payment"]["id"] == created["payment"]["id"]
    elsewhere = httpx.get(f"{d.url}/campus-b/api/receipts/{token}")
    assert 400 <= elsewhere.status_code < 500
    assert created["payment"]["id"] not in elsewhere.text


def kiosk(d: ConsortiumDeployment, code: str, kiosk_id: str, secret: str) -> httpx.Client:
    client = httpx.Client(base_url=d.base(code), auth=KioskAuth(kiosk_id, secret),
                          timeout=15.0)
    d.clients.append(client)
    return client


def open_session(client: httpx.Client) -> httpx.Response:
    return client.post("/api/kiosk/sessions",
                       json={"credential": {"kind": "library_barcode", "value": MARIA_CARD}})


def test_a_kiosk_of_one_institution_is_refused_at_another(d):
    own = open_session(kiosk(d, "campus-a", "a-kiosk", A_KIOSK_SECRET))
    assert own.status_code == 201, own.text
    assert own.json()["patron"]["first_name"] == "Maria"
    elsewhere = open_session(kiosk(d, "campus-b", "a-kiosk", A_KIOSK_SECRET))
    assert elsewhere.status_code == 401
    assert open_session(kiosk(d, "campus-b", "b-kiosk", B_KIOSK_SECRET)).status_code == 201


def test_a_notification_of_one_institution_is_refused_at_another(d):
    browser = d.sign_in_sso("campus-a", "ana.rivera@example.edu")
    created, cid = d.pay("campus-a", browser)
    payment_id = created["payment"]["id"]
    d.wait_for_state("campus-a", payment_id, "posted")
    record = next(r for r in d.cashnet("campus-a").notifications(cid) if r["sent"])
    headers = {"Content-Type": record["headers"].get("Content-Type",
                                                     "application/x-www-form-urlencoded")}
    a_token = d.settings("campus-a").cashnet_postback_token
    b_token = d.settings("campus-b").cashnet_postback_token
    # Campus A's notification URL, below Campus B: its token is not Campus B's.
    wrong_url = httpx.post(f"{d.url}/campus-b/cashnet/postback/{a_token}",
                           content=record["body"], headers=headers)
    assert wrong_url.status_code == 404
    # Campus A's notification sent to Campus B's own URL names a payment Campus B never made.
    httpx.post(f"{d.url}/campus-b/cashnet/postback/{b_token}", content=record["body"],
               headers=headers)
    assert d.ledger("campus-b").payment(payment_id) is None
    assert not d.alma_calls("campus-b", method="POST")
    assert d.ledger("campus-a").payment(payment_id).state == "posted"


def test_the_root_notification_url_goes_to_the_institution_of_its_token(d):
    browser = d.sign_in_sso("campus-b", "rgarcia")
    created = d.start_payment("campus-b", browser)
    cid = d.hand_off(created["checkout"])
    token = d.settings("campus-b").cashnet_postback_token
    root_url = f"{d.url}/cashnet/postback/{token}"
    d.cashnet("campus-b").configure_store("BFINESTEST", notify_success_url=root_url,
                                          notify_failure_url=root_url)
    try:
        d.cashnet("campus-b").complete(cid, outcome="pay")
        d.wait_for_state("campus-b", created["payment"]["id"], "posted")
    finally:
        own = f"{d.base('campus-b')}/cashnet/postback/{token}"
        d.cashnet("campus-b").configure_store("BFINESTEST", notify_success_url=own,
                                              notify_failure_url=own)
    assert httpx.post(f"{d.url}/cashnet/postback/{'x' * 43}", data={}).status_code == 404


def paid_fees(d: ConsortiumDeployment, code: str) -> set[str]:
    return {r["path"].rsplit("/", 1)[-1] for r in d.alma_calls(code, method="POST", op="pay")}


def test_a_payment_at_each_institution_goes_to_its_own_alma_and_store(d):
    a_before, b_before = paid_fees(d, "campus-a"), paid_fees(d, "campus-b")
    a_cashnet_before = len(d.cashnet("campus-a").checkouts())
    # mkowalski owes at both: the same user id, two institutions, two payments.
    at_b = d.sign_in_sso("campus-b", "mkowalski")
    created_b, cid_b = d.pay("campus-b", at_b)
    posted_b = d.wait_for_state("campus-b", created_b["payment"]["id"], "posted")
    assert [line["itemcode"] for line in d.cashnet("campus-b").checkout(cid_b)["lines"]] == \
        ["B-OVERDUE"]
    assert paid_fees(d, "campus-b") - b_before == {"8840011110005257"}
    assert paid_fees(d, "campus-a") == a_before
    assert len(d.cashnet("campus-a").checkouts()) == a_cashnet_before
    fee = d.alma("campus-b").user_state("mkowalski")["fees"][0]
    assert fee["transactions"][-1]["external_transaction_id"] == posted_b.cashnet_tx

    at_a = d.sign_in_sso("campus-a", "mkowalski")
    created_a, cid_a = d.pay("campus-a", at_a)
    d.wait_for_state("campus-a", created_a["payment"]["id"], "posted")
    assert [line["itemcode"] for line in d.cashnet("campus-a").checkout(cid_a)["lines"]] == \
        ["LIB-LOST", "LIB-OVERDUE", "LIB-DAMAGE"]
    assert paid_fees(d, "campus-a") - a_before == {
        "7730018830004146", "7730012450004146", "7730020010004146"}
    assert paid_fees(d, "campus-b") - b_before == {"8840011110005257"}
    # Each ledger holds its own institution's payments only.
    assert d.ledger("campus-a").payment(created_b["payment"]["id"]) is None
    assert d.ledger("campus-b").payment(created_a["payment"]["id"]) is None


def test_one_institutions_alma_outage_slows_no_other(d):
    """Campus A's Alma answers nothing in time (every call takes 3 s, past the 2 s read
    timeout); while six of Campus A's fees pages wait on it, Campus B's answers in under
    1.5 s."""
    at_a = [d.sign_in_sso("campus-a", "tlee", client=d.browser()) for _ in range(2)]
    at_b = d.sign_in_sso("campus-b", "dokafor")
    d.alma("campus-a").clear_requests()
    d.alma("campus-a").set_faults({"rules": [
        {"match": {"path": "*"}, "mode": "slow", "latency_ms": 3000}]})
    try:
        answers: list[tuple[int, float]] = []

        def fees_at_a(client: httpx.Client) -> None:
            began = time.monotonic()
            status = client.get("/campus-a/api/fees").status_code
            answers.append((status, time.monotonic() - began))

        waiting = [threading.Thread(target=fees_at_a, args=(c,)) for c in at_a * 3]
        for thread in waiting:
            thread.start()
        wait_for(lambda: len([r for r in d.alma_calls("campus-a", method="GET")
                              if r["path"].endswith("/fees") and r["status"] is None]),
                 "Campus A's fees pages to be waiting on its Alma")
        started = time.monotonic()
        fees = at_b.get("/campus-b/api/fees")
        elapsed = time.monotonic() - started
        assert fees.status_code == 200 and fees.json()["payable_total"] == "8.00"
        assert elapsed < 1.5, f"Campus B's fees page took {elapsed:.2f} s"
        for thread in waiting:
            thread.join(30)
        assert len(answers) == 6
        assert all(status >= 500 or status == 429 for status, _ in answers), answers
        assert min(seconds for _, seconds in answers) > 1.9  # past A's 2 s read timeout
    finally:
        d.alma("campus-a").set_faults({})
