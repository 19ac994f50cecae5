"""The proxy's kiosk side (issue 5): signed kiosk requests, opening a patron session for a card,
the kiosk's session usable only with that kiosk's signature, forged / replayed / stale /
other-kiosk requests refused and changing nothing, kiosk payments in the ledger with the kiosk's
channel, and CashNet's sign-out sending a kiosk payment back to the kiosk."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import logging
import time

import httpx
import pytest

from kiosk.signing import KioskAuth, sign, signed_headers
from proxy import kiosk_auth
from proxy.db import Database

SECRET = "lib1-secret-0123456789abcdef0123456789"
OTHER_SECRET = "lib2-secret-0123456789abcdef0123456789"
MARIA_CARD = "23191000105866"
NONCE = "AAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
def d(deploy):
    return deploy(kiosk_keys=f"LIB1={SECRET},lib2={OTHER_SECRET}")


def kiosk_client(d, kiosk_id="lib1", secret=SECRET) -> httpx.Client:
    client = httpx.Client(base_url=d.url, auth=KioskAuth(kiosk_id, secret), timeout=15.0,
                          headers={"Origin": d.url})
    d.clients.append(client)
    return client


def open_session(client, value=MARIA_CARD, kind="library_barcode") -> httpx.Response:
    return client.post("/api/kiosk/sessions", json={"credential": {"kind": kind, "value": value}})


def as_session(opened: dict) -> dict:
    return {"Cookie": f"patronpay_session={opened['session']}", "X-CSRF-Token": opened["csrf_token"]}


def session_rows(d) -> list[tuple]:
    return [tuple(r) for r in d.services.db.read(
        "SELECT patron_id, method, channel, ended_at IS NULL FROM sessions ORDER BY created_at")]


def nonce_count(d) -> int:
    return d.services.db.read_one("SELECT COUNT(*) FROM kiosk_nonces")[0]


def raw_post(d, path, body: bytes, headers: dict) -> httpx.Response:
    return httpx.post(d.url + path, content=body, timeout=15.0,
                      headers={"Content-Type": "application/json"} | headers)


BODY = json.dumps({"credential": {"kind": "library_barcode", "value": MARIA_CARD}}).encode()


# -- the signature format ----------------------------------------------------------------------


def test_both_implementations_sign_the_documented_string():
    body = b'{"a":1}'
    text = "\n".join(["PATRONPAY-KIOSK-V1", "POST", "/api/fees?x=1", "1700000000", NONCE,
                      hashlib.sha256(body).hexdigest()])
    expected = hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, "post", "/api/fees?x=1", body, timestamp=1700000000, nonce=NONCE) == expected
    assert kiosk_auth.expected_signature(SECRET, "POST", "/api/fees?x=1", "1700000000", NONCE,
                                         body) == expected
    headers = signed_headers("lib1", SECRET, "POST", "/api/fees?x=1", body, now=1700000000.9,
                             nonce=NONCE)
    assert headers == {"X-Kiosk-Id": "lib1", "X-Kiosk-Timestamp": "1700000000",
                       "X-Kiosk-Nonce": NONCE, "X-Kiosk-Signature": expected}


def test_default_nonces_are_fresh_and_long_enough():
    nonces = {signed_headers("k", SECRET, "GET", "/", b"")["X-Kiosk-Nonce"] for _ in range(50)}
    assert len(nonces) == 50
    assert all(len(n) >= 22 for n in nonces)  # 16+ random bytes in URL-safe base64


def verify(db, headers, now, body=b"", path="/api/fees", method="GET"):
    return kiosk_auth.verify_request(keys={"lib1": SECRET}, headers=headers, method=method,
                                     path_with_query=path, body=body, db=db, now=now, max_skew=60)


def test_verify_request_reasons_in_order(tmp_path):
    db = Database(tmp_path / "ledger.sqlite3")
    now = 1_700_000_000.0
    good = {k.lower(): v for k, v in signed_headers("LIB1", SECRET, "GET", "/api/fees", b"",
                                                      now=now, nonce=NONCE).items()}
    cases = {
        "malformed_kiosk_id": good | {"x-kiosk-id": "lib 1"},
        "malformed_timestamp": good | {"x-kiosk-timestamp": "17e8"},
        "malformed_nonce": good | {"x-kiosk-nonce": "short"},
        "malformed_signature": good | {"x-kiosk-signature": "zz"},
        "unknown_kiosk": good | {"x-kiosk-id": "lib9"},
        "stale": good,  # checked with a later clock below
        "bad_signature": good | {"x-kiosk-signature": "0" * 64},
    }
    for reason, headers in cases.items():
        with pytest.raises(kiosk_auth.KioskAuthError) as refused:
            verify(db, headers, now + 61 if reason == "stale" else now)
        assert refused.value.reason == reason
    assert db.read_one("SELECT COUNT(*) FROM kiosk_nonces")[0] == 0  # refusals write nothing
    assert verify(db, good, now) == "lib1"  # the id is case-insensitive, as in the settings
    with pytest.raises(kiosk_auth.KioskAuthError) as replayed:
        verify(db, good, now + 1)
    assert (replayed.value.reason, replayed.value.code) == ("replay", "kiosk_replay")


def test_nonces_are_purged_after_twice_the_skew(tmp_path):
    db = Database(tmp_path / "ledger.sqlite3")
    kiosk_auth.use_nonce(db, "lib1", "n" * 22, now=1000.0, max_skew=60)
    kiosk_auth.use_nonce(db, "lib2", "n" * 22, now=1000.0, max_skew=60)  # per kiosk
    kiosk_auth.use_nonce(db, "lib1", "m" * 22, now=1119.0, max_skew=60)
    assert db.read_one("SELECT COUNT(*) FROM kiosk_nonces")[0] == 3
    kiosk_auth.use_nonce(db, "lib1", "o" * 22, now=1121.0, max_skew=60)
    assert [tuple(r) for r in db.read("SELECT kiosk_id, nonce FROM kiosk_nonces ORDER BY at, nonce")] == [
        ("lib1", "m" * 22), ("lib1", "o" * 22)]


# -- opening a session for a card --------------------------------------------------------------


def test_card_opens_a_kiosk_session_and_the_fees_follow(d):
    client = kiosk_client(d)
    response = open_session(client)
    assert response.status_code == 201, response.text
    opened = response.json()
    assert sorted(opened) == ["csrf_token", "expires_at", "patron", "session"]
    assert opened["patron"] == {"first_name": "Maria"}
    # The session's idle limit from now: 15 minutes by default.
    expires = calendar.timegm(time.strptime(opened["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(expires - (time.time() + 15 * 60)) < 60
    assert session_rows(d) == [("mkowalski", "kiosk", "kiosk:lib1", 1)]
    lookups = [c for c in d.alma_calls("GET") if c["path"].endswith("/users/" + MARIA_CARD)]
    assert [c["query"]["user_id_type"] for c in lookups] == [["all_unique"]]

    fees = client.get("/api/fees", headers=as_session(opened))
    assert fees.status_code == 200, fees.text
    assert (fees.json()["total"], fees.json()["payable_total"]) == ("77.25", "77.25")
    session = client.get("/api/session", headers=as_session(opened)).json()
    assert (session["patron"]["id"], session["method"]) == ("mkowalski", "kiosk")


def test_unknown_and_inactive_cards_are_not_recognised(d):
    client = kiosk_client(d)
    for card in ("23191000999995", "23191000200014"):  # unknown; reported lost (INACTIVE)
        response = open_session(client, card)
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "card_not_recognised",
                                             "message": "Card not recognised, please see staff."}}
    assert session_rows(d) == []


def test_lookup_uses_the_configured_identifier_type(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET}", kiosk_user_id_type="UNIV_ID")
    client = kiosk_client(d)
    assert open_session(client, MARIA_CARD).status_code == 404  # a barcode is not a UNIV_ID
    opened = open_session(client, "900123456", kind="campus_id")
    assert opened.status_code == 201 and opened.json()["patron"] == {"first_name": "Maria"}
    assert [c["query"]["user_id_type"] for c in d.alma_calls("GET") if "/users/" in c["path"]
            and "/fees" not in c["path"]] == [["UNIV_ID"], ["UNIV_ID"]]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"credential": {"kind": "library_barcode", "value": MARIA_CARD}, "x": 1}, 400, "unknown_field"),
    ({"credential": MARIA_CARD}, 422, "invalid_credential"),
    ({"credential": {"kind": "library_barcode"}}, 422, "invalid_credential"),
    ({"credential": {"kind": "", "value": MARIA_CARD}}, 422, "invalid_credential"),
    ({"credential": {"kind": "library_barcode", "value": "2319\n1000105866"}}, 422, "invalid_credential"),
    ({"credential": {"kind": "library_barcode", "value": "x" * 256}}, 422, "invalid_credential"),
    ({"credential": {"kind": "library_barcode", "value": MARIA_CARD, "pan": "1"}}, 422, "invalid_credential"),
])
def test_malformed_credentials_are_refused(d, body, status, code):
    response = kiosk_client(d).post("/api/kiosk/sessions", json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert session_rows(d) == []


def test_a_new_card_ends_the_kiosks_earlier_session(d):
    client = kiosk_client(d)
    first = open_session(client).json()
    second = open_session(client, "23191000200063").json()
    assert session_rows(d) == [("mkowalski", "kiosk", "kiosk:lib1", 0), ("tlee", "kiosk", "kiosk:lib1", 1)]
    assert client.get("/api/fees", headers=as_session(first)).status_code == 401
    assert client.get("/api/fees", headers=as_session(second)).status_code == 200


def test_the_kiosk_ends_its_session(d):
    client = kiosk_client(d)
    opened = open_session(client).json()
    ended = client.delete("/api/kiosk/sessions/current", headers=as_session(opened))
    assert (ended.status_code, ended.json()) == (200, {"ended": True})
    assert session_rows(d) == [("mkowalski", "kiosk", "kiosk:lib1", 0)]
    assert client.get("/api/fees", headers=as_session(opened)).json()["error"]["code"] == "not_signed_in"
    again = client.delete("/api/kiosk/sessions/current", headers=as_session(opened))
    assert (again.status_code, again.json()) == (200, {"ended": False})


def test_another_kiosk_cannot_end_the_session(d):
    opened = open_session(kiosk_client(d)).json()
    other = kiosk_client(d, "lib2", OTHER_SECRET)
    assert other.delete("/api/kiosk/sessions/current", headers=as_session(opened)).json() == {"ended": False}
    assert session_rows(d) == [("mkowalski", "kiosk", "kiosk:lib1", 1)]


# -- refusals ----------------------------------------------------------------------------------


def refused(response, code="kiosk_unauthorized"):
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    return response


def test_forged_requests_are_refused_and_change_nothing(d, caplog):
    caplog.set_level(logging.INFO)
    now = time.time()
    wrong_secret = signed_headers("lib1", OTHER_SECRET, "POST", "/api/kiosk/sessions", BODY, now=now)
    refused(raw_post(d, "/api/kiosk/sessions", BODY, wrong_secret))
    unknown = signed_headers("lib9", SECRET, "POST", "/api/kiosk/sessions", BODY, now=now)
    refused(raw_post(d, "/api/kiosk/sessions", BODY, unknown))
    other_body = json.dumps({"credential": {"kind": "library_barcode", "value": "23191000200063"}}).encode()
    tampered = signed_headers("lib1", SECRET, "POST", "/api/kiosk/sessions", BODY, now=now)
    refused(raw_post(d, "/api/kiosk/sessions", other_body, tampered))
    other_path = signed_headers("lib1", SECRET, "POST", "/api/kiosk/sessions?x=1", BODY, now=now)
    refused(raw_post(d, "/api/kiosk/sessions", BODY, other_path))
    refused(raw_post(d, "/api/kiosk/sessions", BODY, {}))  # no signature at all
    assert session_rows(d) == [] and nonce_count(d) == 0
    assert not [c for c in d.alma_calls() if "/users/" in c["path"]]

    reasons = [r.reason for r in caplog.records if getattr(r, "event", "") == "kiosk_refused"]
    assert reasons == ["bad_signature", "unknown_kiosk", "bad_signature", "bad_signature",
                       "malformed_kiosk_id"]
    logged = " ".join(r.getMessage() + json.dumps(vars(r), default=str) for r in caplog.records)
    for secret in (SECRET, OTHER_SECRET, wrong_secret["X-Kiosk-Signature"], tampered["X-Kiosk-Signature"]):
        assert secret not in logged


def test_replayed_request_is_refused(d):
    headers = signed_headers("lib1", SECRET, "POST", "/api/kiosk/sessions", BODY)
    assert raw_post(d, "/api/kiosk/sessions", BODY, headers).status_code == 201
    refused(raw_post(d, "/api/kiosk/sessions", BODY, headers), "kiosk_replay")
    assert session_rows(d) == [("mkowalski", "kiosk", "kiosk:lib1", 1)]
    # The same nonce is another kiosk's to use.
    other = signed_headers("lib2", OTHER_SECRET, "POST", "/api/kiosk/sessions", BODY,
                           nonce=headers["X-Kiosk-Nonce"])
    assert raw_post(d, "/api/kiosk/sessions", BODY, other).status_code == 201


# Over HTTP the margins are wide (timestamps are whole seconds and the server's clock runs on
# while the request travels); the exact boundary is pinned with a fixed clock below.
@pytest.mark.parametrize("offset", [-90, 90, -3600])
def test_stale_requests_are_refused(d, offset):
    headers = signed_headers("lib1", SECRET, "POST", "/api/kiosk/sessions", BODY, now=time.time() + offset)
    refused(raw_post(d, "/api/kiosk/sessions", BODY, headers), "kiosk_clock_skew")
    assert session_rows(d) == [] and nonce_count(d) == 0


def test_a_request_within_the_skew_passes(d):
    headers = signed_headers("lib1", SECRET, "POST", "/api/kiosk/sessions", BODY, now=time.time() - 30)
    assert raw_post(d, "/api/kiosk/sessions", BODY, headers).status_code == 201


@pytest.mark.parametrize("offset, accepted", [(-61, False), (-60, True), (60, True), (61, False)])
def test_the_skew_boundary_exactly(tmp_path, offset, accepted):
    db = Database(tmp_path / "ledger.sqlite3")
    now = 1_700_000_000.0
    headers = {k.lower(): v for k, v in signed_headers("lib1", SECRET, "GET", "/api/fees", b"",
                                                       now=now + offset, nonce=NONCE).items()}
    if accepted:
        assert verify(db, headers, now) == "lib1"
    else:
        with pytest.raises(kiosk_auth.KioskAuthError) as refused:
            verify(db, headers, now)
        assert refused.value.reason == "stale"


def test_a_kiosk_session_needs_that_kiosks_signature(d):
    opened = open_session(kiosk_client(d)).json()
    cookie = as_session(opened) | {"Origin": d.url}
    other = kiosk_client(d, "lib2", OTHER_SECRET)
    plain = httpx.Client(base_url=d.url, timeout=15.0)
    d.clients.append(plain)
    for client in (other, plain):
        for method, path, body in (("GET", "/api/fees", None), ("GET", "/api/session", None),
                                   ("POST", "/api/payments", {})):
            response = client.request(method, path, headers=cookie, json=body)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_signed_in"
    assert d.services.db.read_one("SELECT COUNT(*) FROM payments")[0] == 0
    # A forged signature on a patron call is refused before any route.
    forged = signed_headers("lib1", OTHER_SECRET, "GET", "/api/fees", b"")
    response = plain.get("/api/fees", headers=cookie | forged)
    refused(response)


def test_web_sessions_are_unaffected_by_kiosk_signatures(d):
    patron = d.sign_in_sso("jsmith")
    assert patron.get("/api/fees").status_code == 200
    # A web session is not a kiosk's: a kiosk cannot end it.
    cookie = {"Cookie": "patronpay_session=" + patron.cookies["patronpay_session"]}
    assert kiosk_client(d).delete("/api/kiosk/sessions/current", headers=cookie).json() == {"ended": False}
    assert patron.get("/api/fees").status_code == 200


# -- payments ----------------------------------------------------------------------------------


def test_kiosk_payment_carries_the_kiosks_channel_and_returns_to_the_kiosk(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET}", kiosk_return_url="http://127.0.0.1:8080/kiosk/return")
    client = kiosk_client(d)
    opened = open_session(client).json()
    created = client.post("/api/payments", headers=as_session(opened), json={"amount": "10.00"})
    assert created.status_code == 201, created.text
    payment = created.json()["payment"]
    assert d.ledger.payment(payment["id"]).channel == "kiosk:lib1"

    completion = d.cashnet.complete(d.hand_off(created.json()["checkout"]), outcome="pay")
    posted = d.wait_for_state(payment["id"], "posted")
    assert (posted.channel, str(posted.amount), posted.cashnet_tx) == ("kiosk:lib1", "10.00", completion["tx"])

    back = d.follow_signout(completion)
    assert back.status_code == 303
    assert back.headers["location"] == f"http://127.0.0.1:8080/kiosk/return?p={payment['id']}"

    state = client.get(f"/api/payments/{payment['id']}", headers=as_session(opened)).json()
    assert (state["payment"]["state"], state["payment"]["channel"], state["patron"]) == (
        "posted", "kiosk", {"first_name": "Maria"})


def test_web_payments_still_return_to_the_receipt(d):
    patron = d.sign_in_sso("mkowalski")
    created, completion = d.pay(patron, amount="5.00")
    location = d.follow_signout(completion).headers["location"]  # a cross-site POST: no cookie
    assert location == f"/receipt.html?p={created['payment']['id']}"
    assert d.receipt(d.follow_signout(completion), patron)["id"] == created["payment"]["id"]


def test_a_stale_request_with_a_bad_signature_does_not_reveal_the_kiosk(tmp_path):
    db = Database(tmp_path / "ledger.sqlite3")
    now = 1_700_000_000.0
    headers = {k.lower(): v for k, v in signed_headers("lib1", OTHER_SECRET, "GET", "/api/fees", b"",
                                                       now=now - 3600, nonce=NONCE).items()}
    with pytest.raises(kiosk_auth.KioskAuthError) as refused:
        verify(db, headers, now)
    assert (refused.value.reason, refused.value.code) == ("bad_signature", "kiosk_unauthorized")


def test_refused_requests_do_not_keep_a_kiosk_session_alive(d):
    opened = open_session(kiosk_client(d)).json()
    store = d.services.sessions
    last_seen = lambda: d.services.db.read_one("SELECT last_seen_at FROM sessions")[0]  # noqa: E731
    before = last_seen()
    real = store.clock
    store.clock = lambda: real() + 40   # long enough that real activity would be written
    try:
        plain = httpx.Client(base_url=d.url, timeout=15.0)
        d.clients.append(plain)
        assert plain.get("/api/fees", headers=as_session(opened)).status_code == 401
        assert last_seen() == before
        signed = kiosk_client(d)
        assert signed.get("/api/fees", headers=as_session(opened)).status_code == 200
        assert last_seen() > before
    finally:
        store.clock = real
