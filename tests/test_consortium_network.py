"""Fees owed at sister institutions (docs/consortium.md#fees-at-sister-institutions), over
loopback against the consortium sandbox: a patron signed in at Campus A sees what they owe at
Campus B, goes over with a one-use hand-off, and pays there through Campus B's store, posted to
Campus B's Alma; then Campus A's own fees through Campus A's store and Alma."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from support.consortium import ConsortiumDeployment, start_consortium
from support.waiting import wait_for

OPEN = {"campus-a": {"pay_network_fees": True}, "campus-b": {"pay_network_fees": True}}


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(tmp_path_factory.mktemp("consortium"), tables=OPEN)
    yield deployment
    deployment.stop()


def hand_off(d: ConsortiumDeployment, browser: httpx.Client, to: str) -> str:
    answer = browser.post(f"/campus-a/consortium/handoff/{to}", json={})
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    assert url.startswith(f"{d.base(to)}/consortium/enter?t=")
    return url


def test_a_patron_sees_and_pays_fees_at_both_institutions(d):
    browser = d.sign_in_sso("campus-a", "mkowalski")
    network = browser.get("/campus-a/consortium/network-fees").json()["institutions"]
    assert [(i["code"], i["name"], i["payable_total"]) for i in network] == [
        ("campus-b", "Campus B Libraries", "7.25")]
    assert [fee["id"] for fee in network[0]["fees"]] == ["8840011110005257"]

    # Campus A's own fees first: Campus A's store, Campus A's Alma.
    created_a, cid_a = d.pay("campus-a", browser)
    d.wait_for_state("campus-a", created_a["payment"]["id"], "posted")
    assert {line["itemcode"] for line in d.cashnet("campus-a").checkout(cid_a)["lines"]} == \
        {"LIB-LOST", "LIB-OVERDUE", "LIB-DAMAGE"}

    # Then over to Campus B, as the same user id, in the same browser.
    entered = browser.get(hand_off(d, browser, "campus-b"))
    assert entered.status_code == 303 and entered.headers["location"] == "/campus-b/"
    session = browser.get("/campus-b/api/session").json()
    assert (session["patron"]["id"], session["method"]) == ("mkowalski", "network")
    browser.headers["X-CSRF-Token"] = session["csrf_token"]
    created_b, cid_b = d.pay("campus-b", browser)
    posted = d.wait_for_state("campus-b", created_b["payment"]["id"], "posted")
    assert [line["itemcode"] for line in d.cashnet("campus-b").checkout(cid_b)["lines"]] == \
        ["B-OVERDUE"]
    assert urlsplit(created_b["checkout"]["action"]).path.endswith("/campus-b/cashnet/BFINESTEST")
    fee = d.alma("campus-b").user_state("mkowalski")["fees"][0]
    assert fee["transactions"][-1]["external_transaction_id"] == posted.cashnet_tx
    assert not [r for r in d.alma_calls("campus-a", method="POST")
                if "8840011110005257" in r["path"]]
    # Campus A's session is still Campus A's, and nothing is owed at Campus B any more.
    assert browser.get("/campus-a/api/session").json()["patron"]["id"] == "mkowalski"
    browser.headers["X-CSRF-Token"] = browser.get("/campus-a/api/session").json()["csrf_token"]
    assert browser.get("/campus-a/consortium/network-fees").json()["institutions"] == []


def test_a_hand_off_works_once_and_only_where_it_was_made_for(d):
    browser = d.sign_in_sso("campus-a", "mkowalski")
    url = hand_off(d, browser, "campus-b")
    stranger = d.browser()
    assert stranger.get(url).headers["location"] == "/campus-b/"
    again = d.browser().get(url)
    assert again.status_code == 303 and again.headers["location"] == "/campus-b/?error=handoff_used"
    # A token made for Campus B means nothing at Campus A, and a forged one nothing anywhere.
    token = url.split("t=", 1)[1]
    misplaced = d.browser().get(f"/campus-a/consortium/enter?t={token}")
    assert misplaced.headers["location"] == "/campus-a/?error=handoff_invalid"
    forged = d.browser().get(f"/campus-b/consortium/enter?t={token[:-4]}AAAA")
    assert forged.headers["location"] == "/campus-b/?error=handoff_invalid"


def test_a_hand_off_needs_a_session_and_its_csrf_token(d):
    assert d.browser().post("/campus-a/consortium/handoff/campus-b", json={}).status_code == 401
    browser = d.sign_in_sso("campus-a", "mkowalski")
    del browser.headers["X-CSRF-Token"]
    assert browser.post("/campus-a/consortium/handoff/campus-b", json={}).status_code == 403
    assert d.browser().get("/campus-a/consortium/network-fees").status_code == 401


def test_a_patron_unknown_at_the_sister_sees_nothing_of_it(d):
    browser = d.sign_in_sso("campus-b", "dokafor")  # Campus B's only
    assert browser.get("/campus-b/consortium/network-fees").json() == {"institutions": []}


def test_the_fees_page_gets_the_network_script_only_where_allowed(d, tmp_path):
    page = httpx.get(d.base("campus-a") + "/")
    assert '<script src="/campus-a/consortium/network.js" defer></script>' in page.text
    assert "network.js" not in httpx.get(d.base("campus-a") + "/receipt.html").text
    assert httpx.get(d.base("campus-a") + "/consortium/network.js").status_code == 200
    closed = start_consortium(tmp_path, tables={"campus-a": {"pay_network_fees": True}})
    try:
        assert "network.js" not in httpx.get(closed.base("campus-a") + "/").text
        browser = closed.sign_in_sso("campus-a", "mkowalski")
        assert browser.get("/campus-a/consortium/network-fees").status_code == 404
        assert browser.post("/campus-a/consortium/handoff/campus-b",
                            json={}).status_code in (404, 405)
    finally:
        closed.stop()


def test_the_fees_at_sisters_are_held_to_the_sessions_pace(tmp_path):
    """Each answer reads the sister's Alma, so a patron reloading it in a loop is held to the
    fees page's buckets (issue 14 item 1): 429 with Retry-After, and no Alma call refused."""
    deployment = start_consortium(tmp_path, tables=OPEN, session_burst="3",
                                  session_requests_per_minute="1")
    try:
        browser = deployment.sign_in_sso("campus-a", "mkowalski")
        before = len(deployment.alma_calls("campus-b"))
        answers = [browser.get("/campus-a/consortium/network-fees") for _ in range(10)]
        assert [a.status_code for a in answers] == [200] * 3 + [429] * 7
        assert answers[-1].json()["error"]["code"] == "rate_limited"
        assert int(answers[-1].headers["Retry-After"]) >= 1
        assert len(deployment.alma_calls("campus-b")) - before == 3  # one read per answer
    finally:
        deployment.stop()


def test_a_hand_off_names_no_patron_in_the_log(d, caplog):
    """A patron's id appears at INFO only where they sign in (issue 14 item 13): at the
    sister, when the hand-off is used, not when it is made."""
    caplog.set_level(logging.INFO)
    browser = d.sign_in_sso("campus-a", "mkowalski")
    hand_off(d, browser, "campus-b")
    (line,) = [r for r in caplog.records if getattr(r, "event", "") == "network_handoff"]
    assert (line.institution, line.to) == ("campus-a", "campus-b")
    assert not hasattr(line, "patron_id") and "mkowalski" not in line.getMessage()


def test_the_network_routes_have_the_guards_of_every_page(d, caplog):
    """The routes below /<code>/consortium/ answer a patron's browser like every other route:
    the security headers and no-store, the origin check on a POST, one access-log line."""
    caplog.set_level(logging.INFO)
    browser = d.sign_in_sso("campus-a", "mkowalski")
    answer = browser.get("/campus-a/consortium/network-fees")
    assert answer.status_code == 200
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    foreign = browser.post("/campus-a/consortium/handoff/campus-b", json={},
                           headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "bad_origin"
    assert foreign.headers["x-frame-options"] == "DENY"

    def logged() -> list[tuple[str, int]]:
        return [(r.method, r.status) for r in caplog.records
                if getattr(r, "event", "") == "request"
                and r.path == "/consortium/handoff/campus-b"]

    # The server thread writes the access line once the answer is sent, so the test may read
    # the capture before it is there: wait for it. The deployment is the module's, and an
    # earlier test's hand-off line may land here too: this request's line is counted.
    wait_for(lambda: ("POST", 403) in logged(), "the refused hand-off's access line")
    assert logged().count(("POST", 403)) == 1, logged()


def test_a_hand_off_refused_for_pace_is_not_spent_and_works_once_the_bucket_refills(tmp_path):
    """As for a Primo link: the sister's sign-in bucket for the user id is checked before the
    hand-off is spent, so one refused for pace still works (within its minute) once the
    bucket refills, and a used one is refused without taking a sign-in."""
    deployment = start_consortium(tmp_path, tables=OPEN, session_burst="1",
                                  session_requests_per_minute="1")
    try:
        now = [1_000.0]
        limits = deployment.services["campus-b"].patron_limits
        limits.sign_ins.clock = lambda: now[0]  # refills only when told
        assert limits.sign_in_wait("mkowalski") == 0  # an earlier sign-in there took the one
        browser = deployment.sign_in_sso("campus-a", "mkowalski")
        url = hand_off(deployment, browser, "campus-b")
        before = len(deployment.alma_calls("campus-b"))
        refused = browser.get(url)
        assert refused.headers["location"] == "/campus-b/?error=too_many_requests"
        assert len(deployment.alma_calls("campus-b")) == before  # Alma not asked
        assert browser.get("/campus-b/api/session").status_code == 401
        now[0] += 60  # a minute: the bucket holds one sign-in again
        assert browser.get(url).headers["location"] == "/campus-b/"
        assert browser.get("/campus-b/api/session").json()["patron"]["id"] == "mkowalski"
        now[0] += 60
        again = deployment.browser().get(url)
        assert again.headers["location"] == "/campus-b/?error=handoff_used"
        assert limits.sign_in_wait("mkowalski") == 0  # the used one took no sign-in
    finally:
        deployment.stop()
