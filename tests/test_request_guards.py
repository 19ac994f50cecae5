"""The request guards as one layer (proxy/web/security.py RequestGuards): the answers the
guards give themselves (413, 403, a kiosk's 401) carry the same security headers as a route's,
the checks run in their order (body size, then origin, then kiosk signature), and every request
gets one access-log line, also when the app raises. These held when the guards were five
middlewares; the tests keep them from changing without notice."""

from __future__ import annotations

import logging

import httpx
import pytest
from support.waiting import wait_for

SECRET = "lib1-secret-0123456789abcdef0123456789"


@pytest.fixture
def d(deploy):
    return deploy(kiosk_keys=f"lib1={SECRET}", max_body_bytes="1000")


def access_lines(caplog, path: str) -> list[int]:
    return [r.status for r in caplog.records
            if r.name == "patronpay.access" and getattr(r, "path", None) == path]


def assert_guarded(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"  # every /api/ answer


def test_the_guards_own_refusals_carry_the_headers_and_log_a_line(d, caplog):
    big = b"x" * 1500

    def streamed():
        for _ in range(3):
            yield big[:500]

    with caplog.at_level(logging.INFO):
        # Announced too large: refused before the origin is looked at.
        assert_guarded(httpx.post(d.url + "/api/payments", content=big), 413, "body_too_large")
        # Streamed too large to the kiosk API: the body limit stops the signature check's
        # buffering (413, not the kiosk's 401).
        assert_guarded(httpx.post(d.url + "/api/kiosk/sessions", content=streamed()), 413,
                       "body_too_large")
        # Kiosk headers on a page route: the origin check comes first.
        assert_guarded(httpx.post(d.url + "/api/payments", json={},
                                  headers={"X-Kiosk-Id": "lib1"}), 403, "bad_origin")
        # A same-origin request with kiosk headers, and an unsigned kiosk request: 401.
        assert_guarded(httpx.post(d.url + "/api/payments", json={},
                                  headers={"X-Kiosk-Id": "lib1", "Origin": d.url}), 401,
                       "kiosk_unauthorized")
        assert_guarded(httpx.post(d.url + "/api/kiosk/sessions", json={}), 401,
                       "kiosk_unauthorized")
        wait_for(lambda: len(access_lines(caplog, "/api/kiosk/sessions")) == 2 and
                 len(access_lines(caplog, "/api/payments")) == 3, "the access-log lines")
    assert access_lines(caplog, "/api/payments") == [413, 403, 401]
    assert access_lines(caplog, "/api/kiosk/sessions") == [413, 401]
    refused = [r.path for r in caplog.records if getattr(r, "event", "") == "kiosk_refused"]
    assert refused == ["/api/payments", "/api/kiosk/sessions"]  # not for the 403 or the 413s


def test_an_exception_in_the_app_still_gets_its_access_line(d, caplog, monkeypatch):
    def broken() -> bool:
        raise RuntimeError("the ledger check broke")

    monkeypatch.setattr(d.services.db, "writable", broken)
    with caplog.at_level(logging.INFO):
        assert httpx.get(d.url + "/readyz").status_code == 500
        wait_for(lambda: access_lines(caplog, "/readyz"), "the access-log line")
    assert access_lines(caplog, "/readyz") == [500]


def test_token_paths_are_redacted_in_the_access_log(d, caplog):
    token = d.settings.cashnet_postback_token
    with caplog.at_level(logging.INFO):
        httpx.post(f"{d.url}/cashnet/postback/{token}/extra", content=b"a=b")
        httpx.get(f"{d.url}/api/receipts/some-receipt-token")
        wait_for(lambda: access_lines(caplog, "/cashnet/postback/***/extra") and
                 access_lines(caplog, "/api/receipts/***"), "the redacted lines")
    assert not any(token in str(vars(r)) or "some-receipt-token" in str(vars(r))
                   for r in caplog.records if r.name.startswith("patronpay"))
