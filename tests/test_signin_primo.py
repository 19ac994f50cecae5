"""Primo's "Pay fines" link as real campuses send it (issue 12: the institution's case,
Alma-Summon's `iss: "soa"`) and as an attacker uses it (issue 14: a token replayed, a link that
would swap a signed-in patron's session), over loopback against the sandbox."""

import httpx
from support.signin import location

from proxy.db import Database
from proxy.spent_tokens import PURGE_EVERY_SECONDS, SpentTokens


def link(d, user="mkowalski", **claims):
    return f"{d.url}/auth/primo?jwt={d.alma.primo_token(user, **claims)}"


def who(browser: httpx.Client) -> str | None:
    answer = browser.get("/api/session")
    return answer.json()["patron"]["id"] if answer.status_code == 200 else None


def test_a_token_works_once(deploy):
    d = deploy()
    url = link(d)
    first = d.browser()
    assert location(first.get(url)) == "/"
    assert who(first) == "mkowalski"
    replay = d.browser()  # the link copied from a shared computer's history, or a log
    assert location(replay.get(url)) == "/?error=primo_token_used"
    assert who(replay) is None


def test_spent_tokens_are_shared_by_processes_and_forgotten_after_expiry(tmp_path):
    now = [1_000_000.0]
    one = SpentTokens(Database(tmp_path / "ledger.sqlite3"), lambda: now[0])
    other = SpentTokens(Database(tmp_path / "ledger.sqlite3"), lambda: now[0])  # another process
    assert one.spend("Prima:ABC:1", until=now[0] + 3600)
    assert not other.spend("Prima:ABC:1", until=now[0] + 3600)
    now[0] += 3600 + PURGE_EVERY_SECONDS + 1
    assert other.spend("Prima:NEW:2", until=now[0] + 60)
    count = one.db.read_one("SELECT COUNT(*) AS n FROM spent_tokens")["n"]
    assert count == 1  # the long-expired one was cleared on the way


def test_a_link_for_another_patron_asks_before_switching(deploy):
    d = deploy()
    browser = d.sign_in_sso("pchen")
    answer = browser.get(link(d, "mkowalski"))
    assert location(answer) == "/?switch=primo"
    assert who(browser) == "pchen"  # nothing swapped behind the patron's back
    assert browser.get("/auth/primo/switch").json() == {
        "current": {"name": "Priya Chen"}, "next": {"name": "Maria Kowalski"}}
    # Another browser cannot answer for this one, and an answer needs the CSRF token.
    stranger = d.sign_in_sso("tlee")
    stranger.cookies.set("patronpay_primo_switch", browser.cookies["patronpay_primo_switch"],
                         path="/auth/primo")
    assert stranger.post("/auth/primo/switch", json={"continue": True}).status_code == 404
    assert who(stranger) == "tlee"
    no_token = browser.post("/auth/primo/switch", json={"continue": True},
                            headers={"X-CSRF-Token": "wrong"})
    assert no_token.status_code == 403
    # "Stay signed in as Priya": nothing changes, and the question is gone.
    assert browser.post("/auth/primo/switch", json={"continue": False}).status_code == 200
    assert who(browser) == "pchen"
    assert browser.get("/auth/primo/switch").status_code == 404
    # Another link, "Continue as Maria": now the session is hers.
    assert location(browser.get(link(d, "mkowalski"))) == "/?switch=primo"
    assert browser.post("/auth/primo/switch", json={"continue": True}).status_code == 200
    assert who(browser) == "mkowalski"


def test_a_link_for_the_signed_in_patron_asks_nothing(deploy):
    d = deploy()
    browser = d.sign_in_sso("mkowalski")
    assert location(browser.get(link(d, "mkowalski"))) == "/"
    assert who(browser) == "mkowalski"


def test_the_institution_is_compared_without_regard_to_case(deploy):
    d = deploy()
    browser = d.browser()
    assert location(browser.get(link(d, institution="01patron_inst"))) == "/"
    assert who(browser) == "mkowalski"


def test_alma_summon_tokens_carry_iss_soa(deploy):
    d = deploy()
    assert location(d.browser().get(link(d, iss="soa"))) == "/?error=primo_token_invalid"
    d = deploy(primo_issuer="Prima, soa")
    assert d.settings.primo_issuer == ("Prima", "soa")
    for issuer in ("soa", "Prima"):
        browser = d.browser()
        assert location(browser.get(link(d, iss=issuer))) == "/"
        assert who(browser) == "mkowalski"
    assert location(d.browser().get(link(d, iss="Primo"))) == "/?error=primo_token_invalid"


def test_through_the_sandbox_primo_page_in_its_alma_summon_profile(deploy):
    d = deploy(primo_issuer="Prima,soa")
    d.sandbox_app.state.primo.configure(d.url + "/auth/primo", profile="alma_summon",
                                        institution_case="lower")
    pay_link = location(httpx.get(d.sandbox.url + "/primo/pay", params={"user": "tlee"}))
    browser = d.browser()
    assert location(browser.get(pay_link)) == "/"
    assert who(browser) == "tlee"


def test_a_link_refused_for_pace_is_not_spent_and_works_once_the_bucket_refills(deploy):
    """The patron's sign-in bucket is checked after the signature and before the `jti` is
    spent: a sign-in refused for pace keeps the link. A forged token and a replay take no
    token from the bucket (a replay is refused before it)."""
    d = deploy(session_burst="1", session_requests_per_minute="1")
    now = [1_000.0]
    d.services.patron_limits.sign_ins.clock = lambda: now[0]  # refills only when told
    first, url = d.browser(), link(d)
    assert location(first.get(link(d))) == "/"  # takes the one sign-in there is
    before = len(d.alma_calls())
    refused = d.browser()
    assert location(refused.get(url)) == "/?error=too_many_requests"
    assert who(refused) is None and len(d.alma_calls()) == before  # Alma not asked
    now[0] += 60  # a minute: the bucket holds one sign-in again
    assert location(refused.get(url)) == "/"
    assert who(refused) == "mkowalski"
    assert location(d.browser().get(url)) == "/?error=primo_token_used"  # spent now

    now[0] += 60
    forged = url[:-8] + ("AAAAAAAA" if not url.endswith("AAAAAAAA") else "BBBBBBBB")
    assert location(d.browser().get(forged)) == "/?error=primo_token_invalid"
    assert location(d.browser().get(url)) == "/?error=primo_token_used"
    assert location(d.browser().get(link(d))) == "/"  # neither took the sign-in
