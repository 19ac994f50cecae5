"""CashNet sandbox: completion, store notifications, the notification record and every fault knob
(docs/sandbox.md#notification-record, docs/sandbox.md#cashnet-fault-knobs).

A tiny receiving Starlette app (run with ServerThread) stands in for the proxy and records
exactly what arrives: path, query, headers, raw body and peer address.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from datetime import date
from urllib.parse import parse_qsl

import httpx
import pytest
from support.cashnet import PAYMENT_ID, TOKEN, example, notifying
from support.waiting import wait_for

from sandbox.cashnet_sandbox import CheckoutConflict


@pytest.fixture
def sandbox(cashnet_server, receiver):
    """The sandbox with LIBFINESTEST notifying the receiver, on a pinned business day."""
    return notifying(cashnet_server, receiver)


def open_checkout(sandbox, **changes: str | None) -> str:
    fields = example(**({"payment_ref": PAYMENT_ID} | changes))
    response = httpx.post(f"{sandbox.url}/LIBFINESTEST", data=fields)
    assert "x-emulator-error" not in response.headers, response.text
    return response.headers["x-emulator-checkout"]


COMMON = (
    b"&batchno=1&effdate=3%2F14%2F2025&merchant=LIBFINES&station=WEB&operator=WEBUSER"
)
SUCCESS_BODY = (
    b"result=0&respmessage=SUCCESS&tx=100000" + COMMON
    + b"&pmtcode=CC&pmttype=CC&custcode=0012345678&lname=Rivera&itemcnt=2"
    b"&itemcode1=LIB-OVERDUE&amount1=12.50&qty1=1&itemcode2=LIB-LOST&amount2=1080.00&qty2=1"
    b"&ref1type1=PAYMENT_ID&ref1val1=" + PAYMENT_ID.encode()
    + b"&PAYMENT_REF=" + PAYMENT_ID.encode()
)
LINES_AND_REFS_ON_FAILURE = (
    b"&custcode=0012345678&lname=Rivera&itemcnt=2"
    b"&itemcode1=LIB-OVERDUE&amount1=12.50&itemcode2=LIB-LOST&amount2=1080.00"
    b"&ref1type1=PAYMENT_ID&ref1val1=" + PAYMENT_ID.encode()
    + b"&PAYMENT_REF=" + PAYMENT_ID.encode()
)


# ----- outcomes -------------------------------------------------------------------------------


def test_success_notification_exact_body_sent_before_complete_returns(sandbox, receiver):
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid)
    assert receiver.bodies() == [SUCCESS_BODY]  # delivered synchronously, no polling needed
    hit = receiver.hits[0]
    assert (hit["method"], hit["path"]) == ("POST", f"/cashnet/postback/{TOKEN}")
    assert hit["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert hit["client"] == "127.0.0.1"
    assert result["tx"] == "100000" and "failedtx" not in result
    assert (result["status"], result["result"], result["batchno"], result["effdate"]) == (
        "PAID", 0, "1", "3/14/2025")
    assert [record["status"] for record in result["notifications"]] == [200]
    assert sandbox.checkout(cid)["status"] == "PAID"
    assert sandbox.checkout(cid)["tx"] == "100000"


def test_decline_has_failedtx_and_ccerror_and_no_tx(sandbox, receiver):
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid, "decline", 209)
    assert receiver.bodies() == [
        b"result=209&respmessage=Credit+card+error&failedtx=100000" + COMMON
        + LINES_AND_REFS_ON_FAILURE + b"&ccerrorcode=209&ccerrormessage=Declined"
    ]
    assert (result["failedtx"], result["status"]) == ("100000", "DECLINED")
    assert "tx" not in result
    # The patron may try again: a new failedtx each time, then a tx from the same counter.
    assert sandbox.complete(cid, "decline", 7)["failedtx"] == "100001"
    assert dict(parse_qsl(receiver.bodies()[1].decode()))["ccerrorcode"] == "7"
    assert sandbox.complete(cid, "pay")["tx"] == "100002"
    checkout = sandbox.checkout(cid)
    assert (checkout["failedtx"], checkout["tx"]) == (["100000", "100001"], "100002")
    assert [a["result"] for a in checkout["attempts"]] == [209, 7, 0]


def test_cancel_sends_902_with_failedtx(sandbox, receiver):
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid, "cancel")
    assert receiver.bodies() == [
        b"result=902&respmessage=Customer+cancelled+before+payment+was+processed"
        b"&failedtx=100000" + COMMON + LINES_AND_REFS_ON_FAILURE
    ]
    assert (result["status"], result["result"]) == ("CANCELLED", 902)


def test_cancel_without_failedtx(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST", failedtx_on_cancel=False)
    sandbox.complete(open_checkout(sandbox), "cancel")
    fields = dict(parse_qsl(receiver.bodies()[0].decode()))
    assert fields["result"] == "902" and "failedtx" not in fields and "tx" not in fields


def test_cancel_not_notified_when_the_store_says_so(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST", notify_on_cancel=False)
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid, "cancel")
    assert receiver.bodies() == []
    assert [(r["sent"], r["skipped"]) for r in result["notifications"]] == [
        (False, "cancel_not_notified")]
    assert sandbox.notifications(cid)[0]["skipped"] == "cancel_not_notified"


def test_no_notification_url_means_no_notification_and_the_record_says_so(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST", notify_success_url="")
    cid = open_checkout(sandbox)
    sandbox.complete(cid)
    assert receiver.bodies() == []
    [record] = sandbox.notifications(cid)
    assert (record["sent"], record["skipped"], record["url"], record["body"]) == (
        False, "no_url", None, None)
    assert record["fields"][:3] == [["result", "0"], ["respmessage", "SUCCESS"], ["tx", "100000"]]


def test_separate_success_and_failure_urls(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST",
                            notify_failure_url=f"{receiver.url}/cashnet/postback/failure-{TOKEN}")
    sandbox.complete(open_checkout(sandbox), "decline")
    sandbox.complete(open_checkout(sandbox), "pay")
    assert [hit["path"] for hit in receiver.hits] == [
        f"/cashnet/postback/failure-{TOKEN}", f"/cashnet/postback/{TOKEN}"]


def test_paid_checkout_is_final(sandbox, receiver):
    cid = open_checkout(sandbox)
    sandbox.complete(cid)
    with pytest.raises(CheckoutConflict):
        sandbox.complete(cid, "cancel")
    response = httpx.post(f"{sandbox.url}/_emulator/checkouts/{cid}/complete",
                          json={"outcome": "pay"})
    assert response.status_code == 409
    assert len(receiver.bodies()) == 1


def test_batch_number_changes_with_the_business_day(sandbox):
    first = sandbox.complete(open_checkout(sandbox))
    second = sandbox.complete(open_checkout(sandbox))
    sandbox.today = lambda: date(2025, 3, 15)
    third = sandbox.complete(open_checkout(sandbox))
    assert [(r["tx"], r["batchno"], r["effdate"]) for r in (first, second, third)] == [
        ("100000", "1", "3/14/2025"), ("100001", "1", "3/14/2025"), ("100002", "2", "3/15/2025")]


def test_fields_follow_the_store_field_list(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST", fields=["tx", "result", "lines"])
    sandbox.complete(open_checkout(sandbox, **{"itemcnt": "1", "itemcode2": None, "amount2": None,
                                               "desc2": None, "qty2": None, "gl1": "1-2345"}))
    assert receiver.bodies() == [
        b"tx=100000&result=0&itemcode1=LIB-OVERDUE&amount1=12.50&qty1=1&gl1=1-2345"]


def test_item_refs_keep_their_slots_and_txn_refs_are_upper_cased(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST", fields=["refs", "txn_refs"],
                            txn_ref_types=["PAYMENT_REF", "ucla_ref_no"])
    sandbox.complete(open_checkout(sandbox, ref1type2="EMAIL_G", ref1val2="a@example.edu",
                                   ref2type1="NAME_G", ref2val1="Ana Rivera",
                                   ucla_ref_no="u-1"))
    assert receiver.bodies() == [
        b"ref1type1=PAYMENT_ID&ref1val1=" + PAYMENT_ID.encode()
        + b"&ref2type1=NAME_G&ref2val1=Ana+Rivera&ref1type2=EMAIL_G&ref1val2=a%40example.edu"
        + b"&PAYMENT_REF=" + PAYMENT_ID.encode() + b"&UCLA_REF_NO=u-1"]


# ----- the record (docs/sandbox.md#notification-record)
# ----------------------------------------------------------------------


def test_record_of_a_delivery(sandbox, receiver):
    receiver.reply = "x" * 2000
    cid = open_checkout(sandbox)
    sandbox.complete(cid)
    [record] = sandbox.notifications(cid=cid, store="libfinestest")
    assert record["url"] == f"{receiver.url}/cashnet/postback/<redacted>"
    assert TOKEN not in repr(sandbox.notifications()) and TOKEN not in repr(sandbox.checkouts())
    assert (record["cid"], record["store"], record["kind"]) == (cid, "LIBFINESTEST", "success")
    assert (record["attempt"], record["delivery"], record["method"]) == (1, 0, "POST")
    assert (record["sent"], record["skipped"], record["error"]) == (True, None, None)
    assert record["body"] == SUCCESS_BODY
    assert record["fields"] == [list(pair) for pair in parse_qsl(SUCCESS_BODY.decode())]
    assert record["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert record["headers"]["content-length"] == str(len(SUCCESS_BODY))
    assert record["source_address"] == "127.0.0.1"
    assert (record["status"], record["response_body"]) == (200, "x" * 1024)
    assert record["faults"] == {}
    assert record["sent_at"].endswith("+00:00")
    assert sandbox.notifications(store="OTHERSTORE") == []


def test_record_of_an_unreachable_url(sandbox):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sandbox.configure_store("LIBFINESTEST",
                            notify_success_url=f"http://127.0.0.1:{port}/cashnet/postback/{TOKEN}")
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid)
    [record] = result["notifications"]
    assert record["status"] is None and record["error"].startswith("ConnectError")
    assert sandbox.checkout(cid)["status"] == "PAID"  # the payment stands; only delivery failed


def test_no_retry_by_default_and_retries_when_configured(sandbox, receiver):
    receiver.statuses = [500]
    cid = open_checkout(sandbox)
    sandbox.complete(cid)
    assert [(r["attempt"], r["status"]) for r in sandbox.notifications(cid)] == [(1, 500)]

    sandbox.configure_store("LIBFINESTEST", retries=2, retry_delay_s=0)
    receiver.statuses = [503, 500, 200]
    cid = open_checkout(sandbox)
    sandbox.complete(cid)
    records = wait_for(lambda: (r := sandbox.notifications(cid)) and len(r) == 3 and r)
    assert [(r["attempt"], r["status"]) for r in records] == [(1, 503), (2, 500), (3, 200)]
    assert len({hit["body"] for hit in receiver.hits[1:]}) == 1


# ----- fault knobs (docs/sandbox.md#cashnet-fault-knobs)
# ---------------------------------------------------------------------


def test_duplicate(sandbox, receiver):
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid, faults={"duplicate": 2})
    assert receiver.bodies() == [SUCCESS_BODY] * 3
    assert [r["delivery"] for r in result["notifications"]] == [0, 1, 2]


def test_duplicate_with_delay_arrives_later_and_does_not_hold_the_first(sandbox, receiver):
    sandbox.set_faults("LIBFINESTEST", {"duplicate": 1, "duplicate_delay_s": 0.05})
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid)
    assert [r["delivery"] for r in result["notifications"]] == [0]
    hits = receiver.wait_for(2)
    assert [hit["body"] for hit in hits] == [SUCCESS_BODY, SUCCESS_BODY]
    wait_for(lambda: len(sandbox.notifications(cid)) == 2)


def test_hold_until_release(sandbox, receiver):
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid, faults={"hold": True})
    assert (result["notifications"], result["pending"]) == ([], 1)
    assert receiver.bodies() == [] and sandbox.notifications(cid) == []
    assert sandbox.checkout(cid)["pending_notifications"] == 1
    released = sandbox.release(cid)
    assert [r["status"] for r in released] == [200]
    assert receiver.bodies() == [SUCCESS_BODY]
    assert sandbox.checkout(cid)["pending_notifications"] == 0
    assert sandbox.release(cid) == []


def test_hold_release_over_http(sandbox, receiver):
    cid = open_checkout(sandbox)
    httpx.post(f"{sandbox.url}/_emulator/checkouts/{cid}/complete",
               json={"outcome": "pay", "faults": {"hold": True, "duplicate": 1}})
    assert receiver.bodies() == []
    response = httpx.post(f"{sandbox.url}/_emulator/checkouts/{cid}/release")
    assert [r["delivery"] for r in response.json()["notifications"]] == [0, 1]
    assert receiver.bodies() == [SUCCESS_BODY, SUCCESS_BODY]


def test_delay_keeps_the_notification_until_release(sandbox, receiver):
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid, faults={"delay_s": 300})
    assert result["pending"] == 1 and receiver.bodies() == []
    sandbox.release(cid)
    assert receiver.bodies() == [SUCCESS_BODY]


def test_delay_delivers_by_itself(sandbox, receiver):
    cid = open_checkout(sandbox)
    sandbox.complete(cid, faults={"delay_s": 0.05})
    assert [hit["body"] for hit in receiver.wait_for(1)] == [SUCCESS_BODY]
    wait_for(lambda: sandbox.checkout(cid)["pending_notifications"] == 0)
    assert [r["status"] for r in wait_for(lambda: sandbox.notifications(cid))] == [200]


def test_drop(sandbox, receiver):
    cid = open_checkout(sandbox)
    result = sandbox.complete(cid, faults={"drop": True})
    assert receiver.bodies() == []
    assert [(r["sent"], r["skipped"]) for r in result["notifications"]] == [(False, "drop")]
    assert sandbox.checkout(cid)["status"] == "PAID"


def test_ref_slot(sandbox, receiver):
    sandbox.complete(open_checkout(sandbox), faults={"ref_slot": "ref1val2"})
    body = receiver.bodies()[0]
    assert b"&qty2=1&ref1type2=PAYMENT_ID&ref1val2=" + PAYMENT_ID.encode() in body
    assert b"ref1type1" not in body and b"ref1val1" not in body


def test_missing_refs(sandbox, receiver):
    sandbox.complete(open_checkout(sandbox), faults={"missing_refs": True})
    body = receiver.bodies()[0]
    assert body.endswith(b"&itemcode2=LIB-LOST&amount2=1080.00&qty2=1")
    assert PAYMENT_ID.encode() not in body


@pytest.mark.parametrize(("tamper", "amounts"), [
    ("+1.00", ("13.50", "1080.00")),
    ("-0.50", ("12.00", "1080.00")),
    ("5.00", ("5.00", "1080.00")),
    ({"line": 2, "amount": "0.01"}, ("12.50", "0.01")),
])
def test_tamper_amount(sandbox, receiver, tamper, amounts):
    sandbox.complete(open_checkout(sandbox), faults={"tamper_amount": tamper})
    fields = dict(parse_qsl(receiver.bodies()[0].decode()))
    assert (fields["amount1"], fields["amount2"]) == amounts


def test_leading_ampersand(sandbox, receiver):
    sandbox.complete(open_checkout(sandbox), faults={"leading_ampersand": True})
    assert receiver.bodies() == [b"&" + SUCCESS_BODY]


def test_uppercase_names(sandbox, receiver):
    sandbox.complete(open_checkout(sandbox), faults={"uppercase_names": True})
    body = receiver.bodies()[0]
    assert body.startswith(b"RESULT=0&RESPMESSAGE=SUCCESS&TX=100000&BATCHNO=1")
    assert b"&REF1TYPE1=PAYMENT_ID&REF1VAL1=" + PAYMENT_ID.encode() in body


def test_omit_itemcnt(sandbox, receiver):
    sandbox.complete(open_checkout(sandbox), faults={"omit_itemcnt": True})
    assert receiver.bodies() == [SUCCESS_BODY.replace(b"&itemcnt=2", b"")]


def test_charset_cp1252(sandbox, receiver):
    cid = open_checkout(sandbox, lname="Peña")
    sandbox.complete(cid, faults={"charset": "cp1252"})
    hit = receiver.hits[0]
    assert hit["headers"]["content-type"] == (
        "application/x-www-form-urlencoded; charset=windows-1252")
    assert b"&lname=Pe%F1a&" in hit["body"]
    assert ["lname", "Peña"] in sandbox.notifications(cid)[0]["fields"]
    receiver.clear()
    sandbox.complete(open_checkout(sandbox, lname="Peña"))  # the default is UTF-8
    assert b"&lname=Pe%C3%B1a&" in receiver.bodies()[0]


def test_source_address(sandbox, receiver):
    cid = open_checkout(sandbox)
    sandbox.complete(cid, faults={"source_address": "127.0.0.2"})
    assert receiver.hits[0]["client"] == "127.0.0.2"
    assert sandbox.notifications(cid)[0]["source_address"] == "127.0.0.2"


@pytest.mark.parametrize(("mode", "path", "shown"), [
    ("omit", "/cashnet/postback/", "/cashnet/postback/"),
    ("wrong", "/cashnet/postback/x" + TOKEN[1:], "/cashnet/postback/<redacted>"),
])
def test_url_token(sandbox, receiver, mode, path, shown):
    cid = open_checkout(sandbox)
    sandbox.complete(cid, faults={"url_token": mode})
    assert receiver.hits[0]["path"] == path
    assert sandbox.notifications(cid)[0]["url"] == receiver.url + shown


@pytest.mark.parametrize(("apply_to", "notify_amount", "signout_amount"), [
    ("both", "13.50", "13.50"),
    ("notify", "13.50", "12.50"),
    ("signout", "12.50", "13.50"),
])
def test_apply_to(sandbox, receiver, apply_to, notify_amount, signout_amount):
    result = sandbox.complete(open_checkout(sandbox), faults={
        "tamper_amount": "+1.00", "missing_refs": True, "apply_to": apply_to})
    notified = dict(parse_qsl(receiver.bodies()[0].decode()))
    signed_out = dict(result["signout"]["fields"])
    assert (notified["amount1"], signed_out["amount1"]) == (notify_amount, signout_amount)
    assert ("ref1val1" in notified) == (apply_to == "signout")
    assert ("ref1val1" in signed_out) == (apply_to == "notify")


def test_store_default_faults_merge_with_per_checkout_faults(sandbox, receiver):
    sandbox.set_faults("LIBFINESTEST", {"leading_ampersand": True, "duplicate": 1})
    cid = open_checkout(sandbox)
    sandbox.complete(cid, faults={"duplicate": 0, "omit_itemcnt": True})
    assert receiver.bodies() == [b"&" + SUCCESS_BODY.replace(b"&itemcnt=2", b"")]
    assert sandbox.notifications(cid)[0]["faults"] == {
        "leading_ampersand": True, "duplicate": 0, "omit_itemcnt": True}
    assert sandbox.checkout(cid)["faults"] == sandbox.notifications(cid)[0]["faults"]


def test_bad_faults_are_refused(sandbox):
    cid = open_checkout(sandbox)
    for faults in ({"duplicate": -1}, {"url_token": "maybe"}, {"ref_slot": "slot2"},
                   {"tamper_amount": "1,00"}, {"source_address": "10.0.0.1"}, {"nope": 1}):
        with pytest.raises(ValueError):
            sandbox.complete(cid, faults=faults)
    assert sandbox.checkout(cid)["status"] == "OPEN"


# ----- the HTTP control API and the facade's threading -----------------------------------------


def test_emulator_api(sandbox, receiver):
    cid = open_checkout(sandbox)
    listed = httpx.get(f"{sandbox.url}/_emulator/checkouts", params={"ref": PAYMENT_ID}).json()
    assert [c["cid"] for c in listed] == [cid]
    assert httpx.get(f"{sandbox.url}/_emulator/checkouts/{cid}").json()["total"] == "1092.50"
    assert httpx.get(f"{sandbox.url}/_emulator/checkouts/nope").status_code == 404
    response = httpx.post(f"{sandbox.url}/_emulator/checkouts/{cid}/complete",
                          json={"outcome": "decline", "code": 232})
    assert response.status_code == 200
    body = response.json()
    assert (body["failedtx"], body["result"], body["respmessage"]) == (
        "100000", 232, "Address verification failure")
    assert body["signout"]["url"] == f"http://127.0.0.1:9/cashnet/return?p={PAYMENT_ID}"
    assert body["notifications"][0]["body"] == receiver.bodies()[0].decode("latin-1")
    records = httpx.get(f"{sandbox.url}/_emulator/notifications",
                        params={"cid": cid, "store": "libfinestest"}).json()
    assert [r["status"] for r in records] == [200]
    bad = httpx.post(f"{sandbox.url}/_emulator/checkouts/{cid}/complete", json={"outcome": "x"})
    assert bad.status_code == 400
    assert httpx.post(f"{sandbox.url}/_emulator/reset").json() == {"reset": True}
    assert httpx.get(f"{sandbox.url}/_emulator/checkouts").json() == []
    assert sandbox.store("LIBFINESTEST")["notify_success_url"] == ""  # stores restored too


def test_reset_keep_stores(sandbox, receiver):
    sandbox.complete(open_checkout(sandbox))
    sandbox.reset(keep_stores=True)
    assert sandbox.notifications() == [] and sandbox.checkouts() == []
    assert sandbox.complete(open_checkout(sandbox))["tx"] == "100000"  # counters restart
    assert len(receiver.bodies()) == 2


def test_facade_refuses_to_block_a_running_event_loop(sandbox):
    cid = open_checkout(sandbox)

    async def inside_a_loop():
        with pytest.raises(RuntimeError, match="complete_async"):
            sandbox.complete(cid)
        return await sandbox.complete_async(cid)

    assert asyncio.run(inside_a_loop())["tx"] == "100000"


def test_facade_from_many_threads(sandbox, receiver):
    cids = [open_checkout(sandbox) for _ in range(8)]
    results: list[dict] = []
    lock = threading.Lock()

    def pay(cid: str) -> None:
        result = sandbox.complete(cid)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=pay, args=(cid,)) for cid in cids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r["tx"] for r in results) == [str(100000 + n) for n in range(8)]
    assert len(receiver.bodies()) == 8
