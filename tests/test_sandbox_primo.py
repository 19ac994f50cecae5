"""The sandbox Primo page: the patron list, and "Pay fines" redirects carrying a fresh Primo VE
token that verifies against the sandbox Alma's JWKS (combined sandbox app, real loopback)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from patronpay.serving import ServerThread
from sandbox.app import create_sandbox_app, urls
from sandbox.primo import PrimoPage

INST = "01PATRON_INST"
KID = f"primaPrivateKey-{INST}"
PAYMENT_URL = "http://127.0.0.1:8000/auth/primo"
CLAIMS = {"iss", "jti", "iat", "exp", "userName", "displayName", "user", "userGroup",
          "institution", "userIp", "authenticationProfile", "language", "onCampus",
          "signedIn", "viewId"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    app = create_sandbox_app()
    with ServerThread(app) as running:
        running.app = app  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def app(server: ServerThread) -> Any:
    sandbox_app = server.app  # type: ignore[attr-defined]
    sandbox_app.state.alma.reset()
    sandbox_app.state.primo.configure(PAYMENT_URL)
    return sandbox_app


@pytest.fixture
def client(server: ServerThread, app: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as http:
        yield http


def token_from(response: httpx.Response, prefix: str = PAYMENT_URL + "?jwt=") -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(prefix), location
    return parse_qs(urlsplit(location).query)["jwt"][0]


def verify(client: httpx.Client, token: str, *, sandbox: bool = False) -> dict[str, Any]:
    """As the proxy must: ES256 only, key by kid from the JWKS, iss and exp checked."""
    key_set = client.get(f"/alma/auth/{INST}/jwks.json",
                         params={"env": "sandbox"} if sandbox else {}).json()
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("ES256", KID)
    jwk = next(k for k in key_set["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK.from_dict(jwk, algorithm="ES256")
    return jwt.decode(token, key.key, algorithms=["ES256"], issuer="Prima", leeway=60,
                      options={"require": ["exp", "iss", "iat"]})


def test_urls_name_the_primo_page(server: ServerThread) -> None:
    assert urls(server.url)["primo_page"] == server.url + "/primo/"


def test_pay_fines_redirects_with_a_verifiable_primo_token(client: httpx.Client, app: Any) -> None:
    before = int(time.time())
    token = token_from(client.get("/primo/pay", params={"user": "mkowalski"}))
    claims = verify(client, token)
    assert set(claims) == CLAIMS
    assert {name: claims[name] for name in CLAIMS - {"jti", "iat", "exp"}} == {
        "iss": "Prima", "userName": "mkowalski", "displayName": "Maria",
        "user": app.state.alma.user_state("mkowalski")["internal_id"], "userGroup": "UGRAD",
        "institution": INST, "userIp": "127.0.0.1", "authenticationProfile": "SAML",
        "language": "en", "onCampus": "false", "signedIn": "true", "viewId": f"{INST}:MAIN"}
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert re.fullmatch(r"[0-9A-F]{16}:\d+", claims["jti"])


def test_each_click_gets_a_fresh_token(client: httpx.Client) -> None:
    first = verify(client, token_from(client.get("/primo/pay", params={"user": "tlee"})))
    second = verify(client, token_from(client.get("/primo/pay", params={"user": "tlee"})))
    assert first["jti"] != second["jti"]
    assert (first["userName"], first["userGroup"]) == ("tlee", "STAFF")


def test_user_is_named_as_alma_spells_the_primary_id(client: httpx.Client) -> None:
    response = client.get("/primo/pay", params={"user": "Ana.Rivera@Example.edu"})
    claims = verify(client, token_from(response))
    assert (claims["userName"], claims["displayName"]) == ("ana.rivera@example.edu", "Ana")


def test_payment_url_with_a_query_gets_jwt_appended(client: httpx.Client, app: Any) -> None:
    app.state.primo.configure("http://127.0.0.1:8000/auth/primo?lang=en")
    response = client.get("/primo/pay", params={"user": "pchen"})
    token = token_from(response, "http://127.0.0.1:8000/auth/primo?lang=en&jwt=")
    assert response.headers["location"] == f"http://127.0.0.1:8000/auth/primo?lang=en&jwt={token}"
    assert verify(client, token)["userName"] == "pchen"


def test_sandbox_environment_key(client: httpx.Client, app: Any) -> None:
    app.state.primo.configure(PAYMENT_URL, sandbox_key=True, ttl_s=600)
    token = token_from(client.get("/primo/pay", params={"user": "rgarcia"}))
    claims = verify(client, token, sandbox=True)
    assert claims["exp"] - claims["iat"] == 600
    with pytest.raises(jwt.InvalidSignatureError):
        verify(client, token, sandbox=False)


def test_unknown_and_missing_patrons(client: httpx.Client) -> None:
    unknown = client.get("/primo/pay", params={"user": "nosuchpatron"})
    assert unknown.status_code == 404
    assert "The sandbox Alma has no patron nosuchpatron." in unknown.text
    missing = client.get("/primo/pay")
    assert missing.status_code == 400 and "<h1>No patron chosen</h1>" in missing.text


def test_not_configured_is_a_clear_503() -> None:
    app = create_sandbox_app()
    with ServerThread(app) as running, httpx.Client(base_url=running.url) as http:
        response = http.get("/primo/pay", params={"user": "mkowalski"})
        index = http.get("/primo/")
    assert response.status_code == 503
    assert "<h1>Payment site not configured</h1>" in response.text
    assert "app.state.primo.configure(payment_url)" in response.text
    assert "No payment site is configured yet" in index.text
    assert app.state.primo.payment_url is None


def test_configure_refuses_a_non_web_url(app: Any) -> None:
    primo: PrimoPage = app.state.primo
    with pytest.raises(ValueError, match="http"):
        primo.configure("/auth/primo")
    assert primo.payment_url == PAYMENT_URL


def test_index_lists_seeded_patrons_with_what_they_owe(client: httpx.Client, app: Any) -> None:
    app.state.alma.add_fee("pchen", {"type": "OVERDUEFINE", "status": "ACTIVE",
                                     "original_amount": "2.50", "balance": "2.50",
                                     "owner": "MAIN", "creation_time": "2025-01-01T00:00:00.000Z"})
    response = client.get("/primo/")
    assert response.status_code == 200
    page = response.text
    assert "<h1>Library account (sandbox Primo)</h1>" in page
    assert "No payment site is configured yet" not in page
    assert "<script" not in page
    links = re.findall(r'<a href="(/primo/pay\?user=[^"]+)" target="_blank" rel="noopener">', page)
    assert links == ["/primo/pay?user=mkowalski", "/primo/pay?user=jsmith",
                     "/primo/pay?user=pchen", "/primo/pay?user=dokafor",
                     "/primo/pay?user=ana.rivera%40example.edu", "/primo/pay?user=tlee",
                     "/primo/pay?user=rgarcia", "/primo/pay?user=lnguyen"]
    rows = re.findall(r"<tr>\n<td>([^<]+)</td>\n<td><code>([^<]+)</code></td>\n<td>([^<]+)</td>\n"
                      r'<td class="num">([^<]+)</td>', page)
    owed = {pid: amount for _, pid, _, amount in rows}
    assert owed["pchen"] == "2.50"
    assert rows[0][:3] == ("Maria Kowalski", "mkowalski", "UGRAD")
    assert "(opens in a new tab)" in page
    assert response.headers["referrer-policy"] == "no-referrer"


def test_alma_summon_profile_and_lower_case_institution(client: httpx.Client, app: Any) -> None:
    app.state.primo.configure(PAYMENT_URL, profile="alma_summon", institution_case="lower")
    token = token_from(client.get("/primo/pay", params={"user": "mkowalski"}))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["institution"]) == ("soa", INST.lower())
    with pytest.raises(ValueError):
        app.state.primo.configure(PAYMENT_URL, profile="primo_classic")
