"""The staff pages' kiosk list (issue 19 item 3, docs/staff.md#staff-pages): every configured
kiosk with its state and when it was last heard from, as `patronpay kiosks` lists them; one
not heard from for five minutes is offline; a kiosk no longer configured is listed as such; the
page is for staff only."""

from __future__ import annotations

import re
import time
from html import unescape

import httpx
from support.kiosk import SECRET

from proxy import kiosk_fleet

OTHER_SECRET = "other-kiosk-secret-0123456789abcdef0123"
THIRD_SECRET = "third-kiosk-secret-0123456789abcdef01234"


def staff_browser(d, user: str = "tlee") -> httpx.Client:
    client = d.browser()
    answer = client.get("/staff/auth/sso?next=/staff/", headers={"X-Remote-User": user})
    assert (answer.status_code, answer.headers.get("location")) == (303, "/staff/"), answer.text
    return client


def rows_of(html: str) -> list[list[str]]:
    """The kiosk table's body rows as a reader sees their cells."""
    body = re.search(r'<table id="kiosks">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [[" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())
             for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def report(d, kiosk_id: str, heard_at: float, **fields) -> None:
    body = {"version": "0.1.0", "reader": "connected", "printer": "ready"} | fields
    kiosk_fleet.record_report(d.services.db, kiosk_id, kiosk_fleet.parse_report(body), heard_at)


def test_staff_see_every_kiosk_its_state_and_when_it_was_last_heard(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET},lib2={OTHER_SECRET},lib3={THIRD_SECRET}")
    now = time.time()
    report(d, "lib1", now, last_scan_at="2026-12-01T10:00:00Z", disk_free_bytes=3 * 2**30)
    report(d, "lib2", now - 301, reader="disconnected", printer="paper_out")
    report(d, "old-kiosk", now, version="0.0.9", printer="none")

    page = staff_browser(d).get("/staff/kiosks")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert '<a href="/staff/kiosks" aria-current="page">Kiosks</a>' in page.text
    assert "2 of the configured kiosks are not online." in unescape(page.text)
    rows = rows_of(page.text)
    assert [r[:2] for r in rows] == [["lib1", "online"], ["lib2", "offline"],
                                     ["lib3", "never heard"],
                                     ["old-kiosk (not configured)", "online"]]
    lib1, lib2, lib3, old = rows
    assert lib1[2].endswith("(just now)") and lib1[3:] == [
        "connected", "ready", "0.1.0", "2026-12-01 10:00:00", "-", "3.0 GiB"]
    assert lib2[2].endswith("(5 min ago)") and lib2[3:5] == ["disconnected", "paper_out"]
    assert lib3[2:] == ["never", "-", "-", "-", "-", "-", "-"]
    assert old[3:6] == ["connected", "none", "0.0.9"]


def test_all_online_and_no_kiosks_at_all(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET}")
    report(d, "lib1", time.time())
    assert "Every configured kiosk is online." in staff_browser(d).get("/staff/kiosks").text
    bare = deploy()
    page = staff_browser(bare).get("/staff/kiosks")
    assert "No kiosks: none in PATRONPAY_KIOSK_KEYS and none has reported." in page.text


def test_the_kiosk_list_is_for_staff_only(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET}")
    # Anyone else, a signed-in patron too, is sent to the staff sign-in and sees no kiosk.
    for client in (d.browser(), d.sign_in_sso("mkowalski")):
        answer = client.get("/staff/kiosks")
        assert answer.status_code == 303 and "/sso/login?next=/staff" in answer.headers["location"]
        assert "lib1" not in answer.text
