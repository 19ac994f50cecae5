"""Every check on CashNet's store notification (docs/cashnet.md#notification-checks), over real
HTTP: the sandbox CashNet sends, the proxy decides, the ledger and the sandbox Alma show the
outcome."""

import json
import threading
from decimal import Decimal
from urllib.parse import urlencode

import httpx
from support.alma import payments_carrying

D = Decimal


def postback_url(d, token=None):
    return f"{d.url}/cashnet/postback/{token or d.settings.cashnet_postback_token}"


def delivered(completion):
    return [(n["status"], n.get("source_address")) for n in completion["notifications"]]


def test_wrong_url_token_is_404_and_records_nothing(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    completion = d.cashnet.complete(cid, faults={"url_token": "wrong"})
    assert [n["status"] for n in completion["notifications"]] == [404]
    completion_missing = httpx.post(f"{d.url}/cashnet/postback/", content=b"result=0")
    assert completion_missing.status_code in (404, 405)
    assert d.ledger.notifications() == []
    assert d.ledger.payment(payment_id).state == "pending"
    assert d.alma_calls("POST") == []


def test_disallowed_source_address_is_403(deploy):
    d = deploy(cashnet_allowed_ips="127.0.0.1/32")
    payment_id, cid = d.checkout()
    completion = d.cashnet.complete(cid, faults={"source_address": "127.0.0.2"})
    assert [n["status"] for n in completion["notifications"]] == [403]
    assert d.ledger.notifications() == [] and d.ledger.payment(payment_id).state == "pending"


def test_allowed_source_address_is_accepted(deploy):
    d = deploy(cashnet_allowed_ips="127.0.0.2/32")
    payment_id, cid = d.checkout()
    completion = d.cashnet.complete(cid, faults={"source_address": "127.0.0.2"})
    assert [n["status"] for n in completion["notifications"]] == [200]
    d.wait_for_state(payment_id, "posted")


def test_unknown_reference_is_recorded_unmatched_and_changes_nothing(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    completion = d.cashnet.complete(cid, faults={"missing_refs": True})
    assert [n["status"] for n in completion["notifications"]] == [200]
    assert [(n["kind"], n["payment_id"]) for n in d.ledger.notifications()] == [("unmatched", None)]
    assert d.ledger.payment(payment_id).state == "pending"
    assert d.alma_calls("POST") == []


def test_tampered_amount_goes_to_attention_without_touching_alma(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.cashnet.complete(cid, faults={"tamper_amount": {"line": 2, "amount": "0.01"}})
    payment = d.wait_for_state(payment_id, "attention")
    assert payment.reason == "amount mismatch: line 2: amount 0.01, issued 2.00"
    assert [a.state for a in payment.allocations] == ["planned", "planned"]
    assert d.alma_calls("POST") == []


def test_tampered_total_is_caught_too(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.cashnet.complete(cid, faults={"tamper_amount": "+1.00"})
    assert d.wait_for_state(payment_id, "attention").reason.startswith("amount mismatch")


def notification_fields(d, payment_id, tx="424242", **changes):
    payment = d.ledger.payment(payment_id)
    fields = {"result": "0", "respmessage": "SUCCESS", "tx": tx, "batchno": "1",
              "itemcnt": str(len(payment.lines)), "custcode": payment.custcode,
              "ref1type1": "PAYMENT_ID", "ref1val1": payment_id}
    for line in payment.lines:
        fields[f"itemcode{line.number}"] = line.item_code
        fields[f"amount{line.number}"] = f"{line.amount:.2f}"
    fields.update(changes)
    return fields


def test_wrong_item_code_goes_to_attention(deploy):
    d = deploy()
    payment_id, _ = d.checkout(amount="62.00")
    response = httpx.post(postback_url(d), data=notification_fields(d, payment_id, itemcode1="LIB-FINE"))
    assert (response.status_code, response.text) == (200, "OK")
    payment = d.ledger.payment(payment_id)
    assert payment.state == "attention"
    assert payment.reason == "item code mismatch: line 1: item code 'LIB-FINE', issued 'LIB-LOST'"
    assert d.alma_calls("POST") == []


def test_failure_result_declines_and_never_goes_to_alma(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    d.cashnet.complete(cid, outcome="decline", code=232)
    payment = d.wait_for_state(payment_id, "declined")
    assert payment.reason == "CashNet result 232"
    notice = d.ledger.notifications(payment_id)[0]
    assert notice["kind"] == "failure" and notice["fields"]["ccerrorcode"] == "232"
    assert d.alma_calls("POST") == []


def test_reference_moved_to_ref1val2(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    tx = d.cashnet.complete(cid, faults={"ref_slot": "ref1val2"})["tx"]
    assert d.wait_for_state(payment_id, "posted").cashnet_tx == tx
    assert len(d.alma_calls("POST", "pay")) == 3


def test_leading_ampersand_uppercase_names_missing_itemcnt_and_cp1252(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    tx = d.cashnet.complete(cid, faults={"leading_ampersand": True, "uppercase_names": True,
                                         "omit_itemcnt": True, "charset": "cp1252"})["tx"]
    assert d.wait_for_state(payment_id, "posted").cashnet_tx == tx
    assert len(d.alma_calls("POST", "pay")) == 3


def test_duplicate_notifications_post_once(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    completion = d.cashnet.complete(cid, faults={"duplicate": 4})
    assert [n["status"] for n in completion["notifications"]] == [200] * 5
    payment = d.wait_for_state(payment_id, "posted")
    assert len(d.alma_calls("POST", "pay")) == 3
    assert [n["outcome"] for n in d.ledger.notifications(payment_id)] == ["paid"] + ["same"] * 4
    carried = payments_carrying(d.alma, payment.cashnet_tx)
    assert [len(amounts) for amounts in carried.values()] == [1, 1, 1]  # one on each fee


def test_the_same_notification_five_times_at_once_posts_once(deploy):
    d = deploy()
    payment_id, _ = d.checkout()
    body = urlencode(notification_fields(d, payment_id))
    barrier = threading.Barrier(5)
    statuses = []

    def send():
        barrier.wait(timeout=10)
        statuses.append(httpx.post(postback_url(d), content=body, timeout=15,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code)

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert statuses == [200] * 5
    payment = d.wait_for_state(payment_id, "posted")
    assert payment.cashnet_tx == "424242"
    assert sorted(n["outcome"] for n in d.ledger.notifications(payment_id)) == ["paid"] + ["same"] * 4
    assert len(d.alma_calls("POST", "pay")) == 3
    assert [len(amounts) for amounts in payments_carrying(d.alma, "424242").values()] == [1, 1, 1]


def test_late_notification_after_the_browser_returned(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    completion = d.cashnet.complete(cid, faults={"hold": True})
    assert (completion["notifications"], completion["pending"]) == ([], 1)  # held, not sent
    receipt = d.receipt(d.follow_signout(completion), d.clients[-1])  # the patron's browser
    assert receipt["state"] == "pending"  # the browser's word changes nothing
    assert d.ledger.payment(payment_id).state == "pending"
    assert [e["kind"] for e in d.ledger.events(payment_id)][-1] == "return_claims_success"
    d.cashnet.release(cid)
    d.wait_for_state(payment_id, "posted")


def test_browser_return_never_settles_a_payment(deploy):
    d = deploy()
    payment_id, _ = d.checkout()
    fields = notification_fields(d, payment_id)
    response = httpx.post(f"{d.url}/cashnet/return", data=fields)
    assert response.status_code == 303
    assert d.ledger.payment(payment_id).state == "pending"
    assert d.ledger.notifications() == []
    by_query = httpx.get(f"{d.url}/cashnet/return", params={"p": payment_id})
    assert by_query.headers["location"] == f"/receipt.html?p={payment_id}"  # no receipt link
    as_patron = d.clients[-1].get("/cashnet/return", params={"p": payment_id})
    assert as_patron.status_code == 303 and as_patron.headers["location"].startswith("/receipt.html?r=")
    unknown = httpx.get(f"{d.url}/cashnet/return", params={"p": "nope"})
    assert unknown.headers["location"] == "/receipt.html?error=unknown_payment"


def test_rotated_token_still_accepted(deploy):
    d = deploy(cashnet_postback_token_previous="previous-token-" + "p" * 24)
    payment_id, _ = d.checkout()
    response = httpx.post(postback_url(d, "previous-token-" + "p" * 24),
                          data=notification_fields(d, payment_id))
    assert response.status_code == 200
    d.wait_for_state(payment_id, "posted")


def test_notification_token_never_reaches_the_log(deploy, caplog):
    d = deploy()
    payment_id, cid = d.checkout()
    with caplog.at_level("DEBUG"):
        d.cashnet.complete(cid)
        d.wait_for_state(payment_id, "posted")
    ours = [json.dumps(vars(r), default=str) for r in caplog.records
            if r.name.startswith(("patronpay", "uvicorn"))]
    assert ours and not any(d.settings.cashnet_postback_token in line for line in ours)
    assert any('"path": "/cashnet/postback/***"' in line for line in ours)
