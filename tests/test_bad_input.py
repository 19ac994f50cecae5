"""Bad input to every route gets a clear 4xx JSON error and changes nothing: no payment in
the ledger, no call that writes to Alma."""

import httpx
import pytest

from proxy.patron_sessions import COOKIE_NAME


def error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["error"]
    assert set(body) >= {"code", "message"} and body["message"]
    return body


def nothing_changed(d):
    assert d.ledger.find_payments() == []
    assert d.alma_calls("POST", "pay") == []


@pytest.fixture
def signed_in(deploy):
    d = deploy()
    return d, d.sign_in_sso("mkowalski")


@pytest.mark.parametrize("body, status, code, field", [
    ({"amount": "-1.00"}, 422, "invalid_amount", "amount"),
    ({"amount": "0"}, 422, "amount_too_small", "amount"),
    ({"amount": "0.00"}, 422, "amount_too_small", "amount"),
    ({"amount": "0.99"}, 422, "amount_too_small", "amount"),
    ({"amount": "1.005"}, 422, "invalid_amount", "amount"),
    ({"amount": "77.26"}, 422, "amount_too_large", "amount"),
    ({"amount": 10}, 422, "invalid_amount", "amount"),
    ({"amount": 10.5}, 422, "invalid_amount", "amount"),
    ({"amount": "1e2"}, 422, "invalid_amount", "amount"),
    ({"fee_ids": ["7730012450004146"], "amount": "4.76"}, 422, "amount_too_large", "amount"),
    ({"fee_ids": ["0000000000004146"]}, 422, "unknown_fee", "fee_ids"),
    ({"fee_ids": []}, 422, "no_fees_chosen", "fee_ids"),
    ({"fee_ids": "7730012450004146"}, 422, "invalid_fee_ids", "fee_ids"),
    ({"fee_ids": ["7730012450004146", "7730012450004146"]}, 422, "duplicate_fee_ids", "fee_ids"),
    ({"price": "1.00"}, 400, "unknown_field", "price"),
])
def test_bad_payment_requests(signed_in, body, status, code, field):
    d, patron = signed_in
    refused = error(patron.post("/api/payments", json=body), status)
    assert (refused["code"], refused["field"]) == (code, field)
    nothing_changed(d)


@pytest.mark.parametrize("content, code", [
    (b"{not json", "invalid_json"), (b"[1, 2]", "invalid_json"), (b"\xff\xfe", "invalid_json"),
    (b'"text"', "invalid_json"),
])
def test_malformed_json(signed_in, content, code):
    d, patron = signed_in
    response = patron.post("/api/payments", content=content, headers={"Content-Type": "application/json"})
    assert error(response, 400)["code"] == code
    nothing_changed(d)


def test_oversized_bodies_are_refused(signed_in):
    d, patron = signed_in
    big = b'{"amount": "' + b"1" * 70_000 + b'"}'
    assert error(patron.post("/api/payments", content=big, headers={"Content-Type": "application/json"}), 413)["code"] == "body_too_large"

    def chunks():
        for _ in range(100):
            yield b"x" * 1000

    streamed = httpx.post(f"{d.url}/cashnet/postback/{d.settings.cashnet_postback_token}", content=chunks())
    assert error(streamed, 413)["code"] == "body_too_large"
    assert d.ledger.notifications() == []
    nothing_changed(d)


def test_missing_or_wrong_csrf_token(signed_in):
    d, patron = signed_in
    token = patron.headers.pop("X-CSRF-Token")
    assert error(patron.post("/api/payments", json={}), 403)["code"] == "bad_csrf_token"
    patron.headers["X-CSRF-Token"] = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert error(patron.post("/api/payments", json={}), 403)["code"] == "bad_csrf_token"
    assert error(patron.post("/auth/logout", json={}), 403)["code"] == "bad_csrf_token"
    nothing_changed(d)


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None, "http://127.0.0.1:1"])
def test_foreign_or_missing_origin(signed_in, origin):
    d, patron = signed_in
    headers = {"Origin": origin} if origin else {}
    if origin is None:
        patron.headers.pop("Origin")
    assert error(patron.post("/api/payments", json={}, headers=headers), 403)["code"] == "bad_origin"
    assert error(patron.post("/auth/alma", json={"user_id": "jsmith", "password": "correct-horse-7"},
                             headers=headers), 403)["code"] == "bad_origin"
    nothing_changed(d)


def test_not_signed_in_and_tampered_cookie(deploy):
    d = deploy()
    anonymous = d.browser()
    assert error(anonymous.get("/api/fees"), 401)["code"] == "not_signed_in"
    session = anonymous.get("/api/session")
    assert error(session, 401)["code"] == "not_signed_in"
    assert session.json()["methods"] == ["sso", "alma", "cas", "primo"]
    patron = d.sign_in_sso("mkowalski")
    cookie = patron.cookies[COOKIE_NAME]
    forged = d.browser()
    forged.cookies.set(COOKIE_NAME, cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"))
    assert error(forged.get("/api/fees"), 401)["code"] == "not_signed_in"


def test_guest_sign_in_refusals_and_lockout(deploy):
    d = deploy(guest_max_failures="3")
    client = d.browser()
    assert error(client.post("/auth/alma", json={"user_id": "jsmith"}), 422)["field"] == "password"
    assert error(client.post("/auth/alma", json={"password": "x"}), 422)["field"] == "user_id"
    assert error(client.post("/auth/alma", json={"user_id": "x" * 300, "password": "x"}), 422)["field"] == "user_id"
    for _ in range(3):
        refused = error(client.post("/auth/alma", json={"user_id": "jsmith", "password": "wrong"}), 401)
        assert refused == {"code": "invalid_credentials", "message": "That user name and password do not match."}
    locked = client.post("/auth/alma", json={"user_id": "jsmith", "password": "correct-horse-7"})
    body = error(locked, 429)
    assert body["code"] == "too_many_attempts"
    seconds = int(locked.headers["Retry-After"])
    assert 0 < seconds <= 900 and f"Try again in {seconds} seconds." in body["message"]
    # An unknown account is refused with the same words: nobody learns which accounts exist.
    other = d.browser()
    assert error(other.post("/auth/alma", json={"user_id": "nobody", "password": "x"}), 429)["code"] == "too_many_attempts"


def test_unknown_account_looks_like_a_wrong_password(deploy):
    d = deploy()
    client = d.browser()
    assert error(client.post("/auth/alma", json={"user_id": "nobody", "password": "x"}), 401) == {
        "code": "invalid_credentials", "message": "That user name and password do not match."}
    assert error(client.post("/auth/alma", json={"user_id": "mkowalski", "password": "x"}), 401)["code"] == "invalid_credentials"


def test_passwords_never_reach_the_log(deploy, caplog):
    d = deploy()
    with caplog.at_level("DEBUG"):
        d.browser().post("/auth/alma", json={"user_id": "jsmith", "password": "wrong-secret-9"})
        d.sign_in_guest("jsmith", "correct-horse-7")
    assert "wrong-secret-9" not in caplog.text and "correct-horse-7" not in caplog.text


def test_sso_header_from_an_untrusted_address_is_refused(deploy):
    d = deploy(trusted_proxies="127.0.0.1/32")
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, base_url=d.url) as outsider:
        response = outsider.get("/auth/sso", headers={"X-Remote-User": "mkowalski"})
    assert (response.status_code, response.headers["location"]) == (303, "/?error=untrusted_proxy")
    assert COOKIE_NAME not in response.cookies


def test_sso_without_a_user_and_for_an_unknown_patron(deploy):
    d = deploy()
    missing = d.browser().get("/auth/sso")
    assert (missing.status_code, missing.headers["location"]) == (303, "/?error=sso_missing_user")
    unknown = d.browser().get("/auth/sso", headers={"X-Remote-User": "nosuchpatron"})
    assert (unknown.status_code, unknown.headers["location"]) == (303, "/?error=account_not_found")


@pytest.mark.parametrize("target, expected", [
    ("/receipt.html?r=1", "/receipt.html?r=1"), ("//evil.example/", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("javascript:alert(1)", "/"), ("", "/"), ("/%0d%0aSet-Cookie:x", "/%0d%0aSet-Cookie:x"),
])
def test_next_is_a_same_origin_path_only(deploy, target, expected):
    d = deploy()
    response = d.browser().get("/auth/sso", params={"next": target}, headers={"X-Remote-User": "mkowalski"})
    assert (response.status_code, response.headers["location"]) == (303, expected)


def test_disabled_method_and_unknown_routes(deploy):
    d = deploy(auth_methods="sso")
    client = d.browser()
    assert error(client.post("/auth/alma", json={"user_id": "jsmith", "password": "x"}), 404)["code"] == "method_disabled"
    assert error(client.get("/api/nope"), 404)["code"] == "not_found"
    assert error(client.delete("/api/fees"), 405)["code"] == "method_not_allowed"
    assert error(httpx.get(f"{d.url}/api/receipts/forged-token"), 404)["code"] == "receipt_not_found"
    signed_out = client.get("/pay/whatever")
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/?error=not_signed_in")


def test_logout_really_ends_the_session(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    cookie = patron.cookies[COOKIE_NAME]
    assert patron.post("/auth/logout", json={}).status_code == 200
    replay = d.browser()
    replay.cookies.set(COOKIE_NAME, cookie)
    assert error(replay.get("/api/fees"), 401)["code"] == "not_signed_in"


def test_parallel_guesses_cannot_slip_past_the_lockout(deploy):
    """Twenty wrong passwords sent at once: at most the allowed number reach Alma."""
    import threading
    d = deploy(guest_max_failures="3")
    barrier = threading.Barrier(20)
    statuses = []

    def guess():
        client = httpx.Client(base_url=d.url, headers={"Origin": d.url}, timeout=30)
        try:
            barrier.wait(timeout=10)
            statuses.append(client.post("/auth/alma", json={"user_id": "jsmith", "password": "nope"}).status_code)
        finally:
            client.close()

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [401] * 3 + [429] * 17
    assert len(d.alma_calls("POST", "auth")) == 3


def test_alma_down_during_a_guest_sign_in_is_not_counted_as_a_failure(deploy):
    d = deploy(guest_max_failures="1")
    d.alma.set_faults({"rules": [{"match": {"method": "POST", "path": "/almaws/v1/users/*"},
                                  "mode": "http_5xx", "status": 503, "next": 3}]})
    client = d.browser()
    for _ in range(3):
        assert error(client.post("/auth/alma", json={"user_id": "jsmith", "password": "correct-horse-7"}),
                     503)["code"] == "alma_unavailable"
    assert client.post("/auth/alma", json={"user_id": "jsmith", "password": "correct-horse-7"}).status_code == 200
