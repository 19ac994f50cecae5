"""The sandbox SSO gateway against a tiny recording app standing in for the proxy's
`/auth/sso`, both on real loopback servers: the trusted header it sends, the cookies and
redirect it relays, refused passwords, and proxy errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from patronpay.serving import ServerThread, bind
from sandbox.app import create_sandbox_app, urls
from sandbox.sso import SsoGateway, create_app

SESSION_COOKIE = "patronpay_session=s3ss10n; HttpOnly; Path=/; SameSite=lax"
OTHER_COOKIE = "patronpay_next=; Max-Age=0; Path=/"


def recording_proxy() -> Starlette:
    """Answers `/auth/sso` by the user in the header, and records every call."""
    calls: list[dict[str, Any]] = []

    async def auth_sso(request: Request) -> Response:
        user = request.headers.get("x-remote-user") or request.headers.get("x-patron-id")
        calls.append({"remote_user": request.headers.get("x-remote-user"),
                      "patron_id": request.headers.get("x-patron-id"),
                      "forwarded_for": request.headers.get("x-forwarded-for"),
                      "next": request.query_params.get("next"),
                      "peer": request.client.host if request.client else None,
                      "cookie": request.headers.get("cookie")})
        if user == "nosuchpatron":
            return RedirectResponse("/?error=account_not_found", status_code=303)
        if user == "tlee":
            return JSONResponse({"error": {"code": "untrusted_proxy", "message":
                                           "Single sign-on must come through the campus web "
                                           "server."}}, status_code=403)
        if user == "dokafor":
            return PlainTextResponse("Service Unavailable", status_code=503)
        if user == "pchen":
            return RedirectResponse("http://evil.example/steal", status_code=303)
        response = RedirectResponse(request.query_params.get("next", "/"), status_code=303)
        response.headers.append("set-cookie", SESSION_COOKIE)
        response.headers.append("set-cookie", OTHER_COOKIE)
        return response

    async def whoami(request: Request) -> Response:
        return JSONResponse({"cookie": request.cookies.get("patronpay_session")})

    app = Starlette(routes=[Route("/auth/sso", auth_sso), Route("/fees", whoami)])
    app.state.calls = calls
    return app


@pytest.fixture(scope="module")
def proxy() -> Iterator[ServerThread]:
    app = recording_proxy()
    with ServerThread(app) as running:
        running.calls = app.state.calls  # type: ignore[attr-defined]
        yield running


@pytest.fixture(scope="module")
def gateway_server() -> Iterator[ServerThread]:
    app = create_app()
    with ServerThread(app) as running:
        running.gateway = app.state.sso  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def calls(proxy: ServerThread) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = proxy.calls  # type: ignore[attr-defined]
    recorded.clear()
    return recorded


@pytest.fixture
def gateway(gateway_server: ServerThread, proxy: ServerThread, calls: list) -> SsoGateway:
    state: SsoGateway = gateway_server.gateway  # type: ignore[attr-defined]
    state.configure(proxy.url)
    state.reset()
    return state


@pytest.fixture
def client(gateway_server: ServerThread, gateway: SsoGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_server.url, timeout=10, follow_redirects=False) as http:
        yield http


def sign_in(client: httpx.Client, user: str, password: str, next_path: str = "/fees"):
    return client.post("/login", data={"username": user, "password": password,
                                       "next": next_path})


def test_login_form(client: httpx.Client, proxy: ServerThread) -> None:
    response = client.get("/login", params={"next": "/fees?x=1"})
    assert response.status_code == 200
    page = response.text
    assert '<input type="hidden" name="next" value="/fees?x=1">' in page
    assert '<label for="username">Campus user name</label>' in page
    assert '<label for="password">Password</label>' in page
    assert f"<code>X-Remote-User</code> header and sends you on to <code>{proxy.url}</code>" in page
    assert "in production the header is set by Apache/nginx in front of patronpay, on the " \
           "same origin" in page
    assert "<script" not in page
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


def test_sign_in_sends_the_header_and_relays_cookies_and_redirect(
        client: httpx.Client, proxy: ServerThread, gateway: SsoGateway,
        calls: list[dict[str, Any]]) -> None:
    response = sign_in(client, "mkowalski", "student-pass")
    assert response.status_code == 303
    assert response.headers["location"] == proxy.url + "/fees"
    assert response.headers.get_list("set-cookie") == [SESSION_COOKIE, OTHER_COOKIE]
    assert calls == [{"remote_user": "mkowalski", "patron_id": None, "forwarded_for": "127.0.0.1",
                      "next": "/fees", "peer": "127.0.0.1", "cookie": None}]
    assert gateway.handoffs() == [{"user": "mkowalski", "alma_id": "mkowalski", "next": "/fees",
                                   "status": 303, "location": "/fees", "error": None}]


def test_header_carries_the_alma_id_attribute(
        client: httpx.Client, calls: list[dict[str, Any]]) -> None:
    assert sign_in(client, "arivera", "student-pass", "/").status_code == 303
    assert [(c["remote_user"], c["next"]) for c in calls] == [("ana.rivera@example.edu", "/")]


def test_header_name_is_configurable(client: httpx.Client, proxy: ServerThread,
                                     gateway: SsoGateway, calls: list[dict[str, Any]]) -> None:
    gateway.configure(proxy.url + "/", header="X-Patron-Id")
    assert sign_in(client, "rgarcia", "student-pass").headers["location"] == proxy.url + "/fees"
    assert [(c["remote_user"], c["patron_id"]) for c in calls] == [(None, "rgarcia")]


@pytest.mark.parametrize(("user", "password"), [("mkowalski", "staff-pass"), ("nobody", "x")])
def test_wrong_password_is_refused_without_calling_the_proxy(
        client: httpx.Client, gateway: SsoGateway, calls: list[dict[str, Any]],
        user: str, password: str) -> None:
    response = sign_in(client, user, password)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "The user name or password is not right. Try again." in response.text
    assert '<input type="hidden" name="next" value="/fees">' in response.text
    assert calls == [] and gateway.handoffs() == []


def test_account_not_found_redirect_is_relayed(
        client: httpx.Client, proxy: ServerThread, calls: list[dict[str, Any]]) -> None:
    response = sign_in(client, "gone", "student-pass")
    assert response.status_code == 303
    assert response.headers["location"] == proxy.url + "/?error=account_not_found"
    assert "set-cookie" not in response.headers
    assert calls[0]["remote_user"] == "nosuchpatron"


def test_proxy_json_error_is_shown_with_its_status(client: httpx.Client) -> None:
    response = sign_in(client, "tlee", "staff-pass")
    assert response.status_code == 403
    assert '<div class="alert" role="alert" data-error-code="untrusted_proxy">' in response.text
    assert "Single sign-on must come through the campus web server." in response.text
    assert '<a href="/login">Try signing in again</a>' in response.text


def test_proxy_plain_error_is_shown_with_its_status(client: httpx.Client) -> None:
    response = sign_in(client, "dokafor", "faculty-pass")
    assert response.status_code == 503
    assert "patronpay answered HTTP 503." in response.text


def test_redirect_off_the_proxy_origin_is_not_followed(
        client: httpx.Client, gateway: SsoGateway) -> None:
    response = sign_in(client, "pchen", "student-pass")
    assert response.status_code == 502
    assert "location" not in response.headers
    assert "patronpay redirected somewhere other than itself." in response.text
    assert gateway.handoffs()[0]["location"] == "http://evil.example/steal"


def test_proxy_not_answering(client: httpx.Client, gateway: SsoGateway) -> None:
    closed = bind("127.0.0.1", 0)
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    gateway.configure(f"http://127.0.0.1:{port}")
    response = sign_in(client, "mkowalski", "student-pass")
    assert response.status_code == 502
    assert f"could not reach patronpay at http://127.0.0.1:{port}." in response.text
    assert gateway.handoffs()[0]["error"] == "ConnectError"


def test_browser_cookie_reaches_the_proxy_on_another_port(
        gateway_server: ServerThread, gateway: SsoGateway) -> None:
    """Cookies are scoped to the host, not the port: the relayed session cookie goes with the
    browser's next request to the proxy."""
    with httpx.Client(base_url=gateway_server.url, timeout=10, follow_redirects=True) as browser:
        response = sign_in(browser, "mkowalski", "student-pass")
    assert json.loads(response.text) == {"cookie": "s3ss10n"}


def test_not_configured_is_a_clear_503() -> None:
    with ServerThread(create_app()) as running, httpx.Client(base_url=running.url) as http:
        page = http.get("/login")
        posted = http.post("/login", data={"username": "mkowalski", "password": "student-pass"})
    assert (page.status_code, posted.status_code) == (503, 503)
    assert "<h1>Gateway not configured</h1>" in page.text


def test_configure_checks_its_arguments(gateway: SsoGateway) -> None:
    with pytest.raises(ValueError, match="http"):
        gateway.configure("127.0.0.1:8000")
    with pytest.raises(ValueError, match="header"):
        gateway.configure("http://127.0.0.1:8000", header="X Remote: User")


def test_sso_in_the_combined_sandbox(proxy: ServerThread, calls: list[dict[str, Any]]) -> None:
    app = create_sandbox_app()
    app.state.sso.configure(proxy.url)
    with ServerThread(app) as running, httpx.Client(timeout=10) as http:
        login = urls(running.url)["sso_login"]
        assert login == running.url + "/sso/login"
        form = http.get(login, params={"next": "/"})
        assert 'action="/sso/login"' in form.text
        response = http.post(login, data={"username": "mkowalski", "password": "student-pass",
                                          "next": "/"})
    assert (response.status_code, response.headers["location"]) == (303, proxy.url + "/")
    assert response.headers.get_list("set-cookie") == [SESSION_COOKIE, OTHER_COOKIE]
    assert calls[0]["remote_user"] == "mkowalski"
