"""Someone at a kiosk cannot try barcodes to see whose they are (issue 14 item 10): after
PATRONPAY_KIOSK_LOOKUP_FAILURES cards Alma does not know within PATRONPAY_KIOSK_COOLDOWN_SECONDS,
the kiosk looks up no card at all for that long, in the proxy (429, no Alma call) and in the
agent (refused at once, no proxy call); the pause is a WARNING line and a ledger event that the
staff alerts read. Other kiosks carry on."""

from __future__ import annotations

import logging

import httpx
import pytest
from support.kiosk import MARIA, SECRET, THOMAS, Events

from kiosk.signing import KioskAuth

OTHER_SECRET = "lib2-secret-0123456789abcdef0123456789"
# Well-formed library barcodes (right length, right check digit) that Alma does not know.
UNKNOWN_CARDS = ["23191000900001", "23191000900019", "23191000900027", "23191000900035",
                 "23191000900043", "23191000900050", "23191000900068"]


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def kiosk_client(d, kiosk_id="lib1", secret=SECRET) -> httpx.Client:
    client = httpx.Client(base_url=d.url, auth=KioskAuth(kiosk_id, secret), timeout=15.0,
                          headers={"Origin": d.url})
    d.clients.append(client)
    return client


def look_up(client, card) -> httpx.Response:
    return client.post("/api/kiosk/sessions",
                       json={"credential": {"kind": "library_barcode", "value": card}})


def user_lookups(d) -> int:
    return sum(1 for c in d.alma_calls("GET") if c["path"].count("/") == 4)  # /almaws/v1/users/x


def cooldown_events(d) -> list[dict]:
    return [dict(r) for r in d.services.db.read(
        "SELECT payment_id, kind, source, detail FROM events WHERE kind = 'kiosk_cooldown'")]


def test_the_proxy_pauses_a_kiosk_after_too_many_unknown_cards(deploy, caplog):
    caplog.set_level(logging.INFO)
    d = deploy(kiosk_keys=f"lib1={SECRET},lib2={OTHER_SECRET}", kiosk_lookup_failures="5",
               kiosk_cooldown_seconds="300")
    clock = Clock()
    d.services.kiosk_lookups.clock = clock
    lib1 = kiosk_client(d)
    assert [look_up(lib1, card).status_code for card in UNKNOWN_CARDS[:5]] == [404] * 5
    assert user_lookups(d) == 5

    paused = look_up(lib1, MARIA)  # even a card Alma knows: the answer is what is probed
    assert paused.status_code == 429 and paused.json()["error"]["code"] == "kiosk_cooling_down"
    assert paused.headers["Retry-After"] == "300"
    assert user_lookups(d) == 5  # no Alma call while paused

    assert look_up(kiosk_client(d, "lib2", OTHER_SECRET), MARIA).status_code == 201
    assert [(e["payment_id"], e["source"]) for e in cooldown_events(d)] == [(None, "kiosk:lib1")]
    assert '"kiosk_id": "lib1"' in cooldown_events(d)[0]["detail"]
    warnings = [r for r in caplog.records if getattr(r, "event", "") == "kiosk_cooldown"]
    assert [r.levelno for r in warnings] == [logging.WARNING]

    clock.now += 301
    assert look_up(lib1, MARIA).status_code == 201
    assert len(cooldown_events(d)) == 1  # one event per pause, not per refused lookup


def test_failures_older_than_the_window_do_not_count(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET}", kiosk_lookup_failures="3",
               kiosk_cooldown_seconds="60")
    clock = Clock()
    d.services.kiosk_lookups.clock = clock
    lib1 = kiosk_client(d)
    for card in UNKNOWN_CARDS[:2]:
        assert look_up(lib1, card).status_code == 404
    clock.now += 61
    for card in UNKNOWN_CARDS[2:4]:
        assert look_up(lib1, card).status_code == 404
    assert look_up(lib1, MARIA).status_code == 201
    assert cooldown_events(d) == []


def test_the_agent_pauses_lookups_itself_and_tells_the_page(kiosk, caplog):
    caplog.set_level(logging.INFO)
    k = kiosk()
    agent_clock = proxy_clock = Clock()
    k.service.lookups.clock = agent_clock
    k.d.services.kiosk_lookups.clock = proxy_clock  # the proxy counted the same five
    events = Events(k.url)
    try:
        outcomes = [k.scan(card) for card in UNKNOWN_CARDS[:5]]
        assert outcomes == [{"result": "refused", "reason": "card_not_recognised"}] * 4 + [
            {"result": "refused", "reason": "cooling_down"}]
        before = user_lookups(k.d)
        assert k.scan(MARIA) == {"result": "refused", "reason": "cooling_down"}
        assert user_lookups(k.d) == before  # refused in the agent: the proxy was not asked
        events.wait(lambda e: e.get("reason") == "cooling_down", "the page to be told")
    finally:
        events.stop()
    assert k.session() is None
    assert any(getattr(r, "event", "") == "lookup_cooldown" and r.levelno == logging.WARNING
               for r in caplog.records)
    agent_clock.now += 301  # (one clock for both)
    assert k.scan(THOMAS) == {"result": "accepted"}  # (MARIA again now would be a repeat)


def test_the_agent_honours_a_pause_the_proxy_imposed(kiosk):
    k = kiosk()
    k.service.lookups.clock = Clock()
    for _ in range(5):  # the proxy paused this kiosk (another agent process, a restart)
        k.d.services.kiosk_lookups.failed("lib1")
    assert k.scan(MARIA) == {"result": "refused", "reason": "cooling_down"}
    assert k.service.lookups.paused_for() == pytest.approx(300, abs=5)
    before = len(k.d.alma_calls())
    assert k.scan(UNKNOWN_CARDS[0]) == {"result": "refused", "reason": "cooling_down"}
    assert len(k.d.alma_calls()) == before
