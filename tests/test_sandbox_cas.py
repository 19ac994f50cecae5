"""The sandbox CAS server: login form, ticket redirects, the CAS XML, ticket rules (single use,
expiry, service binding, registered services, renew), CAS sessions and single logout, the
Shibboleth IdP profile and the XML variants, escaping, and the seeded campus accounts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from patronpay.serving import ServerThread
from sandbox.app import create_sandbox_app, urls
from sandbox.campus import load_campus_users
from sandbox.cas import CasServer, create_app

SERVICE = "http://127.0.0.1:8000/auth/cas"
T0 = datetime(2025, 2, 14, 15, 20, 1, tzinfo=UTC)
TICKET = re.compile(r"ST-\d+-[A-Za-z0-9_-]{32}")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    app = create_app()
    with ServerThread(app) as running:
        running.cas = app.state.cas  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def cas(server: ServerThread) -> CasServer:
    state: CasServer = server.cas  # type: ignore[attr-defined]
    state.reset()
    return state


@pytest.fixture
def client(server: ServerThread, cas: CasServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as http:
        yield http


def log_in(client: httpx.Client, user: str, password: str, service: str | None = SERVICE):
    form = {"username": user, "password": password}
    if service is not None:
        form["service"] = service
    return client.post("/login", data=form)


def ticket_from(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["ticket"][0]


def validate(client: httpx.Client, ticket: str | None, service: str | None = SERVICE,
             path: str = "/p3/serviceValidate") -> str:
    params = {name: value for name, value in (("service", service), ("ticket", ticket))
              if value is not None}
    response = client.get(path, params=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml;charset=UTF-8"
    return response.text


def failure(code: str, message: str) -> str:
    return ('<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">\n'
            f'    <cas:authenticationFailure code="{code}">{message}</cas:authenticationFailure>\n'
            "</cas:serviceResponse>\n")


# -- seed --------------------------------------------------------------------------------------

def test_seeded_campus_accounts() -> None:
    users = load_campus_users()
    assert {name: (u["password"], u["attributes"]) for name, u in users.items()} == {
        "mkowalski": ("student-pass", {"almaId": "mkowalski", "mail": "mkowalski@example.edu"}),
        "arivera": ("student-pass", {"almaId": "ana.rivera@example.edu"}),
        "tlee": ("staff-pass", {"almaId": "tlee"}),
        "dokafor": ("faculty-pass", {"almaId": "dokafor"}),
        "pchen": ("student-pass", {"almaId": "pchen"}),
        "rgarcia": ("student-pass", {"almaId": "rgarcia"}),
        "gone": ("student-pass", {"almaId": "nosuchpatron"}),
    }
    assert users["mkowalski"]["display_name"] == "Maria Kowalski"


# -- login -------------------------------------------------------------------------------------

def test_login_form_is_accessible_and_carries_the_service(client: httpx.Client) -> None:
    response = client.get("/login", params={"service": SERVICE + "?next=/fees"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in response.headers["content-security-policy"]
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    page = response.text
    assert '<input type="hidden" name="service" value="http://127.0.0.1:8000/auth/cas?next=/fees">' in page
    assert '<label for="username">User name</label>' in page
    assert '<label for="password">Password</label>' in page
    assert '<main id="main">' in page and "<h1>Log in</h1>" in page
    assert "<script" not in page
    assert client.get("/static/campus.css").headers["content-type"] == "text/css; charset=utf-8"


def test_right_credentials_redirect_to_the_service_with_a_ticket(
        client: httpx.Client, cas: CasServer) -> None:
    response = log_in(client, "mkowalski", "student-pass")
    location = response.headers["location"]
    ticket = location.removeprefix(SERVICE + "?ticket=")
    assert response.status_code == 302
    assert TICKET.fullmatch(ticket), location
    assert [(t["ticket"], t["user"], t["service"], t["used"]) for t in cas.tickets()] == [
        (ticket, "mkowalski", SERVICE, False)]
    assert response.cookies["CASTGC"].startswith("TGT-")


@pytest.mark.parametrize(("service", "expected"), [
    ("http://app.example/auth/cas?next=%2Ffees", "http://app.example/auth/cas?next=%2Ffees&ticket="),
    ("http://app.example/cb?a=1#frag", "http://app.example/cb?a=1&ticket={t}#frag"),
    ("https://app.example/cb", "https://app.example/cb?ticket="),
])
def test_ticket_is_appended_whether_or_not_the_service_has_a_query(
        client: httpx.Client, cas: CasServer, service: str, expected: str) -> None:
    cas.register_service("http://app.example/")
    cas.register_service("https://app.example/")
    response = log_in(client, "tlee", "staff-pass", service)
    ticket = cas.tickets()[0]["ticket"]
    want = expected.format(t=ticket) if "{t}" in expected else expected + ticket
    assert response.headers["location"] == want


@pytest.mark.parametrize(("user", "password"), [
    ("mkowalski", "wrong"), ("nobody", "student-pass"), ("mkowalski", ""),
    ("MKOWALSKI", "student-pass")])
def test_wrong_credentials_show_the_form_again(
        client: httpx.Client, cas: CasServer, user: str, password: str) -> None:
    response = log_in(client, user, password)
    assert response.status_code == 200
    assert "location" not in response.headers and "set-cookie" not in response.headers
    assert '<div class="alert" role="alert" id="login-error">' in response.text
    assert "The user name or password is not right. Try again." in response.text
    assert f'value="{user}" aria-invalid="true"' in response.text
    assert cas.tickets() == []


def test_login_without_service_shows_a_logged_in_page(client: httpx.Client) -> None:
    assert client.get("/login").status_code == 200
    response = log_in(client, "pchen", "student-pass", service=None)
    assert response.status_code == 200
    assert "You are logged in to the campus CAS as pchen." in response.text


@pytest.mark.parametrize("service", ["javascript:alert(1)", "/relative", "ftp://x.example/"])
def test_a_service_that_is_not_a_web_url_is_refused(
        client: httpx.Client, cas: CasServer, service: str) -> None:
    assert client.get("/login", params={"service": service}).status_code == 400
    response = log_in(client, "mkowalski", "student-pass", service)
    assert response.status_code == 400
    assert "Application not authorized" in response.text
    assert cas.tickets() == []


def test_user_controlled_values_are_escaped_in_html(client: httpx.Client, cas: CasServer) -> None:
    cas.register_service("http://x.example/")
    response = client.get("/login", params={"service": 'http://x.example/?a="><script>x'})
    assert "<script>x" not in response.text
    assert 'value="http://x.example/?a=&#34;&gt;&lt;script&gt;x"' in response.text
    wrong = log_in(client, "<b>me</b>", "nope")
    assert "<b>me</b>" not in wrong.text and "&lt;b&gt;me&lt;/b&gt;" in wrong.text


# -- serviceValidate ---------------------------------------------------------------------------

def test_p3_service_validate_success_with_attributes(client: httpx.Client, cas: CasServer) -> None:
    cas.set_clock(T0)
    ticket = ticket_from(log_in(client, "mkowalski", "student-pass"))
    assert validate(client, ticket) == (
        '<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">\n'
        "    <cas:authenticationSuccess>\n"
        "        <cas:user>mkowalski</cas:user>\n"
        "        <cas:attributes>\n"
        "            <cas:authenticationDate>2025-02-14T15:20:01Z</cas:authenticationDate>\n"
        "            <cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>\n"
        "            <cas:isFromNewLogin>true</cas:isFromNewLogin>\n"
        "            <cas:almaId>mkowalski</cas:almaId>\n"
        "            <cas:mail>mkowalski@example.edu</cas:mail>\n"
        "        </cas:attributes>\n"
        "    </cas:authenticationSuccess>\n"
        "</cas:serviceResponse>\n")
    assert cas.validations() == [{
        "seq": 1, "time": "2025-02-14T15:20:01Z", "endpoint": "/p3/serviceValidate",
        "service": SERVICE, "ticket": ticket, "outcome": "success", "reason": "ok",
        "user": "mkowalski"}]


def test_cas2_service_validate_releases_attributes_too(client: httpx.Client, cas: CasServer) -> None:
    cas.set_clock(T0)
    ticket = cas.issue_ticket("arivera", SERVICE)
    xml = validate(client, ticket, path="/serviceValidate")
    assert "<cas:user>arivera</cas:user>" in xml
    assert "<cas:almaId>ana.rivera@example.edu</cas:almaId>" in xml
    assert cas.validations()[0]["endpoint"] == "/serviceValidate"


def test_campus_user_whose_alma_id_differs(client: httpx.Client, cas: CasServer) -> None:
    cas.set_clock(T0)
    xml = validate(client, cas.issue_ticket("arivera", SERVICE))
    assert "<cas:user>arivera</cas:user>" in xml
    assert "<cas:almaId>ana.rivera@example.edu</cas:almaId>" in xml


def test_a_ticket_for_a_user_without_an_account_carries_no_released_attributes(
        client: httpx.Client, cas: CasServer) -> None:
    cas.set_clock(T0)
    xml = validate(client, cas.issue_ticket("jsmith", SERVICE, from_new_login=False))
    assert xml.splitlines()[2:9] == [
        "        <cas:user>jsmith</cas:user>",
        "        <cas:attributes>",
        "            <cas:authenticationDate>2025-02-14T15:20:01Z</cas:authenticationDate>",
        "            <cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>",
        "            <cas:isFromNewLogin>false</cas:isFromNewLogin>",
        "        </cas:attributes>",
        "    </cas:authenticationSuccess>"]


def test_tickets_are_single_use(client: httpx.Client, cas: CasServer) -> None:
    ticket = ticket_from(log_in(client, "dokafor", "faculty-pass"))
    assert "<cas:authenticationSuccess>" in validate(client, ticket)
    assert validate(client, ticket) == failure("INVALID_TICKET", f"Ticket '{ticket}' not recognized")
    assert [(v["outcome"], v["reason"]) for v in cas.validations()] == [
        ("success", "ok"), ("INVALID_TICKET", "replayed")]
    assert cas.tickets()[0]["used"] is True


def test_tickets_expire_after_sixty_seconds(client: httpx.Client, cas: CasServer) -> None:
    cas.set_clock(T0)
    on_time = cas.issue_ticket("mkowalski", SERVICE)
    late = cas.issue_ticket("mkowalski", SERVICE)
    assert cas.tickets()[0]["expires_at"] == "2025-02-14T15:21:01Z"
    cas.set_clock(T0 + timedelta(seconds=60))
    assert "<cas:authenticationSuccess>" in validate(client, on_time)
    cas.set_clock(T0 + timedelta(seconds=60, milliseconds=1))
    assert validate(client, late) == failure("INVALID_TICKET", f"Ticket '{late}' not recognized")
    assert cas.validations()[-1]["reason"] == "expired"


def test_ticket_lifetime_is_settable(client: httpx.Client, cas: CasServer) -> None:
    cas.ticket_ttl_s = 10
    cas.set_clock(T0)
    ticket = cas.issue_ticket("mkowalski", SERVICE)
    cas.set_clock(T0 + timedelta(seconds=11))
    assert "<cas:authenticationFailure" in validate(client, ticket)
    cas.reset()
    assert cas.ticket_ttl_s == 60.0


def test_tickets_are_bound_to_their_service_and_spent_by_a_mismatch(
        client: httpx.Client, cas: CasServer) -> None:
    ticket = cas.issue_ticket("mkowalski", SERVICE + "?next=/fees")
    assert validate(client, ticket, SERVICE) == failure(
        "INVALID_SERVICE",
        f"Ticket '{ticket}' does not match supplied service. The original service was "
        f"'{SERVICE}?next=/fees' and the supplied service was '{SERVICE}'.")
    assert validate(client, ticket, SERVICE + "?next=/fees") == failure(
        "INVALID_TICKET", f"Ticket '{ticket}' not recognized")
    assert [(v["outcome"], v["reason"]) for v in cas.validations()] == [
        ("INVALID_SERVICE", "service"), ("INVALID_TICKET", "replayed")]


@pytest.mark.parametrize(("ticket", "service"), [(None, SERVICE), ("ST-1-x", None), ("", "")])
def test_missing_parameters_are_an_invalid_request(
        client: httpx.Client, cas: CasServer, ticket: str | None, service: str | None) -> None:
    assert validate(client, ticket, service) == failure(
        "INVALID_REQUEST", "'service' and 'ticket' parameters are both required")


def test_unknown_tickets_and_user_values_are_escaped_in_xml(client: httpx.Client) -> None:
    assert validate(client, "ST-<x>&") == failure(
        "INVALID_TICKET", "Ticket 'ST-&lt;x&gt;&amp;' not recognized")


def test_attribute_values_are_escaped_and_multi_valued_attributes_repeat() -> None:
    app = create_app({"o'brien": {"password": "pw", "display_name": "Pat O'Brien",
                                  "attributes": {"almaId": "pob<1>&", "group": ["a", "b"]}}})
    state: CasServer = app.state.cas
    state.set_clock(T0)
    with ServerThread(app) as running, httpx.Client(base_url=running.url) as http:
        ticket = ticket_from(log_in(http, "o'brien", "pw"))
        lines = validate(http, ticket).splitlines()
    assert lines[2] == "        <cas:user>o'brien</cas:user>"
    assert lines[7:10] == ["            <cas:almaId>pob&lt;1&gt;&amp;</cas:almaId>",
                           "            <cas:group>a</cas:group>",
                           "            <cas:group>b</cas:group>"]


# -- CAS sessions ------------------------------------------------------------------------------

def test_a_cas_session_skips_the_form_until_renew_or_logout(
        client: httpx.Client, cas: CasServer) -> None:
    ticket_from(log_in(client, "rgarcia", "student-pass"))
    again = client.get("/login", params={"service": SERVICE})
    second = ticket_from(again)
    assert again.headers["location"] == f"{SERVICE}?ticket={second}"
    assert [t["from_new_login"] for t in cas.tickets()] == [True, False]
    assert "<cas:isFromNewLogin>false</cas:isFromNewLogin>" in validate(client, second)
    assert client.get("/login").text.count("logged in to the campus CAS as rgarcia") == 1
    renew = client.get("/login", params={"service": SERVICE, "renew": "true"})
    assert renew.status_code == 200 and "<h1>Log in</h1>" in renew.text
    out = client.get("/logout", params={"service": SERVICE})
    assert out.status_code == 200 and "Logout successful" in out.text
    assert f'<a href="{SERVICE}">' in out.text
    assert client.get("/login", params={"service": SERVICE}).status_code == 200
    assert len(cas.tickets()) == 2


def test_gateway_without_a_session_returns_without_a_ticket(
        client: httpx.Client, cas: CasServer) -> None:
    response = client.get("/login", params={"service": SERVICE, "gateway": "true"})
    assert (response.status_code, response.headers["location"]) == (302, SERVICE)
    assert cas.tickets() == []


# -- through the combined sandbox --------------------------------------------------------------

def test_cas_in_the_combined_sandbox() -> None:
    app = create_sandbox_app()
    with ServerThread(app) as running:
        base = urls(running.url)["cas_url"]
        assert base == running.url + "/cas"
        with httpx.Client(timeout=10) as http:
            form = http.get(f"{base}/login", params={"service": SERVICE})
            assert 'action="/cas/login"' in form.text
            assert 'href="/cas/static/campus.css"' in form.text
            response = http.post(f"{base}/login", data={
                "service": SERVICE, "username": "gone", "password": "student-pass"})
            ticket = ticket_from(response)
            assert response.cookies.get("CASTGC", path="/cas")
            xml = http.get(f"{base}/p3/serviceValidate",
                           params={"service": SERVICE, "ticket": ticket}).text
    assert "<cas:user>gone</cas:user>" in xml
    assert "<cas:almaId>nosuchpatron</cas:almaId>" in xml
    assert app.state.cas.validations()[0]["outcome"] == "success"


# -- what real servers do: registered services, renew, single logout ----------------------------

def test_only_registered_services_get_tickets(client: httpx.Client, cas: CasServer) -> None:
    elsewhere = "https://elsewhere.example.edu/auth/cas"
    refused = log_in(client, "mkowalski", "student-pass", elsewhere)
    assert refused.status_code == 400 and "Application not authorized" in refused.text
    assert "is not registered with this CAS server" in refused.text
    assert client.get("/login", params={"service": elsewhere}).status_code == 400
    assert cas.tickets() == []
    # A ticket minted for it anyway is refused at validation.
    ticket = cas.issue_ticket("mkowalski", elsewhere)
    assert validate(client, ticket, elsewhere) == failure(
        "INVALID_SERVICE", f"Service '{elsewhere}' is not registered with this CAS server.")
    cas.register_service("https://elsewhere.example.edu/")
    assert ticket_from(log_in(client, "mkowalski", "student-pass", elsewhere))


def test_renew_on_validation_refuses_a_ticket_from_a_cas_session(
        client: httpx.Client, cas: CasServer) -> None:
    ticket_from(log_in(client, "pchen", "student-pass"))
    from_session = ticket_from(client.get("/login", params={"service": SERVICE}))
    response = client.get("/p3/serviceValidate",
                          params={"service": SERVICE, "ticket": from_session, "renew": "true"})
    assert "<cas:authenticationFailure code=\"INVALID_TICKET\">" in response.text
    assert cas.validations()[-1]["reason"] == "renew"
    fresh = ticket_from(log_in(client, "pchen", "student-pass"))
    response = client.get("/p3/serviceValidate",
                          params={"service": SERVICE, "ticket": fresh, "renew": "true"})
    assert "<cas:authenticationSuccess>" in response.text


def test_logout_posts_a_single_logout_request_to_each_service(
        client: httpx.Client, cas: CasServer) -> None:
    """A stand-in service on loopback records what the CAS server posts to it."""
    received = []

    async def service(request):
        received.append(parse_qs((await request.body()).decode()))
        return PlainTextResponse("ok")

    with ServerThread(Starlette(routes=[Route("/auth/cas", service, methods=["POST"])])) as app:
        ticket = ticket_from(log_in(client, "tlee", "staff-pass", app.url + "/auth/cas"))
        assert client.get("/logout").status_code == 200
    assert [(e["service"], e["ticket"], e["status"]) for e in cas.logouts()] == [
        (app.url + "/auth/cas", ticket, 200)]
    request = received[0]["logoutRequest"][0]
    assert request.startswith(
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"')
    assert f"<samlp:SessionIndex>{ticket}</samlp:SessionIndex>" in request
    # Without a CAS session there is nobody to tell.
    assert client.get("/logout").status_code == 200
    assert len(cas.logouts()) == 1


# -- the Shibboleth IdP profile and the XML variants --------------------------------------------

def test_shibboleth_profile_long_tickets_and_no_p3_path(client: httpx.Client, cas: CasServer) -> None:
    cas.configure(profile="shibboleth")
    ticket = ticket_from(log_in(client, "arivera", "student-pass"))
    assert 1000 < len(ticket) < 8192 and ticket.startswith("ST-")
    assert client.get("/p3/serviceValidate", params={"service": SERVICE, "ticket": ticket}
                      ).status_code == 404
    xml = validate(client, ticket, path="/serviceValidate")
    assert "<cas:almaId>ana.rivera@example.edu</cas:almaId>" in xml


def test_attribute_layouts_and_leading_whitespace(client: httpx.Client, cas: CasServer) -> None:
    cas.configure(attribute_layout="flat")
    flat = validate(client, cas.issue_ticket("arivera", SERVICE))
    assert "<cas:attributes>" not in flat
    assert "        <cas:almaId>ana.rivera@example.edu</cas:almaId>\n" in flat
    cas.configure(attribute_layout="name_value", leading_whitespace=True)
    named = validate(client, cas.issue_ticket("arivera", SERVICE))
    assert named.startswith('\n  \n<?xml version="1.0" encoding="UTF-8"?>\n<cas:serviceResponse')
    assert '<cas:attribute name="almaId" value="ana.rivera@example.edu"/>' in named
    with pytest.raises(ValueError):
        cas.configure(attribute_layout="sideways")
