"""Primo VE tokens and the JWKS the sandbox Alma serves for them (docs/alma.md#primo-tokens,
docs/sandbox.md#request-log-and-control-endpoints)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from patronpay.serving import ServerThread
from sandbox.alma import AlmaSandbox

INST = "01PATRON_INST"
KID = f"primaPrivateKey-{INST}"
JWKS_URL = f"/auth/{INST}/jwks.json"


@pytest.fixture
def client(alma_server: ServerThread, alma: AlmaSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=alma_server.url, timeout=10) as http:  # no API key: JWKS is public
        yield http


def jwks(client: httpx.Client, *, sandbox: bool = False) -> dict[str, Any]:
    response = client.get(JWKS_URL, params={"env": "sandbox"} if sandbox else {})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


def verify(token: str, key_set: dict[str, Any]) -> dict[str, Any]:
    """What the proxy does: pick the EC key by kid, then verify ES256, exp and iss."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    jwk = next(k for k in key_set["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK.from_dict(jwk, algorithm="ES256")
    return jwt.decode(token, key.key, algorithms=["ES256"], issuer="Prima", leeway=60,
                      options={"require": ["exp", "iss"]})


def test_jwks_shape(client: httpx.Client) -> None:
    key_set = jwks(client)
    assert [(k["kty"], k["kid"]) for k in key_set["keys"]] == [
        ("EC", KID), ("RSA", "almaAuthKey")]
    assert set(key_set["keys"][0]) == {"kty", "crv", "kid", "x", "y"}  # no alg/use promised
    assert key_set["keys"][0]["crv"] == "P-256"
    assert client.get("/auth/OTHER_INST/jwks.json").status_code == 404


def test_token_verifies_against_the_served_key(client: httpx.Client, alma: AlmaSandbox) -> None:
    token = alma.primo_token("mkowalski")
    assert jwt.get_unverified_header(token)["kid"] == KID
    claims = verify(token, jwks(client))
    assert claims["exp"] - claims["iat"] == 3600
    assert {k: claims[k] for k in ("iss", "userName", "displayName", "userGroup", "institution",
                                   "signedIn", "viewId")} == {
        "iss": "Prima", "userName": "mkowalski", "displayName": "Maria", "userGroup": "UGRAD",
        "institution": INST, "signedIn": "true", "viewId": f"{INST}:MAIN"}
    assert claims["user"].endswith("4146") and claims["user"].isdigit()
    assert "aud" not in claims


def test_sandbox_environment_has_its_own_key(client: httpx.Client, alma: AlmaSandbox) -> None:
    production, sandbox = jwks(client), jwks(client, sandbox=True)
    assert production["keys"][0]["kid"] == sandbox["keys"][0]["kid"] == KID
    assert production["keys"][0]["x"] != sandbox["keys"][0]["x"]
    token = alma.primo_token("jsmith", sandbox=True)
    assert verify(token, sandbox)["userName"] == "jsmith"
    with pytest.raises(jwt.InvalidSignatureError):
        verify(token, production)


def test_token_options(client: httpx.Client, alma: AlmaSandbox) -> None:
    key_set = jwks(client)
    expired = alma.primo_token("mkowalski", ttl_s=-120)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(expired, key_set)
    with pytest.raises(jwt.InvalidIssuerError):
        verify(alma.primo_token("mkowalski", iss="soa"), key_set)
    odd = alma.primo_token("mkowalski", institution="01OTHER_INST", onCampus="true",
                           userGroup=None)
    claims = verify(odd, key_set)
    assert (claims["institution"], claims["onCampus"]) == ("01OTHER_INST", "true")
    assert "userGroup" not in claims
    unknown_kid = alma.primo_token("mkowalski", kid="someone-else")
    assert jwt.get_unverified_header(unknown_kid)["kid"] == "someone-else"
    stranger = verify(alma.primo_token("not-in-alma"), key_set)
    assert (stranger["userName"], stranger["displayName"]) == ("not-in-alma", "not-in-alma")


def test_rotation_under_the_same_kid(client: httpx.Client, alma: AlmaSandbox) -> None:
    before = jwks(client)
    old_token = alma.primo_token("mkowalski")
    assert alma.rotate_key(same_kid=True) == KID
    after = jwks(client)
    assert after["keys"][0]["kid"] == KID and after["keys"][0]["x"] != before["keys"][0]["x"]
    with pytest.raises(jwt.InvalidSignatureError):
        verify(old_token, after)
    new_token = alma.primo_token("mkowalski")
    with pytest.raises(jwt.InvalidSignatureError):
        verify(new_token, before)  # a cached key set must be refetched
    assert verify(new_token, after)["userName"] == "mkowalski"


def test_rotation_to_a_new_kid_and_reset(client: httpx.Client, alma: AlmaSandbox) -> None:
    original = jwks(client)
    rotated = client.post("/_emulator/rotate-key", json={"same_kid": False}).json()["kid"]
    assert rotated != KID
    served = jwks(client)
    assert [k["kid"] for k in served["keys"]] == [rotated, "almaAuthKey"]
    token = client.post("/_emulator/primo-token", json={"userName": "pchen"}).json()["token"]
    assert jwt.get_unverified_header(token)["kid"] == rotated
    assert verify(token, served)["userName"] == "pchen"
    assert jwks(client, sandbox=True)["keys"][0]["kid"] == KID  # the other env is untouched
    alma.reset()
    assert jwks(client) == original


def test_token_over_the_control_api(client: httpx.Client, alma: AlmaSandbox) -> None:
    response = client.post("/_emulator/primo-token", json={
        "userName": "ana.rivera@example.edu", "ttl_s": 86400, "sandbox": True,
        "claims": {"authenticationProfile": "LDAP"}})
    claims = verify(response.json()["token"], jwks(client, sandbox=True))
    assert claims["exp"] - claims["iat"] == 86400
    assert (claims["userName"], claims["authenticationProfile"]) == (
        "ana.rivera@example.edu", "LDAP")
    assert client.post("/_emulator/primo-token", json={}).status_code == 400


def test_jwks_fetches_are_logged_without_a_key(client: httpx.Client, alma: AlmaSandbox) -> None:
    jwks(client, sandbox=True)
    assert [(e["path"], e["query"], e["status"]) for e in alma.requests()] == [
        (JWKS_URL, {"env": ["sandbox"]}, 200)]
    assert json.dumps(alma.requests()).count("jwks") == 1
