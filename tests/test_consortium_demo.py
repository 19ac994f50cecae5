"""`patronpay demo --consortium` as a newcomer runs it (issue 20 item 6,
docs/consortium.md#sandbox-and-demo): a real process serving the two sandbox institutions by
path prefix, printing each one's address and how to sign in there; the sign-in it prints for
Campus A's guest account works, and Campus A's fees come from Campus A's own Alma."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from support.demo_process import DemoProcess, running_demo


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    with running_demo("--consortium") as running:
        yield running


def test_the_consortium_demo_serves_both_institutions_by_path_and_says_how_to_sign_in(demo):
    lines = demo.printed_until("Stop with Ctrl-C.")
    site = re.fullmatch(r"patronpay demo: a consortium of 2 institutions at (http://[\d.:]+)/",
                        lines[0]).group(1)
    printed = "\n".join(lines)
    assert f"  Campus A Library: {site}/campus-a/" in lines
    assert f"  Campus B Libraries: {site}/campus-b/" in lines
    assert re.search(r"Library guest account: +jsmith / correct-horse-7", printed)
    assert re.search(r"Sign in with your campus account: +rgarcia / student-pass", printed)

    with httpx.Client(base_url=site, timeout=15.0, headers={"Origin": site}) as client:
        listing = client.get("/")
        assert listing.status_code == 200
        assert "Campus A Library" in listing.text and "Campus B Libraries" in listing.text
        for code, name in (("campus-a", "Campus A Library"), ("campus-b", "Campus B Libraries")):
            page = client.get(f"/{code}/")
            assert page.status_code == 200 and name in page.text
        signed_in = client.post("/campus-a/auth/alma",
                                json={"user_id": "jsmith", "password": "correct-horse-7"})
        assert signed_in.status_code == 200, signed_in.text
        fees = client.get("/campus-a/api/fees")
        assert fees.status_code == 200, fees.text
        assert fees.json()["fees"], fees.text
        # Campus A's session is Campus A's: its cookie's path keeps it from Campus B.
        assert client.get("/campus-b/api/fees").status_code == 401
