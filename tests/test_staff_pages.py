"""The staff pages over HTTP (docs/operations.md#staff-pages): who gets in (a listed user or a
group member, by the SSO header from a trusted proxy or by CAS) and who gets 403; staff
sessions apart from patrons'; actions that need the session's CSRF token and are recorded
under the staff member's id; and values from Alma, CashNet and browsers shown, never obeyed."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import httpx
import pytest
from support.alma import payments_carrying
from support.waiting import wait_for

from patronpay.serving import ServerThread
from proxy.config import ConfigError, load_settings
from proxy.db import Database
from proxy.spreadsheet import text_cell
from proxy.staffweb.auth import grant, groups_in_header, still_granted
from proxy.staffweb.sessions import StaffSessionStore
from sandbox.cas import create_app as create_cas_app

D = Decimal
LOST, OVERDUE = "7730018830004146", "7730012450004146"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def staff_browser(d, user: str = "tlee", groups: str | None = None) -> httpx.Client:
    """A browser signed in to the staff pages by the web server's sign-on."""
    client = d.browser()
    headers = {"X-Remote-User": user} | ({"X-Remote-Groups": groups} if groups else {})
    answer = client.get("/staff/auth/sso?next=/staff/", headers=headers)
    assert (answer.status_code, answer.headers.get("location")) == (303, "/staff/"), answer.text
    return client


def token_on(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1)


def attention_payment(d) -> tuple[str, str]:
    """A payment whose fee was closed in Alma before posting: (payment id, tx)."""
    payment_id, cid = d.checkout("mkowalski", amount="62.00")
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")
    tx = d.cashnet.complete(cid)["tx"]
    d.wait_for_state(payment_id, "attention")
    return payment_id, tx


def staff_events(d, payment_id: str) -> list[tuple[str, str, dict]]:
    return [(e["kind"], e["source"], e["detail"]) for e in d.ledger.events(payment_id)
            if e["source"].startswith("staff:")]


def text_of(html: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --- who gets in ---


def test_staff_sign_in_by_sso_opens_the_pages_and_starts_no_patron_session(deploy):
    d = deploy()
    staff = staff_browser(d)
    home = staff.get("/staff/")
    assert home.status_code == 200
    assert home.headers["cache-control"] == "no-store"
    assert "Signed in as tlee" in text_of(home.text)
    assert staff.get("/api/session").status_code == 401  # tlee is a patron too: not signed in
    assert set(staff.cookies.keys()) == {"patronpay_staff"}


def test_a_patron_session_never_opens_the_staff_pages(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    to_sign_in = patron.get("/staff/")
    assert to_sign_in.status_code == 303
    assert to_sign_in.headers["location"].endswith("/login?next=/staff")  # the campus sign-on
    # The patron's own cookie, presented as a staff cookie, names no staff session either.
    patron.cookies.set("patronpay_staff", patron.cookies["patronpay_session"])
    assert patron.get("/staff/payments").status_code == 303
    # Signing in to the staff pages as that patron: 403, a plain page, no staff session.
    refused = patron.get("/staff/auth/sso?next=/staff/", headers={"X-Remote-User": "mkowalski"})
    assert refused.status_code == 403
    assert "mkowalski may not use the staff pages" in text_of(refused.text)
    assert "Sign out" not in refused.text and "/staff/payments" not in refused.text
    assert patron.get("/staff/").status_code == 303
    assert patron.get("/api/session").json()["patron"]["id"] == "mkowalski"  # untouched


def test_an_unlisted_user_and_an_untrusted_sender_get_403(deploy):
    d = deploy()
    browser = d.browser()
    assert browser.get("/staff/auth/sso", headers={"X-Remote-User": "pchen"}).status_code == 403
    assert browser.get("/staff/auth/sso").status_code == 403  # no user named
    assert browser.get("/staff/").status_code == 303
    elsewhere = deploy(trusted_proxies="192.0.2.1/32")  # our loopback peer is not the proxy
    refused = elsewhere.browser().get("/staff/auth/sso", headers={"X-Remote-User": "tlee"})
    assert refused.status_code == 403
    assert "did not come through this site's web server" in text_of(refused.text)


def test_a_group_in_the_sign_on_header_lets_members_in(deploy):
    d = deploy(staff_users="", staff_group="circulation,bursar-office",
               staff_group_header="X-Remote-Groups")
    member = staff_browser(d, "pchen", groups="students; bursar-office")
    assert member.get("/staff/").status_code == 200
    browser = d.browser()
    for groups in ("students", "bursar", ""):
        answer = browser.get("/staff/auth/sso", headers={"X-Remote-User": "rgarcia",
                                                         "X-Remote-Groups": groups})
        assert answer.status_code == 403, groups
    # tlee is listed nowhere now: the user list is empty.
    assert browser.get("/staff/auth/sso", headers={"X-Remote-User": "tlee"}).status_code == 403


def test_sign_in_by_cas_with_a_group_attribute(deploy):
    cas_app = create_cas_app({
        "ana": {"password": "pw", "display_name": "Ana", "attributes": {
            "memberOf": ["library-staff", "faculty"]}},
        "sam": {"password": "pw", "display_name": "Sam", "attributes": {"memberOf": "students"}},
    })
    with ServerThread(cas_app) as cas:
        d = deploy(staff_signin="cas", cas_url=cas.url, staff_users="",
                   staff_group="library-staff", staff_group_attribute="memberOf")
        service = d.url + "/staff/auth/cas"

        def sign_in(user: str) -> tuple[httpx.Client, httpx.Response]:
            browser = d.browser()
            to_cas = browser.get("/staff/payments?state=attention")
            assert to_cas.status_code == 303
            assert to_cas.headers["location"] == "/staff/auth/cas?next=%2Fstaff%2Fpayments"
            to_login = browser.get(to_cas.headers["location"])
            assert to_login.headers["location"].startswith(cas.url + "/login?service=")
            ticket = cas_app.state.cas.issue_ticket(user, service)
            return browser, browser.get(f"/staff/auth/cas?ticket={ticket}")

        staff, answer = sign_in("ana")
        assert (answer.status_code, answer.headers["location"]) == (303, "/staff/payments")
        assert staff.get("/staff/payments").status_code == 200
        _, refused = sign_in("sam")
        assert refused.status_code == 403
        # With CAS chosen, the SSO path is closed, whatever header comes with it.
        assert d.browser().get("/staff/auth/sso", headers={"X-Remote-User": "ana"}).status_code \
            == 404


def test_staff_pages_are_off_unless_configured(deploy):
    d = deploy(staff_signin="", staff_users="")
    browser = d.browser()
    assert browser.get("/staff/").status_code == 404
    assert browser.get("/staff/auth/sso", headers={"X-Remote-User": "tlee"}).status_code == 404


def test_signing_out_ends_the_staff_session(deploy):
    d = deploy()
    staff = staff_browser(d)
    token = token_on(staff, "/staff/")
    cookie = staff.cookies["patronpay_staff"]
    out = staff.post("/staff/sign-out", data={"csrf_token": token})
    assert (out.status_code, out.headers["location"]) == (303, "/staff/signed-out")
    assert staff.get("/staff/signed-out").status_code == 200
    replay = d.browser()
    replay.cookies.set("patronpay_staff", cookie)
    assert replay.get("/staff/").status_code == 303


# --- actions ---


def test_retry_needs_the_csrf_token_and_is_recorded_with_the_staff_id(deploy):
    d = deploy()
    payment_id, tx = attention_payment(d)
    staff = staff_browser(d)
    page = f"/staff/payments/{payment_id}"
    token = token_on(staff, page)
    other_token = token_on(staff_browser(d), "/staff/")
    d.alma.set_fee("mkowalski", OVERDUE, balance="4.75", status="ACTIVE")  # fixed in Alma

    retry = f"{page}/retry"
    assert staff.post(retry, data={"other": "field"}).status_code == 403  # no token
    assert staff.post(retry, data={"csrf_token": other_token}).status_code == 403
    assert staff.post(retry, data={"csrf_token": token},
                      headers={"Origin": "https://elsewhere.example"}).status_code == 403
    assert staff.post(retry, content=f'{{"csrf_token": "{token}"}}',
                      headers={"Content-Type": "application/json"}).status_code == 415
    assert d.ledger.payment(payment_id).state == "attention"
    assert staff_events(d, payment_id) == []

    done = staff.post(retry, data={"csrf_token": token})
    assert (done.status_code, done.headers["location"]) == (303, f"{page}?done=retry")
    assert "Sent back to posting" in staff.get(done.headers["location"]).text
    payment = d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == {LOST: [D("60.00")], OVERDUE: [D("2.00")]}
    assert payment.unapplied == D("0.00")
    [(kind, source, detail)] = staff_events(d, payment_id)
    assert (kind, source, detail["action"]) == ("paid", "staff:tlee", "retry")
    assert "staff:tlee" in text_of(staff.get(page).text)


def test_resolve_asks_for_a_note_and_records_it(deploy):
    d = deploy()
    payment_id, _ = attention_payment(d)
    staff = staff_browser(d)
    page = f"/staff/payments/{payment_id}"
    token = token_on(staff, page)
    empty = staff.post(f"{page}/resolve", data={"csrf_token": token, "note": "  "})
    assert empty.status_code == 400
    assert 'id="resolve-note" name="note" rows="2" required aria-invalid="true"' in empty.text
    assert d.ledger.payment(payment_id).state == "attention"

    note = "Refunded 2.00 in CashNet, ticket 4411"
    done = staff.post(f"{page}/resolve", data={"csrf_token": token, "note": note})
    assert done.status_code == 303
    assert d.ledger.payment(payment_id).state == "resolved"
    [(kind, source, detail)] = staff_events(d, payment_id)
    assert (kind, source, detail["note"]) == ("resolved", "staff:tlee", note)
    again = staff.post(f"{page}/resolve", data={"csrf_token": token, "note": note})
    assert again.status_code == 409 and "needs nothing" in again.text


def test_record_paid_posts_money_cashnet_never_told_us_about(deploy):
    d = deploy()
    payment_id, _ = d.checkout("mkowalski", amount="62.00")  # paid at CashNet; no notification
    staff = staff_browser(d)
    page = f"/staff/payments/{payment_id}"
    token = token_on(staff, page)
    form = {"csrf_token": token, "tx": "884411", "amount": "62.00", "note": "seen in CashNet"}
    wrong = staff.post(f"{page}/record-paid", data=form | {"amount": "62.5O"})
    assert wrong.status_code == 400 and "like 12.50" in wrong.text
    done = staff.post(f"{page}/record-paid", data=form)
    assert (done.status_code, done.headers["location"]) == (303, f"{page}?done=record-paid")
    d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, "884411") == {LOST: [D("60.00")], OVERDUE: [D("2.00")]}
    [(kind, source, detail)] = staff_events(d, payment_id)
    assert (kind, source, detail["action"], detail["tx"]) == (
        "paid", "staff:tlee", "record_paid", "884411")


# --- what is shown ---


HOSTILE_FIRST = "<script>alert(1)</script>"
HOSTILE_LAST = "\x1b[2JLee\u202e"


def test_hostile_names_and_notification_fields_are_shown_not_obeyed(deploy):
    d = deploy()
    d.alma.add_user({"primary_id": "evil", "first_name": HOSTILE_FIRST, "last_name": HOSTILE_LAST,
                     "account_type": "EXTERNAL", "status": "ACTIVE", "user_group": "UGRAD"})
    fee = d.alma.add_fee("evil", {"type": "OVERDUEFINE", "owner": "MAIN", "original_amount": "5.00",
                                  "balance": "5.00", "creation_time": "2025-01-01T00:00:00.000Z"})
    payment_id, cid = d.checkout("evil")
    d.alma.set_fee("evil", fee, balance="0.00", status="CLOSED")
    d.cashnet.complete(cid)
    d.wait_for_state(payment_id, "attention")
    d.ledger.add_event(payment_id, "notification", "cashnet:127.0.0.1", {
        "kind": "duplicate", "outcome": "duplicate",
        "fields": {"result": "0", "tx": '<img src=x onerror="alert(2)">',
                   "batchno": "\x1b]0;owned\x07"}})

    staff = staff_browser(d)
    for path in ("/staff/", "/staff/payments?patron=evil", f"/staff/payments/{payment_id}"):
        html = staff.get(path).text
        assert "<script>alert" not in html and "<img" not in html, path
        assert not any(ord(c) < 32 and c not in "\n" for c in html), path
        assert "\u202e" not in html, path
        shown = text_of(html)
        assert "<script>alert(1)</script> \\x1b[2JLee\\u202e" in shown, path
    shown = text_of(staff.get(f"/staff/payments/{payment_id}").text)
    assert 'tx=<img src=x onerror="alert(2)"> batchno=\\x1b]0;owned\\x07' in shown


def test_the_payment_page_shows_lines_allocations_trail_and_advice(deploy):
    d = deploy()
    payment_id, tx = attention_payment(d)
    shown = text_of(staff_browser(d).get(f"/staff/payments/{payment_id}").text)
    assert f"State attention : 2.00 not applied in Alma: fee {OVERDUE} is closed" in shown
    assert "1 LIB-LOST 60.00 Lost item replacement fee" in shown
    assert f"{OVERDUE} Overdue fine OVERDUEFINE 0.00 2.00 failed" in shown
    assert (f"What to do 2.00 taken by CashNet (transaction {tx}) is not in Alma. Fix the cause "
            "in Alma (see the reason and the allocations), then “Retry posting to Alma” below — "
            "it looks at Alma before paying, so nothing is posted twice. Or apply or refund the "
            "money by hand and “Resolve” below, with a note.") in shown
    assert "Retry posting to Alma" in shown and "Resolve" in shown
    assert "Record as paid" not in shown  # CashNet's transaction is known: retry instead


def test_search_by_patron_transaction_state_and_date(deploy):
    d = deploy()
    payment_id, tx = attention_payment(d)
    staff = staff_browser(d)
    home = text_of(staff.get("/staff/").text)
    assert "Attention: money not in Alma (1)" in home and payment_id in home
    for query in (f"tx={tx}", "patron=mkowalski", "state=attention", "since=2000-01-01",
                  ""):
        assert payment_id in staff.get(f"/staff/payments?{query}").text, query
    for query in ("patron=pchen", "tx=nope", "state=posted", "until=2000-01-01"):
        assert payment_id not in staff.get(f"/staff/payments?{query}").text, query
    bad = staff.get("/staff/payments?since=14/03/2025")
    assert bad.status_code == 400
    assert "“From” must be a date like 2025-03-14 (UTC), not '14/03/2025'" in text_of(bad.text)
    assert staff.get("/staff/payments/nope").status_code == 404


def test_a_payment_flagged_for_review_is_listed_first_and_resolved_with_a_note(deploy):
    d = deploy()
    attention_id, _ = attention_payment(d)
    payment_id, cid = d.checkout("tlee", amount="100.00")
    d.cashnet.complete(cid)
    d.wait_for_state(payment_id, "posted")
    second = d.cashnet.complete(d.hand_off(d.ledger.payment(payment_id).checkout))["tx"]
    wait_for(lambda: d.ledger.payment(payment_id).review, "the double charge flagged")
    staff = staff_browser(d)
    home = text_of(staff.get("/staff/").text)
    assert home.index("Attention: money not in Alma (1)") < home.index("Needs review (1)") \
        < home.index(payment_id)
    assert attention_id in home and home.index(attention_id) < home.index("Needs review")
    page = f"/staff/payments/{payment_id}"
    shown = text_of(staff.get(page).text)
    assert f"second CashNet success (transaction {second})" in shown
    done = staff.post(f"{page}/resolve", data={"csrf_token": token_on(staff, page),
                                                "note": "Refunded the second charge"})
    assert done.status_code == 303
    assert not d.ledger.payment(payment_id).review
    assert "No payment is flagged for review." in text_of(staff.get("/staff/").text)
    [(kind, source, detail)] = staff_events(d, payment_id)
    assert (source, detail["note"]) == ("staff:tlee", "Refunded the second charge")


# --- reports ---


def test_reconcile_report_and_its_bound(deploy):
    d = deploy()
    payment_id, _ = attention_payment(d)
    staff = staff_browser(d)
    day = datetime.now(UTC).date()
    report = staff.get(f"/staff/reconcile?since={day - timedelta(days=1)}")
    assert report.status_code == 200
    shown = text_of(report.text)
    assert f"Payments started {day - timedelta(days=1)} to {day}" in shown
    assert "1 need(s) staff." in shown and payment_id in shown
    assert "at most 31 days" in shown
    too_long = staff.get(f"/staff/reconcile?since={day - timedelta(days=40)}&until={day}")
    assert too_long.status_code == 400
    assert "Reconcile at most 31 days at a time" in text_of(too_long.text)


def test_bursar_csv_downloads(deploy):
    d = deploy()
    created, _ = d.pay(d.sign_in_sso("mkowalski"), amount="62.00")
    d.wait_for_state(created["payment"]["id"], "posted")
    staff = staff_browser(d)
    day = datetime.now(UTC).date().isoformat()
    plain = staff.get(f"/staff/export.csv?since={day}&until={day}")
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/csv; charset=utf-8"
    assert plain.headers["content-disposition"] == \
        f'attachment; filename="patronpay-payments-{day}-to-{day}.csv"'
    rows = plain.text.splitlines()
    assert rows[0].startswith("date,payment_id,patron_id,cashnet_tx")
    assert len(rows) == 2 and ",mkowalski," in rows[1]
    lines = staff.get(f"/staff/export.csv?since={day}&until={day}&lines=yes")
    assert lines.text.splitlines()[0].startswith("date,payment_id,patron_id,custcode")
    assert len(lines.text.splitlines()) == 3  # two CashNet lines
    assert staff.get("/staff/export.csv?since=yesterday&until=today").status_code == 400


FORMULA_LIBRARY = '=HYPERLINK("http://evil.example/","Open")'


def test_bursar_csv_cells_from_outside_are_never_formulas(deploy):
    """A library code from Alma that a spreadsheet would run as a formula is exported as
    text, in the export by CashNet line where the library has its column."""
    d = deploy()
    d.alma.add_user({
        "primary_id": "eformula", "first_name": "Eve", "last_name": "Formula",
        "account_type": "EXTERNAL", "user_group": "UGRAD",
        "emails": [{"address": "eve@example.edu", "preferred": True}],
        "fees": [{"type": "OVERDUEFINE", "owner": FORMULA_LIBRARY, "original_amount": "10.00",
                  "creation_time": "2025-01-01T00:00:00.000Z"}],
    })
    created, _ = d.pay(d.sign_in_sso("eformula"), amount="10.00")
    d.wait_for_state(created["payment"]["id"], "posted")
    staff = staff_browser(d)
    day = datetime.now(UTC).date().isoformat()
    rows = list(csv.DictReader(io.StringIO(
        staff.get(f"/staff/export.csv?since={day}&until={day}&lines=yes").text)))
    assert [(row["patron_id"], row["library"], row["amount"]) for row in rows] == [
        ("eformula", "'" + FORMULA_LIBRARY, "10.00")]


@pytest.mark.parametrize(("value", "cell"), [
    ("mkowalski", "mkowalski"), (None, ""), ("", ""), ("=1+1", "'=1+1"), ("+1", "'+1"),
    ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("a=b", "a=b")])
def test_a_text_cell_that_a_spreadsheet_would_run(value, cell):
    assert text_cell(value) == cell


def test_every_staff_page_needs_a_staff_session(deploy):
    d = deploy()
    browser = d.browser()
    for path in ("/staff/", "/staff/payments", "/staff/payments/x", "/staff/reconcile",
                 "/staff/export", "/staff/export.csv"):
        assert browser.get(path).status_code == 303, path
    assert browser.get("/staff").headers["location"] == "/staff/"


# --- settings and sessions, without a deployment ---


BASE = {
    "PATRONPAY_PUBLIC_URL": "https://pay.library.example.edu",
    "PATRONPAY_SECRET_KEYS": "k" * 32,
    "PATRONPAY_ALMA_API_URL": "https://api-na.hosted.exlibrisgroup.com/almaws/v1",
    "PATRONPAY_ALMA_API_KEY": "l7xx-real-key",
    "PATRONPAY_CASHNET_CHECKOUT_URL": "https://commerce.cashnet.com/LIBFINES",
    "PATRONPAY_CASHNET_ITEM_CODE": "LIB-FINE",
    "PATRONPAY_CASHNET_POSTBACK_TOKEN": "t" * 40,
}


@pytest.mark.parametrize("extra, message", [
    ({"PATRONPAY_STAFF_SIGNIN": "sso"},
     "PATRONPAY_STAFF_USERS or PATRONPAY_STAFF_GROUP is required when PATRONPAY_STAFF_SIGNIN "
     "is set"),
    ({"PATRONPAY_STAFF_SIGNIN": "sso", "PATRONPAY_STAFF_GROUP": "lib"},
     "PATRONPAY_STAFF_GROUP_HEADER is required when PATRONPAY_STAFF_GROUP is set and "
     "PATRONPAY_STAFF_SIGNIN is sso"),
    ({"PATRONPAY_STAFF_SIGNIN": "cas", "PATRONPAY_STAFF_USERS": "jdoe"},
     "PATRONPAY_CAS_URL is required when PATRONPAY_STAFF_SIGNIN is cas"),
    ({"PATRONPAY_STAFF_SIGNIN": "ldap", "PATRONPAY_STAFF_USERS": "jdoe"},
     "PATRONPAY_STAFF_SIGNIN is not valid: choose sso or cas (or leave empty: no staff pages) "
     "(got 'ldap')"),
])
def test_staff_settings_that_cannot_work_stop_start_up(extra, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE | extra)
    assert str(caught.value) == message


def test_staff_sessions_are_shorter_than_patrons_by_default():
    settings = load_settings(BASE | {"PATRONPAY_STAFF_SIGNIN": "sso",
                                     "PATRONPAY_STAFF_USERS": "jdoe"})
    assert settings.staff_session_idle_minutes < settings.session_idle_minutes
    assert settings.staff_session_max_minutes < settings.session_max_minutes


def test_who_is_let_in_and_for_how_long(tmp_path):
    settings = load_settings(BASE | {"PATRONPAY_STAFF_SIGNIN": "sso",
                                     "PATRONPAY_STAFF_USERS": "jdoe",
                                     "PATRONPAY_STAFF_GROUP": "lib-staff,bursar",
                                     "PATRONPAY_STAFF_GROUP_HEADER": "X-Remote-Groups"})
    assert grant(settings, "jdoe", []) == "user"
    assert grant(settings, "ann", groups_in_header("students;bursar")) == "group:bursar"
    assert grant(settings, "ann", groups_in_header("cn=lib-staff-old, students")) is None
    assert grant(settings, "JDOE", []) is None  # ids are compared exactly

    now = [1000.0]
    store = StaffSessionStore(Database(tmp_path / "ledger.sqlite3"), settings.secret_keys,
                              idle_seconds=1800, max_seconds=8 * 3600, clock=lambda: now[0])
    session, cookie = store.create("jdoe", "sso", "user")
    assert store.load(cookie) == session
    assert store.load(cookie[:-2] + "xx") is None  # the signature
    now[0] += 1799
    assert store.touch(store.load(cookie)).expires_at == now[0] + 1800
    now[0] += 1799
    assert store.load(cookie) is not None  # active within the idle time
    now[0] += 1801
    assert store.load(cookie) is None  # idle too long
    session, cookie = store.create("jdoe", "sso", "user")
    while now[0] + 1700 < session.created_at + 8 * 3600:  # busy all day ...
        now[0] += 1700
        store.touch(store.load(cookie))
    now[0] = session.created_at + 8 * 3600
    assert store.load(cookie) is None  # ... and still over after 8 hours
    shorter = load_settings(BASE | {"PATRONPAY_STAFF_SIGNIN": "sso",
                                    "PATRONPAY_STAFF_USERS": "someone-else"})
    assert not still_granted(shorter, session)
