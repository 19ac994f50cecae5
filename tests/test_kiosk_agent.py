"""The kiosk agent (issue 5) over real loopback servers: its page API against the real proxy and
sandbox, the read pipeline (refusals, repeats, reads during a payment), the event stream, the
session it holds and its own deadlines (with an injected clock), its guards, its settings, and
`patronpay kiosk` under a fake systemd notify socket."""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading

import httpx
import pytest
from support.kiosk import (
    BANK_SWIPE,
    DEADLINE,
    MARIA,
    SECRET,
    THOMAS,
    UNKNOWN,
    Events,
    record_text,
)
from support.waiting import wait_for

from kiosk.cards import default_card_rules
from kiosk.settings import KioskConfigError, load_kiosk_settings
from patronpay.serving import bind


class FakeClock:
    """The wall clock behind the agent's session deadlines, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def logged_text(caplog) -> str:
    return "\n".join(record_text(r) for r in caplog.records)


# -- the page's API through the proxy ------------------------------------------------------------


def test_a_scan_opens_the_patrons_session_and_shows_their_fees(kiosk):
    k = kiosk()
    assert k.scan("]F0" + MARIA + "\r") == {"result": "accepted"}
    session = k.session()
    assert (session["first_name"], session["paying"], session["payment"]) == ("Maria", False, None)
    assert k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 1)]

    fees = k.page().get("/api/fees", params={"handle": session["handle"]})
    assert fees.status_code == 200, fees.text
    assert [(f["id"], f["balance"]) for f in fees.json()["fees"]] == [
        ("7730018830004146", "60.00"), ("7730012450004146", "4.75"), ("7730020010004146", "12.50")]
    assert (fees.json()["total"], fees.json()["min_payment"]) == ("77.25", "1.00")
    assert fees.headers["cache-control"] == "no-store"


def test_the_page_must_name_the_session_it_shows(kiosk):
    k = kiosk()
    assert k.page().get("/api/fees").json() == {"error": {"code": "no_session", "message": "no session"}}
    k.scan(MARIA)
    response = k.page().get("/api/fees")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "session_changed")
    response = k.page().get("/api/fees", params={"handle": "not-the-handle"})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "session_changed")


def test_a_new_card_replaces_the_session_on_agent_and_proxy(kiosk):
    k = kiosk()
    k.scan(MARIA)
    first = k.handle()
    assert k.scan(THOMAS) == {"result": "accepted"}
    assert k.session()["first_name"] == "Thomas" and k.handle() != first
    assert k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 0), ("tlee", "kiosk:lib1", 1)]


def test_an_unknown_card_leaves_the_current_patron_be(kiosk):
    k = kiosk()
    k.scan(MARIA)
    handle = k.handle()
    assert k.scan(UNKNOWN) == {"result": "refused", "reason": "card_not_recognised"}
    assert k.handle() == handle
    assert k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 1)]


def test_the_same_card_again_keeps_the_session(kiosk):
    k = kiosk()
    k.scan(MARIA)
    handle = k.handle()
    assert k.scan(MARIA) == {"result": "ignored", "reason": "repeat"}  # within 2 s
    k.service.pipeline._last = None  # as if 2 s had passed
    assert k.scan(MARIA) == {"result": "accepted"}
    assert k.handle() == handle
    assert k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 1)]


BAD_READS = [
    (MARIA[:-1] + "7", "check_digit"),
    ("2319100010586", "no_match"),  # 13 digits: the rule's pattern wants 14
    ("hello world", "no_match"),
    ("2319\x001000105866", "bad_charset"),
    ("23191000105866é", "bad_charset"),
    ("2" * 300, "too_long"),
    (BANK_SWIPE, "payment_card"),
    (";4111111111111111=2812101?", "payment_card"),
    (UNKNOWN, "card_not_recognised"),
    ("23191000200014", "card_not_recognised"),  # a barcode reported lost (inactive in Alma)
]


def test_bad_reads_are_refused_with_a_reason_and_never_logged(kiosk, caplog):
    caplog.set_level(logging.DEBUG)
    k = kiosk()
    events = Events(k.url)
    try:
        for read, reason in BAD_READS:
            before = len(events.events)
            assert k.scan(read) == {"result": "refused", "reason": reason}, read
            events.wait(lambda e: e.get("result") == "refused", f"the refusal of {reason}", before)
            # A card of the right shape is first announced (the page says "Finding your
            # account"), then refused when the proxy does not know it.
            looked_up = [{"type": "scan", "result": "accepted"}] if reason == "card_not_recognised" else []
            assert events.since(before) == looked_up + [
                {"type": "scan", "result": "refused", "reason": reason}]
    finally:
        events.stop()
    assert k.session() is None and k.proxy_sessions() == []
    # Only well-formed cards reach the proxy. Its USER lookup may have a fees read running
    # beside it (proxy/kiosk_fees.py), cancelled or not depending on which answers first, so
    # the fees calls are checked for the cards they name, not counted.
    users = [c["path"].split("/users/", 1)[1] for c in k.d.alma_calls() if "/users/" in c["path"]]
    assert [u for u in users if "/" not in u] == [UNKNOWN, "23191000200014"]
    assert {u.split("/")[0] for u in users} <= {UNKNOWN, "23191000200014"}

    for read, _ in BAD_READS:
        digits = "".join(c for c in read if c.isdigit())
        for piece in {read, digits[-8:], "4111111111111111", "DOE/JANE"} - {""}:
            assert not any(piece in line for line in events.raw), piece
            for record in caplog.records:
                # A card the kiosk passed on appears in the URL of the proxy's Alma lookup,
                # which httpx's own wire log shows (production logging sets httpx to WARNING);
                # every other line, at every level, must be free of the read.
                if record.name == "httpx" or record.name.startswith("httpcore"):
                    continue
                assert piece not in record_text(record), piece
    assert "4111" not in logged_text(caplog) and "DOE/JANE" not in logged_text(caplog)


def test_payment_card_log_line_is_exactly_the_reason(kiosk, caplog):
    caplog.set_level(logging.DEBUG)
    k = kiosk()
    k.scan(BANK_SWIPE)
    rejected = [r for r in caplog.records if getattr(r, "event", "") == "read_rejected"]
    assert [(r.getMessage(), r.reason, r.reader) for r in rejected] == [
        ("read rejected", "payment_card", "wedge")]


def test_oversized_and_malformed_read_requests(kiosk):
    k = kiosk()
    page = k.page()
    big = page.post("/api/read", json={"source": "wedge", "data": "2" * 10_000})
    assert (big.status_code, big.json()["error"]["code"]) == (413, "body_too_large")
    for body in ({"source": "serial", "data": MARIA}, {"source": "wedge", "data": 5},
                 {"source": "wedge", "data": MARIA, "extra": 1}):
        response = page.post("/api/read", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_read")
    response = page.post("/api/read", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    assert k.session() is None


def test_reads_are_ignored_while_a_payment_is_in_progress(kiosk):
    k = kiosk()
    k.scan(MARIA)
    handle = k.handle()
    created = k.page().post("/api/payments", json={"amount": "10.00"}, headers={"X-CSRF-Token": handle})
    assert created.status_code == 201, created.text
    body = created.json()
    assert sorted(body) == ["checkout", "payment"] and "receipt_token" not in body["payment"]
    assert (body["payment"]["amount"], body["checkout"]["action"]) == ("10.00", k.d.settings.cashnet_checkout_url)
    assert body["checkout"]["fields"]["ref1val1"] == body["payment"]["id"]
    assert k.session()["paying"] is True and k.session()["payment"] == body["payment"]["id"]
    assert k.d.ledger.payment(body["payment"]["id"]).channel == "kiosk:lib1"

    assert k.scan(THOMAS) == {"result": "ignored", "reason": "payment_in_progress"}
    assert k.session()["first_name"] == "Maria"

    # Back on the kiosk's return page: reads count again.
    current = k.page().get("/api/payments/current", params={"handle": handle})
    assert current.json()["payment"]["state"] == "pending"
    assert k.session()["paying"] is False
    assert k.scan(THOMAS) == {"result": "accepted"}


def test_payment_request_errors_are_relayed(kiosk):
    k = kiosk()
    k.scan(MARIA)
    page = k.page()
    headers = {"X-CSRF-Token": k.handle()}
    too_much = page.post("/api/payments", json={"amount": "500.00"}, headers=headers)
    assert (too_much.status_code, too_much.json()["error"]["field"]) == (422, "amount")
    unknown = page.post("/api/payments", json={"fee_ids": [], "tip": "1"}, headers=headers)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "unknown_field")
    assert page.post("/api/payments", json={}).status_code == 409  # no handle: not this page's
    assert k.session()["paying"] is False


def test_the_page_ends_the_session(kiosk):
    k = kiosk()
    k.scan(MARIA)
    handle = k.handle()
    stale = k.page().post("/api/session/end", json={}, headers={"X-CSRF-Token": "an-older-page"})
    assert stale.json() == {"ended": False} and k.session() is not None
    ended = k.page().post("/api/session/end", json={}, headers={"X-CSRF-Token": handle})
    assert ended.json() == {"ended": True}
    assert k.session() is None and k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 0)]
    assert k.page().post("/api/session/end", json={}).json() == {"ended": False}


def test_events_announce_scans_and_sessions_without_the_read(kiosk):
    k = kiosk(stream_seconds=0.5)  # streams end and reconnect: nothing may be lost
    events = Events(k.url)
    try:
        k.scan(MARIA)
        events.wait(lambda e: e == {"type": "session", "state": "open"}, "session open")
        # Let the stream end and reconnect once, so the next event crosses a reconnection.
        events.wait(lambda e: e["type"] == "hello", "a reconnection", start=len(events.events))
        k.page().post("/api/session/end", json={})
        events.wait(lambda e: e.get("state") == "ended", "session ended")
        kinds = [e for e in events.events if e["type"] != "hello"]
        assert kinds == [{"type": "scan", "result": "accepted"}, {"type": "session", "state": "open"},
                         {"type": "session", "state": "ended", "reason": "page_reset"}]
        assert not any(MARIA[-8:] in line for line in events.raw)
    finally:
        events.stop()


# -- deadlines (injected clock) ----------------------------------------------------------------


def test_the_agent_ends_an_idle_session_itself_after_idle_warning_and_5_s(kiosk, tmp_path):
    clock = FakeClock()
    k = kiosk(clock=clock)
    k.scan(MARIA)
    handle = k.handle()
    clock.advance(90 + 30 + 4)
    threading.Event().wait(0.6)  # two turns of the agent's timer: nothing is due yet
    assert k.session() is not None
    assert k.page().post("/api/session/touch", json={}, headers={"X-CSRF-Token": handle}).json() == {"ok": True}
    clock.advance(124)  # 124 s after the touch: still alive
    threading.Event().wait(0.6)
    assert k.session() is not None
    clock.advance(2)
    wait_for(lambda: k.session() is None, "the agent to end the session")
    # The agent forgets the patron first, then tells the proxy: wait for that too.
    wait_for(lambda: k.proxy_sessions() == [("mkowalski", "kiosk:lib1", 0)],
             "the proxy session to end")
    assert (tmp_path / "reset-browser-0").read_text() == f"{int(clock.now)} idle\n"
    assert k.service.browser_resets == 1


def test_a_patron_left_on_cashnet_is_reset_after_payment_max(kiosk, tmp_path):
    clock = FakeClock()
    k = kiosk(clock=clock)
    k.scan(MARIA)
    k.page().post("/api/payments", json={"amount": "5.00"}, headers={"X-CSRF-Token": k.handle()})
    clock.advance(599)
    threading.Event().wait(0.6)
    assert k.session()["paying"] is True
    clock.advance(1)
    wait_for(lambda: k.session() is None, "the payment deadline")
    assert (tmp_path / "reset-browser-0").read_text() == f"{int(clock.now)} payment_timeout\n"


def test_a_finished_payment_whose_browser_never_returns_is_reset(kiosk, tmp_path):
    clock = FakeClock()
    k = kiosk(clock=clock, after_result_seconds=120.0)
    k.scan(MARIA)
    created = k.page().post("/api/payments", json={"amount": "5.00"},
                            headers={"X-CSRF-Token": k.handle()}).json()
    k.d.cashnet.complete(k.d.hand_off(created["checkout"]), outcome="decline")
    # The agent asks the proxy every few seconds while the patron is on CashNet.
    wait_for(lambda: k.service.holder.current.payment.result_at is not None, "the result to be seen")
    clock.advance(119)
    threading.Event().wait(0.6)
    assert k.session() is not None
    clock.advance(1)
    wait_for(lambda: k.session() is None, "the after-result deadline")
    assert (tmp_path / "reset-browser-0").read_text() == f"{int(clock.now)} no_return\n"


def test_session_holder_deadlines_unit():
    from kiosk.held_session import SessionHolder
    from kiosk.proxy_client import ProxySession

    clock = FakeClock()
    holder = SessionHolder(lifetime_seconds=125, payment_max_seconds=600, after_result_seconds=120, clock=clock)
    assert holder.deadline() is None and holder.due() is None
    holder.open(ProxySession("cookie", "csrf"), "Maria", "fp")
    assert holder.deadline() == (clock.now + 125, "idle")
    holder.start_payment("p1")
    assert holder.deadline() == (clock.now + 600, "payment_timeout")
    clock.advance(100)
    holder.result_known()
    assert holder.deadline() == (clock.now + 120, "no_return")
    holder.browser_returned()
    assert holder.deadline() == (clock.now + 125, "idle")
    clock.advance(125)
    assert holder.due() == "idle"
    assert holder.end().first_name == "Maria" and holder.current is None


# -- guards, static files, health -----------------------------------------------------------------


def test_only_loopback_hosts_and_same_origin_writes(kiosk):
    k = kiosk()
    rebinding = httpx.get(k.url + "/api/session", headers={"Host": "attacker.example:8080"})
    assert (rebinding.status_code, rebinding.json()["error"]["code"]) == (421, "wrong_host")
    malformed = httpx.get(k.url + "/api/session", headers={"Host": "[::1"})
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (421, "wrong_host")
    no_origin = httpx.post(k.url + "/api/read", json={"source": "wedge", "data": MARIA})
    assert (no_origin.status_code, no_origin.json()["error"]["code"]) == (403, "bad_origin")
    other = httpx.post(k.url + "/api/read", json={"source": "wedge", "data": MARIA},
                       headers={"Origin": "http://127.0.0.1:9"})
    assert other.status_code == 403
    assert k.session() is None


def test_pages_and_shared_assets_are_served_with_strict_headers(kiosk):
    k = kiosk()
    page = k.page()
    start = page.get("/")
    assert (start.status_code, start.headers["location"]) == (303, "/kiosk/")
    index = page.get("/kiosk/")
    assert index.status_code == 200 and "Scan your ID card" in index.text
    assert index.headers["cache-control"] == "no-store"
    csp = index.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    assert "form-action 'self' https:" in csp
    assert index.headers["x-frame-options"] == "DENY" and index.headers["referrer-policy"] == "no-referrer"
    back = page.get("/kiosk/return", params={"p": "x"})
    assert back.status_code == 200 and 'id="receipt"' in back.text
    for path in ("/style.css", "/i18n.js", "/api.js", "/locales/en.json", "/kiosk/kiosk.js",
                 "/kiosk/timers.js", "/kiosk/wedge.js", "/kiosk/common.js", "/kiosk/kiosk.css"):
        assert page.get(path).status_code == 200, path
    for path in ("/index.html", "/app.js", "/receipt.html", "/kiosk/../proxy/config.py"):
        assert page.get(path).status_code == 404, path
    strings = page.get("/locales/en.json").json()
    assert strings["kiosk.scan.payment_card"] == (
        "This looks like a bank card, which this kiosk does not read. Scan your library or campus "
        "card first; you type your bank card's details later, on the payment page.")


def test_health_reports_the_reader(kiosk):
    k = kiosk()
    assert k.page().get("/healthz").json() == {"status": "ok", "reader": "none"}
    assert k.page().get("/api/session").json() == {
        "session": None, "reader": "none",
        "settings": {"idle_seconds": 90.0, "warning_seconds": 30.0, "receipt_seconds": 30.0, "privacy": True}}


def test_an_unreachable_proxy_refuses_the_scan_cleanly(kiosk):
    closed = bind("127.0.0.1", 0)
    port = closed.getsockname()[1]
    closed.close()
    k = kiosk(proxy_url=f"http://127.0.0.1:{port}")
    assert k.scan(MARIA) == {"result": "refused", "reason": "unavailable"}
    assert k.session() is None


def test_a_kiosk_with_the_wrong_secret_is_refused_by_the_proxy(kiosk, caplog):
    caplog.set_level(logging.INFO)
    k = kiosk(kiosk_secret="not-the-secret-0123456789abcdef012345")
    assert k.scan(MARIA) == {"result": "refused", "reason": "kiosk_unauthorized"}
    assert k.proxy_sessions() == []
    assert [r.reason for r in caplog.records if getattr(r, "event", "") == "kiosk_refused"] == ["bad_signature"]
    assert any(getattr(r, "event", "") == "kiosk_refused_by_proxy" for r in caplog.records)
    assert "not-the-secret" not in logged_text(caplog)


# -- settings ---------------------------------------------------------------------------------


BASE_ENV = {"PATRONPAY_KIOSK_ID": "Lib1", "PATRONPAY_KIOSK_SECRET": SECRET,
            "PATRONPAY_KIOSK_PROXY_URL": "https://pay.library.example.edu/"}


def test_settings_from_the_environment(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[credential_rule]]\nkind = "campus_prox"\nregex = \'(\\d{1,3}:\\d{1,5})\'\n')
    settings = load_kiosk_settings(BASE_ENV | {
        "PATRONPAY_KIOSK_READER": "/dev/serial/by-id/usb-X-if00", "PATRONPAY_KIOSK_READER_FRAMING": "fixed:10",
        "PATRONPAY_KIOSK_CARD_RULES": str(rules), "PATRONPAY_KIOSK_PRIVACY": "false",
        "PATRONPAY_KIOSK_IDLE_SECONDS": "120", "PATRONPAY_KIOSK_INSTALL_KEY_FILE": str(tmp_path / "k" / "install-key"),
    })
    assert (settings.kiosk_id, settings.proxy_url) == ("lib1", "https://pay.library.example.edu")
    assert (settings.reader, settings.reader_framing, settings.privacy, settings.idle_seconds) == (
        "/dev/serial/by-id/usb-X-if00", "fixed:10", False, 120.0)
    assert [r.kind for r in settings.card_rules.rules] == ["campus_prox"]
    assert settings.session_lifetime_seconds == 155.0
    key_file = tmp_path / "k" / "install-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings.install_key == key_file.read_bytes().strip()
    assert load_kiosk_settings(BASE_ENV).card_rules == default_card_rules()
    assert SECRET not in repr(settings)


def test_settings_from_systemd(tmp_path):
    (tmp_path / "secret").write_text(SECRET + "\n")
    env = {k: v for k, v in BASE_ENV.items() if k != "PATRONPAY_KIOSK_SECRET"} | {
        "PATRONPAY_KIOSK_SECRET_FILE": str(tmp_path / "secret"),
        "STATE_DIRECTORY": str(tmp_path / "state"), "RUNTIME_DIRECTORY": str(tmp_path / "run")}
    settings = load_kiosk_settings(env)
    assert settings.kiosk_secret == SECRET
    assert settings.install_key == (tmp_path / "state" / "install-key").read_bytes().strip()
    assert settings.reset_file == str(tmp_path / "run" / "reset-browser")
    again = load_kiosk_settings(env)
    assert again.install_key == settings.install_key  # kept across restarts


@pytest.mark.parametrize(("change", "message"), [
    ({"PATRONPAY_KIOSK_ID": None}, "PATRONPAY_KIOSK_ID is required: This kiosk's id, as listed in the proxy's `PATRONPAY_KIOSK_KEYS`."),
    ({"PATRONPAY_KIOSK_ID": "lib 1"}, "PATRONPAY_KIOSK_ID is not valid: use 1-64 characters: letters, digits, '.', '_' or '-' (got 'lib 1')"),
    ({"PATRONPAY_KIOSK_SECRET": "short"}, "PATRONPAY_KIOSK_SECRET is not valid: needs at least 32 characters (try: openssl rand -hex 32)"),
    ({"PATRONPAY_KIOSK_PROXY_URL": "http://pay.example.edu"}, "PATRONPAY_KIOSK_PROXY_URL is not valid: must use https (plain http is allowed only on a loopback host) (got 'http://pay.example.edu')"),
    ({"PATRONPAY_KIOSK_PROXY_URL": "https://pay.example.edu/pay"}, "PATRONPAY_KIOSK_PROXY_URL is not valid: must be the proxy's origin, without a path (got 'https://pay.example.edu/pay')"),
    ({"PATRONPAY_KIOSK_READER": "spy:///dev/ttyACM0?file=x"}, "PATRONPAY_KIOSK_READER is not valid: spy:// records raw card data and is not allowed (got 'spy:///dev/ttyACM0?file=x')"),
    ({"PATRONPAY_KIOSK_READER_FRAMING": "crlf"}, "PATRONPAY_KIOSK_READER_FRAMING is not valid: framing: must be eol, idle, stx_etx or fixed:<n> (got 'crlf')"),
    ({"PATRONPAY_KIOSK_WARNING_SECONDS": "10"}, "PATRONPAY_KIOSK_WARNING_SECONDS is not valid: must be at least 20 seconds (got '10')"),
    ({"PATRONPAY_KIOSK_IDLE_SECONDS": "ninety"}, "PATRONPAY_KIOSK_IDLE_SECONDS is not valid: invalid literal for int() with base 10: 'ninety' (got 'ninety')"),
    ({"PATRONPAY_KIOSK_PRIVACY": "maybe"}, "PATRONPAY_KIOSK_PRIVACY is not valid: expected true or false (got 'maybe')"),
    ({"PATRONPAY_KIOSK_CARD_RULES": "/nonexistent/rules.toml"}, "PATRONPAY_KIOSK_CARD_RULES is not valid: cannot be read: No such file or directory (/nonexistent/rules.toml) (got '/nonexistent/rules.toml')"),
])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(change, message):
    env = dict(BASE_ENV)
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    with pytest.raises(KioskConfigError) as error:
        load_kiosk_settings(env)
    assert str(error.value) == message
    assert "\n" not in str(error.value)


def test_bad_card_rules_name_the_rule(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[credential_rule]]\nkind = "x"\ncheck_digit = "crc"\n')
    with pytest.raises(KioskConfigError) as error:
        load_kiosk_settings(BASE_ENV | {"PATRONPAY_KIOSK_CARD_RULES": str(rules)})
    assert str(error.value).startswith("PATRONPAY_KIOSK_CARD_RULES is not valid: credential_rule #1.check_digit: must be one of")


# -- the command under systemd ------------------------------------------------------------------


def test_patronpay_kiosk_notifies_systemd_and_feeds_the_watchdog(tmp_path):
    notify_path = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(DEADLINE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")} | BASE_ENV | {
        "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "200000",
        "STATE_DIRECTORY": str(tmp_path / "state"), "RUNTIME_DIRECTORY": str(tmp_path / "run")}
    process = subprocess.Popen([sys.executable, "-m", "patronpay", "kiosk", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        received = []
        while "WATCHDOG=1" not in received:
            received.append(notify.recv(256).decode())
        assert received[0] == "READY=1"
        process.send_signal(signal.SIGTERM)
        while received[-1] != "STOPPING=1":
            received.append(notify.recv(256).decode())
        assert process.wait(DEADLINE) == -signal.SIGTERM  # uvicorn re-raises it: a clean stop
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(DEADLINE)
        notify.close()
    assert SECRET not in process.stderr.read().decode()


def test_patronpay_kiosk_refuses_a_bad_setting_and_a_public_address(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    missing = subprocess.run([sys.executable, "-m", "patronpay", "kiosk"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "patronpay: configuration error: PATRONPAY_KIOSK_ID is required: This kiosk's id, as listed in the proxy's `PATRONPAY_KIOSK_KEYS`."]
    public = subprocess.run([sys.executable, "-m", "patronpay", "kiosk", "--host", "192.0.2.10"], env=env | BASE_ENV,
                            capture_output=True, text=True, timeout=60)
    assert public.returncode == 1
    assert "serves only loopback" in public.stderr


def test_the_kiosk_sends_the_proxy_its_own_origin():
    import asyncio

    from kiosk.proxy_client import ProxyClient

    client = ProxyClient("https://pay.library.example.edu/", "lib1", "s" * 32)
    try:
        assert client.origin == "https://pay.library.example.edu"
    finally:
        asyncio.run(client.aclose())


def test_the_kiosk_page_language_goes_to_the_proxy_only_as_a_language_tag():
    """An e-mailed receipt follows the kiosk page's language: the agent passes the page's
    language cookie on as `?lang=`, and nothing else that a cookie could carry."""
    from starlette.requests import Request

    from kiosk.agent import _page_language

    def page(cookie: str) -> Request:
        return Request({"type": "http", "headers": [(b"cookie", cookie.encode())]})

    assert _page_language(page("patronpay_lang=es")) == "es"
    assert _page_language(page("patronpay_lang=pt-BR")) == "pt-BR"
    assert _page_language(page("patronpay_lang=es&x=1")) == ""
    assert _page_language(page("other=1")) == ""
