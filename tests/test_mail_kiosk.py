"""The kiosk's e-mailed receipt over loopback (docs/kiosk.md#e-mailed-receipt): a kiosk payment
mails no receipt until the patron chooses "E-mail receipt" on the kiosk's screen, then exactly
one, and a second choice sends nothing more; a choice made while the payment is still being
posted mails when it is posted; the screen learns only a masked hint of the address; a patron
without an address is offered no choice; `PATRONPAY_KIOSK_RECEIPT_EMAIL=always` mails kiosk
receipts as web ones. (Web payments keep their automatic receipt: tests/test_mail.py.)"""

from __future__ import annotations

import httpx
import pytest
from support.kiosk import MARIA, SECRET, Kiosk
from support.waiting import wait_for

from kiosk.signing import KioskAuth
from proxy.mail.outbox import Outbox
from sandbox.smtp import Mailbox, SmtpServer

MAIL_FROM = "Library fines <fines@library.example.edu>"
DAVID = "23191000200048"  # dokafor: no e-mail address in Alma
OVERDUE, DAMAGED = "7730012450004146", "7730020010004146"
PAY_PATH = "/almaws/v1/users/*/fees/*"
HINT = "m\u2022\u2022\u2022@example.edu"


@pytest.fixture
def smtp_server():
    server = SmtpServer(Mailbox()).start()
    yield server
    server.stop()


@pytest.fixture
def mail_kiosk(kiosk, smtp_server):
    def start(**proxy_settings: str) -> Kiosk:
        settings = {"smtp_url": smtp_server.url, "mail_from": MAIL_FROM,
                    "mail_backoff_cap_seconds": "0.3"} | proxy_settings
        return kiosk(proxy_settings=settings)
    return start


def pay(k: Kiosk, card: str = MARIA, state: str = "posted") -> tuple[str, str]:
    """The patron scans, pays on CashNet and comes back: (the page's handle, the payment id)."""
    assert k.scan(card)["result"] == "accepted"
    handle = k.handle()
    page = k.page()
    created = page.post("/api/payments", json={"amount": "5.00"},
                        headers={"X-CSRF-Token": handle})
    assert created.status_code == 201, created.text
    payment_id = created.json()["payment"]["id"]
    completion = k.d.cashnet.complete(k.d.hand_off(created.json()["checkout"]), outcome="pay")
    k.d.wait_for_state(payment_id, state)
    assert k.d.follow_signout(completion).status_code == 303
    return handle, payment_id


def offer(k: Kiosk, handle: str) -> dict:
    answer = k.page().get("/api/receipt/email", params={"handle": handle})
    assert answer.status_code == 200, answer.text
    return answer.json()["email"]


def choose_email(k: Kiosk, handle: str) -> httpx.Response:
    return k.page().post("/api/receipt/email", headers={"X-CSRF-Token": handle})


def caught_up(k: Kiosk) -> None:
    """The mail worker has read the whole event trail."""
    db = k.d.services.db
    wait_for(lambda: (db.read_one("SELECT value FROM mail_marks WHERE name = 'events'")
                      or [0])[0] >= db.read_one("SELECT MAX(id) FROM events")[0],
             "the mail worker to catch up")


def receipt_rows(k: Kiosk):
    return Outbox(k.d.services.db, k.d.services.ledger.clock).rows("receipt")


def trail(k: Kiosk, payment_id: str) -> list[str]:
    return [e["kind"] for e in k.d.ledger.events(payment_id)]


def test_a_kiosk_receipt_is_mailed_once_only_when_the_patron_asks(mail_kiosk, smtp_server):
    k = mail_kiosk()
    handle, payment_id = pay(k)
    caught_up(k)
    assert receipt_rows(k) == [] and smtp_server.mailbox.messages() == []  # not by itself

    assert offer(k, handle) == {"offered": True, "automatic": False, "requested": False,
                                "to": HINT}
    chosen = choose_email(k, handle)
    assert chosen.status_code == 202, chosen.text
    assert chosen.json()["email"] == {"offered": False, "automatic": False, "requested": True,
                                      "to": HINT}
    [received] = wait_for(lambda: smtp_server.mailbox.messages(), "the receipt")
    assert received.rcpt_tos == ("mkowalski@example.edu",)
    assert "Paid at: kiosk lib1" in received.part("plain")
    assert payment_id in received.part("plain")

    again = choose_email(k, handle)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_requested")
    assert offer(k, handle) == {"offered": False, "automatic": False, "requested": True,
                                "to": HINT}
    wait_for(lambda: [r.state for r in receipt_rows(k)] == ["sent"], "the receipt sent")
    caught_up(k)
    assert len(smtp_server.mailbox.messages()) == 1
    kinds = trail(k, payment_id)
    assert kinds.count("receipt_requested") == 1 and kinds.count("receipt_sent") == 1
    request = next(e for e in k.d.ledger.events(payment_id) if e["kind"] == "receipt_requested")
    assert (request["source"], request["detail"]) == ("kiosk:lib1", {"kiosk_id": "lib1"})


def test_asked_while_posting_is_under_way_it_is_mailed_once_posted(mail_kiosk, smtp_server):
    k = mail_kiosk()
    # Alma refuses payments for now: the payment stays `paid`.
    k.d.alma.set_faults({"rules": [{"match": {"method": "POST", "path": PAY_PATH},
                                    "mode": "http_5xx", "status": 503, "next": 10000}]})
    handle, payment_id = pay(k, state="paid")
    assert offer(k, handle)["offered"] is True
    assert choose_email(k, handle).status_code == 202
    caught_up(k)
    assert receipt_rows(k) == [] and smtp_server.mailbox.messages() == []

    k.d.alma.set_faults({"rules": []})  # Alma is back
    k.d.wait_for_state(payment_id, "posted")
    [received] = wait_for(lambda: smtp_server.mailbox.messages(), "the receipt")
    assert received.rcpt_tos == ("mkowalski@example.edu",)
    wait_for(lambda: [r.state for r in receipt_rows(k)] == ["sent"], "the receipt sent")


def test_no_address_no_choice(mail_kiosk, smtp_server):
    k = mail_kiosk()
    handle, payment_id = pay(k, card=DAVID)
    assert offer(k, handle) == {"offered": False, "automatic": False, "requested": False,
                                "to": ""}
    refused = choose_email(k, handle)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "email_unavailable")
    assert "receipt_requested" not in trail(k, payment_id)


@pytest.mark.parametrize("settings", [{"receipt_email": "false"}, {"smtp_url": ""}],
                         ids=["receipts off", "no mail server"])
def test_no_choice_when_receipts_cannot_be_mailed(kiosk, settings):
    k = kiosk(proxy_settings={"mail_from": MAIL_FROM} | settings)
    handle, _ = pay(k)
    assert offer(k, handle)["offered"] is False


def test_always_mails_kiosk_receipts_without_asking(mail_kiosk, smtp_server):
    k = mail_kiosk(kiosk_receipt_email="always")
    handle, _ = pay(k)
    assert offer(k, handle) == {"offered": False, "automatic": True, "requested": False,
                                "to": HINT}
    [received] = wait_for(lambda: smtp_server.mailbox.messages(), "the receipt")
    assert received.rcpt_tos == ("mkowalski@example.edu",)
    assert choose_email(k, handle).json()["error"]["code"] == "email_unavailable"


def test_only_the_sessions_own_payment_at_its_own_kiosk(mail_kiosk):
    k = mail_kiosk()
    _, payment_id = pay(k)
    d = k.d
    proxy = httpx.Client(base_url=d.url, auth=KioskAuth("lib1", SECRET), timeout=15,
                         headers={"Origin": d.url})
    d.clients.append(proxy)
    opened = proxy.post("/api/kiosk/sessions",  # the next patron at the same kiosk
                        json={"credential": {"kind": "library_barcode", "value": DAVID}})
    assert opened.status_code == 201, opened.text
    session = opened.json()
    headers = {"Cookie": f"patronpay_session={session['session']}",
               "X-CSRF-Token": session["csrf_token"]}
    path = f"/api/kiosk/payments/{payment_id}/receipt-email"
    assert proxy.get(path, headers=headers).status_code == 404
    assert proxy.post(path, headers=headers, json={}).status_code == 404
    unsigned = httpx.post(d.url + path, headers=headers | {"Origin": d.url}, json={})
    assert unsigned.status_code == 401
    assert "receipt_requested" not in trail(k, payment_id)
