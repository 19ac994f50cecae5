"""A kiosk scan reads the card's fees beside the card lookup (proxy/kiosk_fees.py): the page's
fees cost no round trip of their own, and the list is kept only for the patron USER names."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest

from kiosk.signing import KioskAuth
from proxy.fee_cache import FeeCache
from proxy.fees import FeeList
from proxy.kiosk_fees import CardFees
from proxy.money import ZERO

SECRET = "lib1-secret-0123456789abcdef0123456789"
MARIA_CARD = "23191000105866"
UNKNOWN_CARD = "23191000999995"
LATENCY_MS = 1000


def kiosk_client(d) -> httpx.Client:
    client = httpx.Client(base_url=d.url, auth=KioskAuth("lib1", SECRET), timeout=15.0,
                          headers={"Origin": d.url})
    d.clients.append(client)
    return client


def scan(client, card=MARIA_CARD) -> httpx.Response:
    return client.post("/api/kiosk/sessions",
                       json={"credential": {"kind": "library_barcode", "value": card}})


def page_fees(client, opened: dict) -> httpx.Response:
    return client.get("/api/fees", headers={"Cookie": f"patronpay_session={opened['session']}",
                                            "X-CSRF-Token": opened["csrf_token"]})


def calls(d) -> Counter:
    """Alma's GETs by (who was asked for, what), since the last look."""
    taken = Counter((c["path"].removeprefix("/almaws/v1/users/"),
                     tuple(c["query"].get("user_id_type", [])))
                    for c in d.alma_calls("GET"))
    d.alma.clear_requests()
    return taken


@pytest.fixture
def d(deploy):
    return deploy(kiosk_keys=f"lib1={SECRET}")


def test_the_fees_are_read_at_the_same_time_as_the_card(d):
    client = kiosk_client(d)
    d.alma.set_faults({"latency_ms": LATENCY_MS})
    started = time.monotonic()
    opened = scan(client)
    assert opened.status_code == 201, opened.text
    fees = page_fees(client, opened.json())
    took = time.monotonic() - started
    assert fees.status_code == 200, fees.text
    assert fees.json()["total"] == "77.25"
    # One after the other, the two calls could not take less than two latencies.
    assert took < 2 * LATENCY_MS / 1000, f"scan to fees took {took:.2f} s"
    assert calls(d) == Counter({(MARIA_CARD, ("all_unique",)): 1,
                                (MARIA_CARD + "/fees", ("all_unique",)): 1})


def test_the_fees_are_read_by_the_configured_identifier_type(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET}", kiosk_user_id_type="UNIV_ID")
    client = kiosk_client(d)
    opened = scan(client, "900123456")
    assert opened.status_code == 201, opened.text
    assert page_fees(client, opened.json()).json()["total"] == "77.25"
    assert calls(d) == Counter({("900123456", ("UNIV_ID",)): 1,
                                ("900123456/fees", ("UNIV_ID",)): 1})


def test_a_card_alma_does_not_know_opens_nothing_and_keeps_nothing(d):
    client = kiosk_client(d)
    assert scan(client, UNKNOWN_CARD).status_code == 404
    assert d.services.db.read_one("SELECT COUNT(*) FROM sessions")[0] == 0


def test_when_user_fails_the_fees_read_by_the_card_are_not_kept(d):
    client = kiosk_client(d)
    d.alma.set_faults({"rules": [{"match": {"method": "GET", "path": "/almaws/v1/users/"
                                            + MARIA_CARD}, "mode": "http_5xx", "status": 500}]})
    refused = scan(client)
    assert refused.status_code >= 500
    assert d.services.db.read_one("SELECT COUNT(*) FROM sessions")[0] == 0
    d.alma.set_faults({})
    d.alma.clear_requests()
    patron = d.sign_in_sso("mkowalski")  # the same patron, a moment later
    assert patron.get("/api/fees").json()["total"] == "77.25"
    assert calls(d)[("mkowalski/fees", ())] == 1  # read again: nothing was kept from the card


def test_when_the_fees_read_by_the_card_fails_the_page_reads_them_itself(d):
    client = kiosk_client(d)
    d.alma.set_faults({"rules": [{"match": {"method": "GET", "path": "/almaws/v1/users/"
                                            + MARIA_CARD + "/fees"},
                                  "mode": "alma_error", "status": 400}]})
    opened = scan(client)
    assert opened.status_code == 201, opened.text
    fees = page_fees(client, opened.json())
    assert fees.status_code == 200 and fees.json()["total"] == "77.25"
    assert calls(d)[("mkowalski/fees", ())] == 1


def test_with_no_kept_lists_a_scan_reads_nothing_ahead(deploy):
    d = deploy(kiosk_keys=f"lib1={SECRET}", fees_fresh_seconds="0")
    client = kiosk_client(d)
    opened = scan(client)
    assert opened.status_code == 201, opened.text
    assert page_fees(client, opened.json()).status_code == 200
    assert calls(d) == Counter({(MARIA_CARD, ("all_unique",)): 1, ("mkowalski/fees", ()): 1})


# -- whose list it is, without Alma ------------------------------------------------------------


class FakeAlma:
    def __init__(self, owner: str) -> None:
        self.owner = owner

    async def list_fees(self, user_id: str, status: str = "ACTIVE",
                        id_type: str | None = None) -> dict:
        return {"fee": [{"id": "f1", "type": {"value": "OVERDUEFINE"}, "status": {"value": status},
                         "balance": Decimal("5.00"), "original_amount": Decimal("5.00"),
                         "user_primary_id": {"value": self.owner}}],
                "total_record_count": 1, "total_sum": Decimal("5.00")}


def kiosk_services(owner: str, markers: list[tuple]):
    settings = SimpleNamespace(show_exported_fees=False, payable_fee_types=[],
                               payable_libraries=[], institution_code="", currency="USD",
                               pending_hold_minutes=30, max_open_payments=1)
    ledger = SimpleNamespace(clock=lambda: 1000.0, in_progress=lambda patron, rules: [],
                             patron_marker=lambda patron: markers.pop(0) if len(markers) > 1
                             else markers[0])
    cache = FeeCache(30, ledger.patron_marker)
    return SimpleNamespace(alma=FakeAlma(owner), settings=settings, ledger=ledger,
                           fee_cache=cache)


async def page_read(svc, patron_id: str) -> tuple[FeeList, int]:
    """What the page gets, and how many reads of its own it made."""
    reads = []

    async def read() -> FeeList:
        reads.append(1)
        return FeeList(currency="USD", total=ZERO, fees=(), inexact=())

    return await svc.fee_cache.get(patron_id, read), len(reads)


def scanned(svc, patron_id: str) -> tuple[FeeList, int]:
    async def go():
        with CardFees(svc, "card", "all_unique") as card_fees:
            card_fees.keep_for(patron_id)
        return await page_read(svc, patron_id)
    return asyncio.run(go())


def test_a_list_of_the_patron_user_named_is_kept():
    fees, own_reads = scanned(kiosk_services("mkowalski", [(0, 0.0, 0)]), "mkowalski")
    assert own_reads == 0 and [fee.id for fee in fees.fees] == ["f1"]


def test_a_list_that_names_another_patron_is_thrown_away():
    fees, own_reads = scanned(kiosk_services("someone-else", [(0, 0.0, 0)]), "mkowalski")
    assert own_reads == 1 and fees.fees == ()


def test_a_list_read_while_a_payment_moved_is_thrown_away():
    # The marker after USER, then a different one when the card's list arrives.
    fees, own_reads = scanned(kiosk_services("mkowalski", [(0, 0.0, 0), (1, 1001.0, 0)]),
                              "mkowalski")
    assert own_reads == 1


def test_a_list_read_after_a_payment_moved_since_the_scan_began_is_thrown_away():
    fees, own_reads = scanned(kiosk_services("mkowalski", [(1, 1000.5, 0)]), "mkowalski")
    assert own_reads == 1
