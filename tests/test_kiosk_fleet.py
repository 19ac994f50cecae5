"""A fleet staff can see (issue 19, item 3): each kiosk agent reports its state to the proxy,
signed, on a timer; `patronpay kiosks` lists every configured kiosk with its state and when it
was last heard from; an agent that stops reporting turns offline after five minutes, with one
`kiosk_offline` event in the ledger per offline spell (the staff alerts read those), and
/metrics carries the kiosks' states."""

from __future__ import annotations

import argparse
import io
import json
import re
import time

import httpx
import pytest
from support.kiosk import MARIA, SECRET
from support.waiting import wait_for

from kiosk.printer import parse_printer
from kiosk.signing import signed_headers
from patronpay.kiosk_commands import run_kiosks
from proxy import kiosk_fleet
from sandbox.printer import VirtualPrinter

OTHER_SECRET = "other-kiosk-secret-0123456789abcdef0123"


def heard(d, kiosk_id: str = "lib1"):
    return d.services.db.read_one("SELECT heard_at, reader, printer, version, last_scan_at,"
                                  " disk_free_bytes FROM kiosk_reports WHERE kiosk_id = ?",
                                  (kiosk_id,))


def kiosks(d, now: float | None = None, as_json: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    status = run_kiosks(argparse.Namespace(json=as_json), d.settings, out, now=now)
    return status, out.getvalue()


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def events(d, kind: str) -> list[dict]:
    return [json.loads(row[0]) for row in d.services.db.read(
        "SELECT detail FROM events WHERE kind = ? AND payment_id IS NULL ORDER BY id", (kind,))]


def test_a_reporting_kiosk_is_listed_with_its_reader_printer_and_last_scan(kiosk, tmp_path):
    printer = VirtualPrinter(tmp_path / "receipts").start()
    try:
        k = kiosk(printer=parse_printer(printer.connection), report_seconds=0.2)
        d = k.d
        wait_for(lambda: heard(d) is not None and heard(d)["printer"] == "ready",
                 "the first report")
        assert k.scan(MARIA)["result"] == "accepted"
        wait_for(lambda: heard(d)["last_scan_at"] is not None, "a report with the scan")
        row = heard(d)
        assert (row["reader"], row["printer"]) == ("none", "ready")
        assert row["version"] and row["disk_free_bytes"] > 0
        assert abs(row["last_scan_at"] - time.time()) < 5

        status, text = kiosks(d)
        assert status == 0
        header, line = text.splitlines()
        assert cells(header) == ["KIOSK", "STATE", "LAST HEARD (UTC)", "READER", "PRINTER",
                                 "VERSION", "LAST SCAN (UTC)", "LAST PAYMENT (UTC)", "FREE DISK"]
        row = cells(line)
        assert row[:2] == ["lib1", "online"] and row[2].endswith("(just now)")
        assert row[3:5] == ["none", "ready"] and row[7] == "-" and row[8].endswith(" GiB")
        status, text = kiosks(d, as_json=True)
        [listed] = json.loads(text)
        assert {key: listed[key] for key in ("kiosk_id", "configured", "state", "reader",
                                            "printer", "last_payment")} == {
            "kiosk_id": "lib1", "configured": True, "state": "online", "reader": "none",
            "printer": "ready", "last_payment": None}
        assert listed["last_scan"].endswith("Z") and listed["last_heard"].endswith("Z")
    finally:
        printer.close()


def test_an_agent_that_stops_reporting_turns_offline_and_is_alerted_once(kiosk):
    k = kiosk(report_seconds=0.2)
    d = k.d
    wait_for(lambda: heard(d) is not None, "the first report")
    k.server.stop()  # the kiosk is switched off
    last = heard(d)["heard_at"]

    assert cells(kiosks(d, now=last + 299)[1].splitlines()[1])[:2] == ["lib1", "online"]
    status, text = kiosks(d, now=last + 301)
    assert status == 1
    row = cells(text.splitlines()[1])
    assert row[:2] == ["lib1", "OFFLINE"] and row[2].endswith("(5 min ago)")

    ids = list(d.settings.kiosk_keys)
    assert kiosk_fleet.sweep(d.services.db, ids, last + 290) == []
    assert kiosk_fleet.sweep(d.services.db, ids, last + 301) == ["lib1"]
    assert kiosk_fleet.sweep(d.services.db, ids, last + 900) == []  # one alert per spell
    assert events(d, "kiosk_offline") == [{"kiosk_id": "lib1", "last_heard_at": last}]

    # It comes back: heard again, online, and its return is in the trail.
    body = {"version": "0.1.0", "reader": "connected", "printer": "none"}
    assert post_report(d, json.dumps(body).encode()).json() == {"ok": True}
    assert cells(kiosks(d)[1].splitlines()[1])[:2] == ["lib1", "online"]
    assert [e["kiosk_id"] for e in events(d, "kiosk_back")] == ["lib1"]
    assert kiosk_fleet.sweep(d.services.db, ids, time.time()) == []


def test_a_configured_kiosk_never_heard_from_and_one_no_longer_configured(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET},lib2={OTHER_SECRET}")
    kiosk_fleet.record_report(d.services.db, "old-kiosk", kiosk_fleet.parse_report(
        {"version": "0.0.9", "reader": "connected", "printer": "none"}), time.time())
    status, text = kiosks(d)
    lines = text.splitlines()[1:]
    assert status == 1
    assert [cells(line)[:3] for line in lines] == [
        ["lib1", "never heard", "never"], ["lib2", "never heard", "never"],
        ["old-kiosk (not configured)", "online", cells(lines[2])[2]]]
    assert cells(lines[2])[3:6] == ["connected", "none", "0.0.9"]
    # A kiosk removed from the settings is listed but never alerted about.
    assert kiosk_fleet.sweep(d.services.db, list(d.settings.kiosk_keys), time.time() + 900) == []


def post_report(d, body: bytes, kiosk_id: str = "lib1", secret: str = SECRET) -> httpx.Response:
    headers = signed_headers(kiosk_id, secret, "POST", "/api/kiosk/report", body)
    return httpx.post(d.url + "/api/kiosk/report", content=body, headers=headers | {
        "Content-Type": "application/json", "Origin": d.url})


@pytest.mark.parametrize(("body", "reason"), [
    ({"version": "1.0", "reader": "on fire", "printer": "none"}, "reader must be one of"),
    ({"version": "1.0", "reader": "none", "printer": "jammed"}, "printer must be one of"),
    ({"version": "\x1b[2J", "reader": "none", "printer": "none"}, "version must be"),
    ({"version": "1.0", "reader": "none", "printer": "none", "patron": "mkowalski"},
     "unknown field: patron"),
    ({"version": "1.0", "reader": "none", "printer": "none", "last_scan_at": "yesterday"},
     "last_scan_at must be an ISO 8601 time"),
    ({"version": "1.0", "reader": "none", "printer": "none", "disk_free_bytes": -1},
     "disk_free_bytes must be"),
])
def test_reports_are_checked(deploy, body, reason):
    d = deploy(kiosk_keys=f"lib1={SECRET}")
    answer = post_report(d, json.dumps(body).encode())
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_report"
    assert reason in answer.json()["error"]["message"]
    assert heard(d) is None


def test_reports_must_be_signed_by_a_known_kiosk(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET}")
    body = json.dumps({"version": "1.0", "reader": "none", "printer": "none"}).encode()
    unsigned = httpx.post(d.url + "/api/kiosk/report", content=body,
                          headers={"Content-Type": "application/json", "Origin": d.url})
    assert unsigned.status_code == 401
    assert post_report(d, body, "lib2", OTHER_SECRET).status_code == 401
    assert post_report(d, body, "lib1", OTHER_SECRET).status_code == 401
    assert heard(d) is None
    assert post_report(d, body).json() == {"ok": True}
    assert heard(d)["version"] == "1.0"


def test_metrics_carry_the_kiosks_states(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET},lib2={OTHER_SECRET}")
    body = json.dumps({"version": "1.0", "reader": "disconnected", "printer": "paper_out"})
    assert post_report(d, body.encode()).status_code == 200
    scrape = httpx.get(d.url + "/metrics")
    assert scrape.status_code == 200
    lines = set(scrape.text.splitlines())
    for expected in ('patronpay_kiosk_state{kiosk="lib1",state="online"} 1.0',
                     'patronpay_kiosk_state{kiosk="lib2",state="never_heard"} 1.0',
                     'patronpay_kiosk_state{kiosk="lib2",state="online"} 0.0',
                     'patronpay_kiosk_reader_state{kiosk="lib1",state="disconnected"} 1.0',
                     'patronpay_kiosk_printer_state{kiosk="lib1",state="paper_out"} 1.0',
                     'patronpay_kiosk_printer_state{kiosk="lib1",state="ready"} 0.0'):
        assert expected in lines, expected


def test_an_offline_kiosk_becomes_one_staff_alert(deploy):
    """The e-mail alerts read the ledger's trail (proxy/mail/): an offline spell is one alert."""
    from proxy.mail.outbox import DeriveRules, Outbox

    d = deploy(kiosk_keys=f"lib1={SECRET}")
    db, now = d.services.db, time.time()
    report = kiosk_fleet.parse_report({"version": "1.0", "reader": "connected", "printer": "none"})
    kiosk_fleet.record_report(db, "lib1", report, now - 400)
    assert kiosk_fleet.sweep(db, ["lib1"], now) == ["lib1"]
    assert kiosk_fleet.sweep(db, ["lib1"], now + 60) == []
    Outbox(db, lambda: now + 60).derive(DeriveRules(receipts=False, alerts=True,
                                                    posting_late_seconds=1800.0,
                                                    domain="library.example.edu"))
    alerts = [(row[0], json.loads(row[1])) for row in db.read("SELECT kind, detail FROM mail_alerts")]
    assert alerts == [("kiosk_offline", {"kiosk_id": "lib1", "last_heard_at": now - 400})]
