"""CAS sign-in as real campuses run it (issue 12) and as an attacker tries it (issue 14), over
loopback against the sandbox CAS: a Shibboleth IdP serving CAS, the attribute layouts seen in
the wild, long tickets, sign-out on a shared computer, single logout, renew, login CSRF."""

import hashlib
import sqlite3

import httpx
import pytest
from support.signin import cas_log_in, cas_round_trip, location, query, to_cas

from proxy.db import Database
from proxy.patron_sessions import COOKIE_NAME, SessionStore
from proxy.patrons import Patron


def signed_in_as(browser: httpx.Client) -> str | None:
    answer = browser.get("/api/session")
    return answer.json()["patron"]["id"] if answer.status_code == 200 else None


def test_cas_sign_in_through_a_shibboleth_idp(deploy):
    """The IdP has no /p3/ path and issues tickets of well over a kilobyte."""
    d = deploy(cas_validate_path="/serviceValidate")
    cas = d.sandbox_app.state.cas
    cas.configure(profile="shibboleth")
    browser = d.browser()
    ticket, landed = cas_round_trip(browser, "arivera", "student-pass", "/?lang=es")
    assert len(ticket) > 1000
    assert location(landed) == "/?lang=es"
    assert signed_in_as(browser) == "ana.rivera@example.edu"
    assert [(v["endpoint"], v["outcome"]) for v in cas.validations()] == [
        ("/serviceValidate", "success")]


def test_the_default_path_against_a_shibboleth_idp_is_a_clean_refusal(deploy):
    d = deploy()
    d.sandbox_app.state.cas.configure(profile="shibboleth")
    _, landed = cas_round_trip(d.browser(), "arivera", "student-pass")
    assert location(landed) == "/?error=cas_unavailable"  # its /p3/ answers 404


@pytest.mark.parametrize("layout", ["nested", "flat", "name_value"])
@pytest.mark.parametrize("leading_whitespace", [False, True])
def test_every_attribute_layout_seen_in_the_wild(deploy, layout, leading_whitespace):
    d = deploy()  # the Alma id is the almaId attribute (PATRONPAY_CAS_USER_ATTRIBUTE)
    d.sandbox_app.state.cas.configure(attribute_layout=layout,
                                      leading_whitespace=leading_whitespace)
    browser = d.browser()
    _, landed = cas_round_trip(browser, "arivera", "student-pass")
    assert location(landed) == "/"
    assert signed_in_as(browser) == "ana.rivera@example.edu"


def test_tickets_up_to_8_kib_reach_cas_and_longer_ones_do_not(deploy):
    d = deploy()
    cas = d.sandbox_app.state.cas
    for length, asked in ((8192, 1), (8193, 0)):
        browser = d.browser()
        to_cas(browser)
        answer = browser.get("/auth/cas", params={"ticket": "ST-" + "a" * (length - 3)})
        assert location(answer) == "/?error=cas_failed"
        assert len(cas.validations()) == asked  # the longer one was refused before asking
        cas.reset()


def test_a_ticket_in_a_browser_that_did_not_start_a_cas_sign_in_restarts_it(deploy):
    """Login CSRF: an attacker's own ticket pushed into the victim's browser (a link or an
    image) must not sign the victim in as the attacker."""
    d = deploy()
    cas = d.sandbox_app.state.cas
    attackers = cas.issue_ticket("tlee", d.url + "/auth/cas")
    victim = d.browser()
    answer = victim.get("/auth/cas", params={"ticket": attackers})
    assert location(answer).startswith(d.settings.cas_url + "/login?service=")
    assert signed_in_as(victim) is None
    assert cas.validations() == []  # never even asked about
    # The restarted sign-in is the victim's own.
    back = cas_log_in(victim, location(answer), "mkowalski", "student-pass")
    assert location(victim.get(back)) == "/"
    assert signed_in_as(victim) == "mkowalski"


def test_signing_out_ends_the_cas_session_on_a_shared_computer(deploy):
    """Reported against a real CAS server: after "Sign out" the next person at the library
    computer who picks CAS was signed in as the previous patron, with no password."""
    d = deploy()
    computer = d.browser()
    _, landed = cas_round_trip(computer, "arivera", "student-pass")
    computer.headers["X-CSRF-Token"] = computer.get("/api/session").json()["csrf_token"]
    out = computer.post("/auth/logout", json={})
    assert out.status_code == 200
    next_url = out.json()["next"]
    assert next_url.startswith(d.settings.cas_url + "/logout?")
    assert query(next_url)["service"] == d.url + "/"
    # Had the browser stopped here, CAS would hand the next person a ticket for arivera:
    assert "ticket=" in location(computer.get(to_cas(computer)))
    # The page follows `next`: CAS's own logout, with a way back to our page.
    cas_page = computer.get(next_url)
    assert cas_page.status_code == 200 and "Logout successful" in cas_page.text
    assert f'href="{d.url}/"' in cas_page.text
    # The next person who picks CAS gets the password form.
    form = computer.get(to_cas(computer))
    assert form.status_code == 200 and "<h1>Log in</h1>" in form.text
    assert signed_in_as(computer) is None


def test_sign_out_of_other_sessions_sends_nobody_to_cas(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    assert patron.post("/auth/logout", json={}).json() == {"ok": True}


def test_the_cas_servers_single_logout_ends_the_session_it_names(deploy):
    """Signing out of CAS anywhere (another campus application, CAS's own page) ends our
    session too: CAS posts a logoutRequest naming the ticket."""
    d = deploy()
    cas = d.sandbox_app.state.cas
    browser = d.browser()
    ticket, _ = cas_round_trip(browser, "mkowalski", "student-pass")
    other = d.sign_in_sso("tlee")
    stored = d.services.db.read_one("SELECT cas_ticket_hash FROM sessions WHERE patron_id = ?",
                                    ("mkowalski",))["cas_ticket_hash"]
    assert stored == hashlib.sha256(ticket.encode()).hexdigest()  # the hash, not the ticket
    assert browser.get(d.settings.cas_url + "/logout").status_code == 200
    assert [(e["ticket"], e["status"]) for e in cas.logouts()] == [(ticket, 200)]
    assert signed_in_as(browser) is None
    assert signed_in_as(other) == "tlee"


def logout_request(ticket: str, extra: str = "") -> str:
    return ('<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="LR-1" Version="2.0" '
            'IssueInstant="2025-02-14T15:20:01Z"><saml:NameID>@NOT_USED@</saml:NameID>'
            f"<samlp:SessionIndex>{ticket}</samlp:SessionIndex>{extra}</samlp:LogoutRequest>")


def test_single_logout_requests_are_parsed_safely_and_bounded(deploy):
    d = deploy()
    browser = d.browser()
    ticket, _ = cas_round_trip(browser, "mkowalski", "student-pass")
    backchannel = httpx.Client(base_url=d.url)  # a CAS server: no Origin, no cookies
    d.clients.append(backchannel)
    entities = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
                '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' + logout_request("&b;"))
    external = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                + logout_request(ticket + "&x;"))
    for body, status in ((entities, 400), (external, 400), ("<not-xml", 400),
                         (logout_request(""), 400), (logout_request("ST-" + "a" * 9000), 400),
                         (logout_request("ST-x", "<x/>" * 20_000), 413),
                         (logout_request("ST-someone-else"), 200)):
        answer = backchannel.post("/auth/cas", data={"logoutRequest": body})
        assert answer.status_code == status, body[:80]
        assert signed_in_as(browser) == "mkowalski"
    assert backchannel.post("/auth/cas", data={"logoutRequest": logout_request(ticket)}
                            ).status_code == 200
    assert signed_in_as(browser) is None


def test_renew_asks_for_the_password_even_with_a_cas_session(deploy):
    """PATRONPAY_CAS_RENEW, for public terminals: a CAS session left behind signs nobody in."""
    d = deploy(cas_renew="true")
    computer = d.browser()
    cas_round_trip(computer, "arivera", "student-pass")  # leaves a CAS session behind
    login_url = to_cas(computer)
    assert query(login_url)["renew"] == "true"
    form = computer.get(login_url)
    assert form.status_code == 200 and "<h1>Log in</h1>" in form.text
    # And a ticket CAS issued from its session alone is refused at validation.
    cas = d.sandbox_app.state.cas
    silent = cas.issue_ticket("arivera", d.url + "/auth/cas", from_new_login=False)
    assert location(computer.get("/auth/cas", params={"ticket": silent})) == "/?error=cas_failed"
    assert cas.validations()[-1]["reason"] == "renew"


def test_an_existing_ledger_gains_the_ticket_column_and_keeps_working(tmp_path):
    path = tmp_path / "old.sqlite3"
    Database(path).close()
    with sqlite3.connect(path) as old:  # as a ledger made before the column existed
        old.execute("DROP INDEX sessions_by_cas_ticket")
        old.execute("ALTER TABLE sessions DROP COLUMN cas_ticket_hash")
        old.execute("DROP TABLE spent_tokens")
    store = SessionStore(Database(path), ["k" * 40], idle_seconds=60, max_seconds=600)
    session, _ = store.create(Patron("p1", "Pat", "One", "", "EXTERNAL"), "cas",
                              cas_ticket_hash="abc")
    assert store.end_by_cas_ticket("abc") == 1
    assert COOKIE_NAME  # the cookie name is unchanged by the migration
