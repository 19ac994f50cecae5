"""The HTTP edges under abuse (issue 14 items 5, 9, 11 and 13), over loopback:

- every X-Forwarded-For line counts (a client's own line cannot pass for the front server's);
- deeply nested JSON and a client that goes away mid-body are a 400 and an INFO line, in the
  proxy and in the kiosk agent, never an ERROR with a traceback;
- the uvicorn `patronpay serve` runs closes connections whose head or body is too slow, idle
  keep-alive connections, and answers 503 beyond its connection limit;
- over https the session cookie is `__Host-patronpay_session` (and only that name works);
  every answer carries `Cross-Origin-Resource-Policy: same-origin`; a patron's id is logged at
  INFO only when they sign in.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from pathlib import Path

import httpx
import pytest
from support.waiting import wait_for

from kiosk.proxy_client import ProxyClient
from patronpay.demo import sandbox_environment
from patronpay.http_limits import server_options
from patronpay.serving import ServerThread
from proxy.app import create_app
from proxy.config import load_settings
from proxy.web.security import client_address
from sandbox.app import create_sandbox_app

DEEP = b"[" * 30000 + b"]" * 30000  # 60 000 bytes: under the body limit, deeper than any parser


def errors_logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def events_logged(caplog, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", "") == event]


# -- item 5: X-Forwarded-For --------------------------------------------------------------------


def test_every_forwarded_for_line_counts():
    trusted = [__import__("ipaddress").ip_network("127.0.0.0/8")]
    scope = {"type": "http", "client": ("127.0.0.1", 5000),
             "headers": [(b"x-forwarded-for", b"203.0.113.5"),
                         (b"x-forwarded-for", b"198.51.100.7, 127.0.0.2")]}
    assert client_address(scope, trusted) == "198.51.100.7"


def test_a_forged_first_line_does_not_pass_the_cashnet_address_check(deploy):
    d = deploy(cashnet_allowed_ips="203.0.113.0/24")
    url = f"{d.url}/cashnet/postback/{d.settings.cashnet_postback_token}"
    # The attacker's own line names CashNet's network; the front server adds the real address
    # as a line of its own.
    forged = httpx.post(url, data={"result": "0"}, headers=[
        ("X-Forwarded-For", "203.0.113.5"), ("X-Forwarded-For", "198.51.100.7")])
    assert forged.status_code == 403
    real = httpx.post(url, data={"result": "0"}, headers=[
        ("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-For", "203.0.113.5")])
    assert real.status_code != 403  # from CashNet's network: on to the next check


# -- item 9: nested JSON and clients that go away ------------------------------------------------


def test_deeply_nested_json_is_a_400_and_an_info_line(deploy, caplog):
    caplog.set_level(logging.INFO)
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    response = patron.post("/api/payments", content=DEEP,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    assert [r.levelno for r in events_logged(caplog, "bad_body")] == [logging.INFO]
    assert errors_logged(caplog) == []


def raw_request(url: str, head: str, body: bytes = b"") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.replace("\n", "\r\n").encode() + body)
    return sock


def test_a_client_that_leaves_mid_body_is_a_400_and_an_info_line(deploy, caplog):
    caplog.set_level(logging.INFO)
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    cookie = "; ".join(f"{k}={v}" for k, v in patron.cookies.items())
    sock = raw_request(d.url, f"POST /api/payments HTTP/1.1\nHost: x\nOrigin: {d.url}\n"
                       f"Cookie: {cookie}\nX-CSRF-Token: {patron.headers['X-CSRF-Token']}\n"
                       "Content-Type: application/json\nContent-Length: 1000\n\n", b'{"fee_')
    sock.close()
    gone = wait_for(lambda: events_logged(caplog, "bad_body"), "the proxy to notice")
    assert [(r.levelno, r.reason) for r in gone] == [(logging.INFO, "client_disconnected")]
    assert wait_for(lambda: [r for r in events_logged(caplog, "request") if r.status == 400],
                    "the access line")
    assert errors_logged(caplog) == []
    assert d.ledger.find_payments(patron_id="mkowalski") == []


def test_the_kiosk_agent_takes_both_the_same_way(kiosk, caplog):
    caplog.set_level(logging.INFO)
    k = kiosk()
    page = k.page()
    deep = b"[" * 4000 + b"]" * 4000
    response = page.post("/api/read", content=deep, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    sock = raw_request(k.url, f"POST /api/read HTTP/1.1\nHost: {k.url[7:]}\nOrigin: {k.url}\n"
                       "Content-Type: application/json\nContent-Length: 500\n\n", b'{"so')
    sock.close()
    wait_for(lambda: [r for r in events_logged(caplog, "bad_body")
                      if r.reason == "client_disconnected"], "the agent to notice")
    assert [r.reason for r in events_logged(caplog, "bad_body")] == ["too_deep",
                                                                     "client_disconnected"]
    assert errors_logged(caplog) == []


# -- item 11: the HTTP server's limits ----------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path):
    """The proxy app under uvicorn as `patronpay serve` configures it, with short limits. Only
    routes that never reach Alma are called."""
    started = []

    def start(**limits: str) -> ServerThread:
        env = sandbox_environment("http://127.0.0.1:9", "http://127.0.0.1:9",
                                  tmp_path / f"ledger{len(started)}.sqlite3",
                                  secrets.token_urlsafe(32), **limits)
        settings = load_settings(env)
        server = ServerThread(create_app(settings, run_worker=False),
                              **server_options(settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def closed_by_server(sock: socket.socket, within: float = 10.0) -> bool:
    """True when the server closes the connection (recv sees the end) within `within` s."""
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_request_head_that_never_ends_is_cut_off(served, caplog):
    caplog.set_level(logging.INFO)
    server = served(http_header_timeout_seconds="0.5")
    silent = socket.create_connection((server.host, server.port))
    partial = raw_request(server.url, "GET /healthz HTTP/1.1\nHost: x\n")  # no blank line
    assert closed_by_server(silent) and closed_by_server(partial)
    assert {r.waiting_for for r in events_logged(caplog, "slow_client")} == {"head"}


def test_dripping_a_byte_at_a_time_does_not_extend_the_head_deadline(served):
    server = served(http_header_timeout_seconds="1")
    sock = socket.create_connection((server.host, server.port))
    started = time.monotonic()
    closed = False
    for byte in b"GET /healthz HTTP/1.1\r\nX-Padding: " + b"a" * 200:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            closed = True
            break
        sock.settimeout(0.05)  # the attacker's pace: a byte every 50 ms
        try:
            if sock.recv(1) == b"":
                closed = True
                break
        except TimeoutError:
            pass
    assert closed and time.monotonic() - started < 8  # 200+ bytes would take 11 s


def test_a_body_that_never_ends_is_cut_off(served, caplog):
    caplog.set_level(logging.INFO)
    server = served(http_body_timeout_seconds="0.5")
    sock = raw_request(server.url, f"POST /auth/logout HTTP/1.1\nHost: x\nOrigin: {server.url}\n"
                       "Content-Type: application/json\nContent-Length: 100\n\n", b"{")
    assert closed_by_server(sock)
    assert {r.waiting_for for r in events_logged(caplog, "slow_client")} == {"body"}
    assert errors_logged(caplog) == []


def test_an_idle_keep_alive_connection_is_closed(served):
    server = served(http_keepalive_seconds="1", http_header_timeout_seconds="30")
    sock = raw_request(server.url, "GET /healthz HTTP/1.1\nHost: x\n\n")
    sock.settimeout(10)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert closed_by_server(sock)


def test_connections_beyond_the_limit_get_503_at_once(served):
    server = served(http_max_connections="3", http_header_timeout_seconds="30")
    holding = [socket.create_connection((server.host, server.port)) for _ in range(3)]
    for sock in holding:  # each has begun a request
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    wait_for(lambda: httpx.get(server.url + "/healthz").status_code == 503,
             "the limit to be reached")
    for sock in holding:
        sock.close()
    wait_for(lambda: httpx.get(server.url + "/healthz").status_code == 200,
             "room once they left")


def test_a_request_head_over_the_size_limit_is_refused(served):
    server = served(http_max_header_bytes="4096")
    assert httpx.get(server.url + "/healthz", headers={"X-Big": "a" * 8000}).status_code == 431
    assert httpx.get(server.url + "/healthz", headers={"X-Big": "a" * 1000}).status_code == 200
    head = "GET /healthz HTTP/1.1\nHost: x\n"
    sock = raw_request(server.url, head)
    sent, piece = len(head) + head.count("\n"), b"X-More: " + b"b" * 500 + b"\r\n"
    # In pieces, never finished, and nothing more once past the limit: the server answers and
    # closes then, and a piece sent after that would fail here instead of showing the answer.
    while sent <= 4096:
        sock.sendall(piece)
        sent += len(piece)
    sock.settimeout(10)
    assert sock.recv(4096).startswith(b"HTTP/1.1 431")


# -- item 13: cookie prefix, CORP, patron ids in logs --------------------------------------------


@pytest.fixture
def https_proxy(tmp_path: Path):
    """A proxy whose public URL is https (behind a TLS front server), served on loopback."""
    sandbox = ServerThread(create_sandbox_app()).start()
    env = sandbox_environment("https://pay.library.example.edu", sandbox.url,
                              tmp_path / "ledger.sqlite3", secrets.token_urlsafe(32))
    proxy = ServerThread(create_app(load_settings(env), run_worker=False)).start()
    yield proxy
    proxy.stop()
    sandbox.stop()


def test_over_https_the_session_cookie_is_host_prefixed_and_only_that_name_works(https_proxy):
    url = https_proxy.url
    signed_in = httpx.get(f"{url}/auth/sso", headers={"X-Remote-User": "mkowalski"})
    assert signed_in.status_code == 303
    set_cookie = signed_in.headers["set-cookie"]
    assert set_cookie.startswith("__Host-patronpay_session=")
    assert "Secure" in set_cookie and "Path=/" in set_cookie and "Domain" not in set_cookie
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]
    prefixed = httpx.get(f"{url}/api/session",
                         headers={"Cookie": f"__Host-patronpay_session={value}"})
    assert prefixed.status_code == 200
    # A sibling host of the campus domain can set `patronpay_session`, never the prefixed name.
    bare = httpx.get(f"{url}/api/session", headers={"Cookie": f"patronpay_session={value}"})
    assert bare.status_code == 401


def test_the_kiosk_agent_sends_the_prefixed_name_to_an_https_proxy():
    assert ProxyClient("https://pay.example.edu", "lib1", "s" * 32).cookie_name == \
        "__Host-patronpay_session"
    assert ProxyClient("http://127.0.0.1:8000", "lib1", "s" * 32).cookie_name == \
        "patronpay_session"


def test_every_answer_forbids_cross_origin_embedding(deploy, kiosk):
    d = deploy()
    for path in ("/", "/api/session", "/healthz", "/style.css", "/nope"):
        assert httpx.get(d.url + path).headers["Cross-Origin-Resource-Policy"] == "same-origin"
    k = kiosk()
    for path in ("/kiosk/", "/api/session"):
        assert httpx.get(k.url + path).headers["Cross-Origin-Resource-Policy"] == "same-origin"


def test_a_patron_id_is_logged_at_info_only_when_they_sign_in(kiosk, caplog):
    caplog.set_level(logging.INFO)
    k = kiosk()
    d = k.d
    patron = d.sign_in_sso("mkowalski")
    patron.get("/api/fees")
    created, _ = d.pay(patron, amount="5.00")
    d.wait_for_state(created["payment"]["id"], "posted")
    assert k.scan("23191000105866")["result"] == "accepted"  # Maria, at the kiosk
    ours = [r for r in caplog.records if r.name.startswith("patronpay")]  # httpx: WARNING in use
    naming = [r for r in ours
              if any("mkowalski" in v for v in vars(r).values() if isinstance(v, str))]
    assert [r.event for r in naming] == ["signed_in"]
    opened = events_logged(caplog, "kiosk_session_opened")
    assert len(opened) == 1 and not hasattr(opened[0], "patron_id")
