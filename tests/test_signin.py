"""Every way a patron signs in (issue 4), over real loopback servers, and every refusal:
CAS round trips, Primo tokens, the trusted SSO header, guest passwords, and the session."""

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.signin import cas_log_in, location, query, to_cas

from proxy.patron_sessions import COOKIE_NAME, SessionStore

INST = "01PATRON_INST"


def cas_sign_in(d, user, password, next_page="/"):
    """A browser's CAS round trip: patronpay → CAS login form → back with a ticket."""
    browser = d.browser()
    login_url = to_cas(browser, next_page)
    assert login_url.startswith(d.settings.cas_url + "/login?service=")
    assert parse_qs(urlsplit(login_url).query)["service"] == [d.url + "/auth/cas"]
    back = cas_log_in(browser, login_url, user, password)
    assert back.startswith(d.url + "/auth/cas?ticket=ST-")
    return browser, browser.get(back)


def presented(d, ticket):
    """`ticket` brought to patronpay by a browser that started a CAS sign-in there."""
    browser = d.browser()
    to_cas(browser)
    return browser.get("/auth/cas", params={"ticket": ticket})


def test_cas_signs_in_and_pays(deploy):
    d = deploy()
    browser, landed = cas_sign_in(d, "arivera", "student-pass", "/receipt.html?r=x")
    assert location(landed) == "/receipt.html?r=x"
    session = browser.get("/api/session").json()
    assert (session["patron"]["id"], session["method"]) == ("ana.rivera@example.edu", "cas")
    browser.headers["X-CSRF-Token"] = session["csrf_token"]
    created, completion = d.pay(browser)
    d.wait_for_state(created["payment"]["id"], "posted")
    validations = d.sandbox_app.state.cas.validations()
    assert [(v["service"], v["user"]) for v in validations] == [(d.url + "/auth/cas", "arivera")]


def test_cas_ticket_replayed_foreign_or_bogus_is_refused(deploy):
    d = deploy()
    cas = d.sandbox_app.state.cas
    # Replayed: a ticket already used for one sign-in.
    browser, landed = cas_sign_in(d, "mkowalski", "student-pass")
    used = query(str(landed.request.url))["ticket"]
    assert location(presented(d, used)) == "/?error=cas_failed"
    # Foreign: issued for another service.
    foreign = cas.issue_ticket("mkowalski", "https://elsewhere.example.edu/login")
    assert location(presented(d, foreign)) == "/?error=cas_failed"
    # Bogus and malformed.
    assert location(presented(d, "ST-made-up")) == "/?error=cas_failed"
    assert location(presented(d, "<x>")) == "/?error=cas_failed"
    for client in d.clients[1:]:
        assert COOKIE_NAME not in client.cookies


def test_cas_account_without_alma_record(deploy):
    d = deploy()
    _, landed = cas_sign_in(d, "gone", "student-pass")
    assert location(landed) == "/?error=account_not_found"


def test_cas_server_down(deploy):
    d = deploy(cas_url="http://127.0.0.1:9")
    assert location(presented(d, "ST-1")) == "/?error=cas_unavailable"


def test_cas_next_cookie_cannot_redirect_elsewhere(deploy):
    d = deploy()
    browser, landed = cas_sign_in(d, "mkowalski", "student-pass", "https://evil.example/")
    assert location(landed) == "/"


def primo_link(d, user="mkowalski"):
    return location(httpx.get(d.sandbox.url + "/primo/pay", params={"user": user}))


def test_primo_link_signs_in_and_drops_the_token_from_the_url(deploy):
    d = deploy()
    link = primo_link(d)
    assert link.startswith(d.url + "/auth/primo?jwt=")
    browser = d.browser()
    landed = browser.get(link)
    assert location(landed) == "/"
    session = browser.get("/api/session").json()
    assert (session["patron"]["id"], session["method"]) == ("mkowalski", "primo")
    browser.headers["X-CSRF-Token"] = session["csrf_token"]
    created, _ = d.pay(browser, amount="4.75")
    d.wait_for_state(created["payment"]["id"], "posted")


def token(d, **kwargs):
    return d.alma.primo_token(kwargs.pop("user", "mkowalski"), **kwargs)


def refused(d, jwt_text):
    browser = d.browser()
    answer = browser.get("/auth/primo", params={"jwt": jwt_text})
    assert location(answer) == "/?error=primo_token_invalid"
    assert COOKIE_NAME not in browser.cookies


def public_key_pem(d):
    jwks = httpx.get(d.settings.primo_key_set_url()).json()
    key = next(k for k in jwks["keys"] if k["kty"] == "EC")
    return jwt.PyJWK(key, algorithm="ES256").key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_primo_refusals(deploy):
    d = deploy()
    good = token(d)
    header = jwt.get_unverified_header(good)
    claims = jwt.decode(good, options={"verify_signature": False})
    stranger = ec.generate_private_key(ec.SECP256R1())
    refused(d, jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": header["kid"]}))  # forged
    refused(d, token(d, ttl_s=-120))                                                          # expired
    refused(d, token(d, iss="https://not-prima.example"))                                     # wrong iss
    refused(d, token(d, institution="01OTHER_INST"))                                          # wrong institution
    refused(d, jwt.encode(claims, None, algorithm="none"))                                    # alg=none
    refused(d, _hs256_with_public_key(claims, public_key_pem(d), header["kid"]))              # key confusion
    refused(d, jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "no-such-kid"}))  # unknown kid
    refused(d, "not.a.token")
    refused(d, "")
    refused(d, token(d, userName=None))                                                       # no userName
    # None of this moved any money or created a session.
    assert d.ledger.find_payments() == []


def _hs256_with_public_key(claims, pem, kid):
    """The classic key-confusion attack: an HMAC signed with the (public) verification key."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def test_primo_key_rotation_refetches_once(deploy):
    d = deploy()
    first = token(d)
    assert location(d.browser().get("/auth/primo", params={"jwt": first})) == "/"
    verifier = d.services.primo
    fetches = verifier.fetches
    d.alma.rotate_key(same_kid=True)
    rotated = token(d)
    # Within a minute of the last fetch the key set is not fetched again, whatever tokens say.
    refused(d, rotated)
    assert verifier.fetches == fetches
    # Later, a new key under the same kid: the signature failure triggers one refetch.
    real_clock = verifier.clock
    verifier.clock = lambda: real_clock() + 61
    try:
        assert location(d.browser().get("/auth/primo", params={"jwt": rotated})) == "/"
        assert verifier.fetches == fetches + 1
        # Bad tokens cannot drive key-set traffic: no second refetch within the minute.
        refused(d, first)
        refused(d, first)
        assert verifier.fetches == fetches + 1
    finally:
        verifier.clock = real_clock


def test_primo_uses_the_sandbox_key_set_when_told(deploy):
    d = deploy(primo_jwks_url="", primo_sandbox="true", alma_api_url="http://127.0.0.1:9/almaws/v1")
    assert d.settings.primo_key_set_url() == f"http://127.0.0.1:9/auth/{INST}/jwks.json?env=sandbox"


def test_expired_alma_account_can_still_pay(deploy):
    d = deploy()
    patron = d.sign_in_sso("rgarcia")
    created, _ = d.pay(patron, fee_ids=["7730070020004146"])
    d.wait_for_state(created["payment"]["id"], "posted")


def test_patron_whose_alma_account_disappears_is_signed_out(deploy):
    d = deploy()
    other = d.sign_in_sso("pchen")
    d.alma.add_user({"primary_id": "temp1", "first_name": "Temp", "last_name": "Patron",
                     "account_type": "EXTERNAL", "status": "ACTIVE", "user_group": "UGRAD"})
    leaving = d.sign_in_sso("temp1")
    d.alma.reset()  # temp1 was never in the seed: after a reset Alma no longer knows it
    answer = leaving.get("/api/fees")
    assert answer.status_code == 401
    assert answer.json()["error"] == {
        "code": "account_gone", "message": "Your library account could not be found any more, "
        "so you have been signed out. Please contact the library."}
    assert leaving.get("/api/session").status_code == 401
    assert other.get("/api/fees").status_code == 200


def test_sessions_expire_when_idle_and_after_the_maximum(deploy):
    d = deploy(session_idle_minutes="1", session_max_minutes="2")
    patron = d.sign_in_sso("mkowalski")
    clock = d.services.sessions
    original = clock.clock
    start = original()
    try:
        clock.clock = lambda: start + 50
        assert patron.get("/api/session").status_code == 200   # touched at +50 s
        clock.clock = lambda: start + 105
        assert patron.get("/api/session").status_code == 200   # idle 55 s: still alive
        clock.clock = lambda: start + 170
        assert patron.get("/api/session").status_code == 401   # idle 65 s: over
        fresh = d.sign_in_sso("mkowalski")
        born = clock.clock()
        for offset in (50, 100):
            clock.clock = lambda o=offset: born + o
            assert fresh.get("/api/session").status_code == 200
        clock.clock = lambda: born + 125
        assert fresh.get("/api/session").status_code == 401    # past the 2-minute maximum
    finally:
        clock.clock = original


def test_secret_key_rotation(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    old_key = d.settings.secret_keys[0]
    rotated = SessionStore(d.services.db, ["n" * 40, old_key], idle_seconds=900, max_seconds=3600)
    assert rotated.load(patron.cookies[COOKIE_NAME]) is not None       # old key still verifies
    _, cookie = rotated.create(patron=rotated.load(patron.cookies[COOKIE_NAME]).patron, method="sso")
    assert d.services.sessions.load(cookie) is None                     # new cookies use the new key
    dropped = SessionStore(d.services.db, ["n" * 40], idle_seconds=900, max_seconds=3600)
    assert dropped.load(patron.cookies[COOKIE_NAME]) is None             # retired key: cookie void


def test_security_headers_on_every_response(deploy):
    d = deploy()
    for path in ("/", "/receipt.html", "/api/session", "/healthz", "/nope", "/style.css"):
        headers = httpx.get(d.url + path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert f"form-action 'self' {d.sandbox.url}" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in headers  # plain http on loopback
    assert httpx.get(d.url + "/api/session").headers["cache-control"] == "no-store"


def test_session_cookie_attributes(deploy):
    d = deploy()
    response = d.browser().get("/auth/sso", headers={"X-Remote-User": "mkowalski"})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(COOKIE_NAME + "=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback; https public URLs add it


def test_sign_in_methods_follow_configuration(deploy):
    d = deploy(auth_methods="primo")
    assert d.browser().get("/api/session").json()["methods"] == ["primo"]
    for path in ("/auth/sso", "/auth/cas"):
        assert d.browser().get(path, headers={"X-Remote-User": "mkowalski"}).status_code == 404


def test_sign_in_page_is_told_where_each_method_starts(deploy):
    d = deploy()
    body = d.browser().get("/api/session").json()
    assert body["links"] == {"sso": d.sandbox.url + "/sso/login", "cas": "/auth/cas",
                             "alma": "/auth/alma"}


def test_campus_sso_gateway_signs_in_through_the_trusted_header(deploy):
    d = deploy()
    browser = d.browser()
    answer = browser.post(d.sandbox.url + "/sso/login",
                          data={"username": "arivera", "password": "student-pass", "next": "/"})
    assert location(answer) == d.url + "/"
    assert browser.get("/api/session").json()["patron"]["id"] == "ana.rivera@example.edu"


def test_long_dead_sessions_are_forgotten(deploy):
    d = deploy()
    store = d.services.sessions
    first = d.sign_in_sso("mkowalski")
    assert first.get("/api/session").status_code == 200
    count = lambda: d.services.db.read_one("SELECT COUNT(*) AS n FROM sessions")["n"]  # noqa: E731
    assert count() == 1
    real = store.clock
    store.clock = lambda: real() + store.max_seconds + 2 * 86400
    store._last_purge = float("-inf")
    try:
        d.sign_in_sso("tlee")
    finally:
        store.clock = real
    assert count() == 1  # the old one purged, the new one kept


def test_a_forged_token_after_the_key_set_aged_is_refused_not_a_500(deploy):
    d = deploy()
    assert location(d.browser().get("/auth/primo", params={"jwt": token(d)})) == "/"
    verifier = d.services.primo
    real_clock = verifier.clock
    verifier.clock = lambda: real_clock() + 61   # the key set may be fetched again
    try:
        claims = jwt.decode(token(d), options={"verify_signature": False})
        kid = jwt.get_unverified_header(token(d))["kid"]
        forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                            headers={"kid": kid})
        refused(d, forged)
    finally:
        verifier.clock = real_clock
