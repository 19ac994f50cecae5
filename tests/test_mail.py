"""E-mail over loopback (docs/staff.md#e-mail): a proxy wired to the sandbox's SMTP server
sends each posted payment's receipt once, in the patron's language, with the kiosk named for a
kiosk payment and nothing without an address; staff alerts come one per event or gathered in
a digest; and a mail server that is down delays mail and nothing else."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import httpx
import pytest
from aiosmtpd.controller import Controller
from support.rig import free_port
from support.waiting import wait_for

from kiosk.signing import KioskAuth
from proxy.mail.outbox import Outbox
from proxy.mail.worker import GIVE_UP_SECONDS
from sandbox.smtp import Mailbox, SmtpServer

MAIL_FROM = "Library fines <fines@library.example.edu>"
STAFF = "circ-desk@library.example.edu"
LIBRARY = "Example University Library"
KIOSK_SECRET = "lobby-secret-0123456789abcdef0123456789"
MARIA_CARD = "23191000105866"


@pytest.fixture
def smtp_server():
    server = SmtpServer(Mailbox()).start()
    yield server
    server.stop()


@pytest.fixture
def mail_deploy(deploy, smtp_server):
    def start(**overrides: str):
        settings = {"smtp_url": smtp_server.url, "mail_from": MAIL_FROM, "staff_email": STAFF,
                    "library_name": LIBRARY, "mail_backoff_cap_seconds": "0.3"} | overrides
        return deploy(**settings)
    return start


def outbox(d) -> Outbox:
    return Outbox(d.services.db, d.services.ledger.clock)


def wait_for_mail(mailbox: Mailbox, count: int, timeout: float = 15.0):
    return wait_for(lambda: len(mailbox.messages()) >= count and mailbox.messages(),
                    f"{count} message(s) in the sandbox mailbox", timeout=timeout)


def settled(d, kind: str, count: int = 1):
    """The outbox rows of `kind` once every one has been sent or skipped."""
    def done():
        rows = outbox(d).rows(kind)
        return len(rows) >= count and all(r.state in ("sent", "skipped") for r in rows) and rows
    return wait_for(done, f"{count} {kind} row(s) sent or skipped")


def test_a_posted_payment_mails_one_receipt_in_text_and_html(mail_deploy, smtp_server):
    d = mail_deploy()
    created, completion = d.pay(d.sign_in_sso("mkowalski"), amount="62.00")
    payment = d.wait_for_state(created["payment"]["id"], "posted")
    [row] = settled(d, "receipt")
    [received] = wait_for_mail(smtp_server.mailbox, 1)

    assert received.rcpt_tos == ("mkowalski@example.edu",)
    assert received.mail_from == "fines@library.example.edu"
    assert received.message_id == row.message_id
    assert received.subject == f"Your payment to {LIBRARY}: $62.00"
    text, page = received.part("plain"), received.part("html")
    for line in (f"Library: {LIBRARY}", "Amount: $62.00", f"CashNet transaction: {completion['tx']}",
                 f"Payment reference: {payment.id}", "Paid at: the library's website"):
        assert line in text.splitlines()
    assert "Dear Maria," in text
    for shown in (LIBRARY, "$62.00", completion["tx"], payment.id,
                  "the library&#39;s website", "<h1"):
        assert shown in page
    assert [line for line in text.splitlines() if line.startswith("  - ")] == [
        "  - Lost item replacement fee: $60.00", "  - Overdue fine: $2.00"]
    assert "<li>Lost item replacement fee: $60.00</li>" in page
    # Card data never reaches patronpay, so no receipt can hold any.
    assert not re.search(r"\b4\d{12,18}\b", text + page)
    trail = [e["kind"] for e in d.ledger.events(payment.id)]
    assert trail[-1] == "receipt_sent"
    # Later rounds send nothing more.
    wait_for(lambda: outbox(d).rows("receipt")[0].state == "sent", "the row to stay sent")
    assert len(smtp_server.mailbox.messages()) == 1


def test_the_receipt_is_in_the_language_the_patron_paid_in(mail_deploy, smtp_server):
    d = mail_deploy()
    patron = d.sign_in_sso("mkowalski")
    patron.cookies.set("patronpay_lang", "es")
    created, completion = d.pay(patron, fee_ids=["7730012450004146"])
    d.wait_for_state(created["payment"]["id"], "posted")
    [received] = wait_for_mail(smtp_server.mailbox, 1)
    assert received.message["Content-Language"] == "es"
    assert received.subject == f"Su pago a {LIBRARY}: $4.75"
    text = received.part("plain")
    assert "Recibo de pago" in text and "Monto: $4.75" in text
    assert "Multa por retraso: $4.75" in text  # the fee type in Spanish
    assert "el sitio web de la biblioteca" in text
    assert 'lang="es"' in received.part("html")


@pytest.mark.parametrize("query, paid_at", [
    ("", "Paid at: kiosk lobby-1"),
    # What the kiosk agent sends when the patron chose Spanish on the kiosk page.
    ("?lang=es", "el quiosco lobby-1"),
])
def test_a_kiosk_receipt_names_the_kiosk(mail_deploy, smtp_server, query, paid_at):
    # Mailed without asking, as a web payment's (the default asks the patron at the kiosk:
    # tests/test_mail_kiosk.py).
    d = mail_deploy(kiosk_keys=f"lobby-1={KIOSK_SECRET}", kiosk_receipt_email="always",
                    kiosk_return_url="http://127.0.0.1:8080/kiosk/return")
    client = httpx.Client(base_url=d.url, auth=KioskAuth("lobby-1", KIOSK_SECRET), timeout=15,
                          headers={"Origin": d.url})
    d.clients.append(client)
    opened = client.post("/api/kiosk/sessions",
                         json={"credential": {"kind": "library_barcode", "value": MARIA_CARD}})
    assert opened.status_code == 201, opened.text
    session = opened.json()
    created = client.post(f"/api/payments{query}", json={"amount": "10.00"}, headers={
        "Cookie": f"patronpay_session={session['session']}",
        "X-CSRF-Token": session["csrf_token"]})
    assert created.status_code == 201, created.text
    d.cashnet.complete(d.hand_off(created.json()["checkout"]), outcome="pay")
    d.wait_for_state(created.json()["payment"]["id"], "posted")
    [received] = wait_for_mail(smtp_server.mailbox, 1)
    assert paid_at in received.part("plain")
    assert paid_at.rpartition(": ")[2] in received.part("html")
    assert received.message["Content-Language"] == (query[-2:] or "en")


def test_no_receipt_without_an_address_and_the_trail_says_why(mail_deploy, smtp_server):
    d = mail_deploy(staff_email="")
    created, _ = d.pay(d.sign_in_sso("dokafor"))
    payment_id = created["payment"]["id"]
    d.wait_for_state(payment_id, "posted")
    [row] = settled(d, "receipt")
    assert (row.state, row.reason) == ("skipped", "no e-mail address in Alma")
    assert [e["detail"] for e in d.ledger.events(payment_id)
            if e["kind"] == "receipt_not_sent"] == [{"reason": "no e-mail address in Alma"}]
    assert smtp_server.mailbox.messages() == []


def test_receipts_can_be_turned_off(mail_deploy, smtp_server):
    d = mail_deploy(receipt_email="false", staff_email="")
    created, _ = d.pay(d.sign_in_sso("mkowalski"), amount="5.00")
    d.wait_for_state(created["payment"]["id"], "posted")
    # The worker has read past the posting: nothing was derived from it.
    wait_for(lambda: d.services.db.read_one(
        "SELECT value FROM mail_marks WHERE name = 'events'")[0]
        >= d.services.db.read_one("SELECT MAX(id) FROM events")[0], "the worker to catch up")
    assert outbox(d).rows() == [] and smtp_server.mailbox.messages() == []


def test_an_smtp_outage_delays_mail_and_nothing_else(mail_deploy, smtp_server):
    d = mail_deploy()
    smtp_server.stop()  # the mail server is down: its port refuses connections
    created, completion = d.pay(d.sign_in_sso("mkowalski"), amount="62.00")
    payment = d.wait_for_state(created["payment"]["id"], "posted")
    assert (payment.applied, payment.unapplied) == (Decimal("62.00"), Decimal("0.00"))
    tried = wait_for(lambda: [r for r in outbox(d).rows("receipt") if r.attempts >= 2],
                     "the receipt to have been tried twice")
    assert tried[0].state == "pending" and "ConnectionRefusedError" in tried[0].reason
    # The patron's receipt page and the payment are as they would be with mail working.
    assert d.ledger.payment(payment.id).state == "posted"

    smtp_server.start()  # back, on the same port
    [received] = wait_for_mail(smtp_server.mailbox, 1)
    assert received.message_id == tried[0].message_id
    settled(d, "receipt")
    assert len(smtp_server.mailbox.messages()) == 1


def unmatched(d, checkout: dict) -> str:
    """CashNet takes money for a hand-off and notifies without our reference: a success that
    matches no payment (its transaction number is returned)."""
    completion = d.cashnet.complete(d.hand_off(checkout), faults={"missing_refs": True})
    assert [n["status"] for n in completion["notifications"]] == [200]
    return completion["tx"]


def test_one_alert_mail_per_event_then_a_digest_of_what_came_together(mail_deploy, smtp_server):
    d = mail_deploy(staff_email=f"{STAFF}, Bursar <bursar@example.edu>", receipt_email="false")
    checkout = d.start_payment(d.sign_in_sso("mkowalski"), amount="5.00")["checkout"]
    tx = unmatched(d, checkout)
    [first] = wait_for_mail(smtp_server.mailbox, 1)
    assert first.subject == "patronpay: CashNet sent a notification that matches no payment"
    assert first.rcpt_tos == (STAFF, "bursar@example.edu")
    assert f"tx:      {tx}" in first.part("plain")

    later = [unmatched(d, checkout) for _ in range(4)]  # within the minute: they wait
    wait_for(lambda: d.services.db.read_one(
        "SELECT COUNT(*) FROM mail_alerts WHERE outbox_id IS NULL")[0] == 4,
        "four alerts waiting for the next mail")
    assert len(smtp_server.mailbox.messages()) == 1
    # The minute passes (on the mail worker's clock): the four go together.
    worker = d.services.mail
    worker.clock = worker.outbox.clock = lambda: time.time() + 61
    [_, digest] = wait_for_mail(smtp_server.mailbox, 2)
    assert digest.subject == "patronpay: 4 alerts"
    assert all(tx in digest.part("plain") for tx in later)
    settled(d, "alert", 2)
    assert len(smtp_server.mailbox.messages()) == 2


def test_a_payment_in_attention_alerts_staff(mail_deploy, smtp_server):
    d = mail_deploy(receipt_email="false")
    payment_id, cid = d.checkout(amount="62.00")
    d.cashnet.complete(cid, faults={"tamper_amount": {"line": 2, "amount": "0.01"}})
    d.wait_for_state(payment_id, "attention")
    [alert] = wait_for_mail(smtp_server.mailbox, 1)
    assert alert.subject == "patronpay: a payment needs staff attention"
    body = alert.part("plain")
    assert payment_id in body and "amount mismatch" in body
    assert f"patronpay payments show {payment_id}" in body


def test_a_payment_flagged_for_review_alerts_staff(mail_deploy, smtp_server):
    d = mail_deploy(receipt_email="false")
    payment_id, cid = d.checkout(amount="10.00")
    d.cashnet.complete(cid)
    d.wait_for_state(payment_id, "posted")
    # The same hand-off checked out a second time: CashNet charges the patron twice.
    d.cashnet.complete(d.hand_off(d.ledger.payment(payment_id).checkout))
    assert "refund" in d.ledger.payment(payment_id).review
    [alert] = wait_for_mail(smtp_server.mailbox, 1)
    assert alert.subject == "patronpay: a payment needs review"
    body = alert.part("plain")
    assert payment_id in body and "second CashNet success" in body
    assert f"patronpay payments show {payment_id}" in body
    settled(d, "alert")
    assert len(smtp_server.mailbox.messages()) == 1


class Refusing:
    """An SMTP server's handler that refuses some recipients for good (550) and keeps the
    rest: a real mail server's answer to an address it has no mailbox for."""

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.kept: list[tuple[str, ...]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refused:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.kept.append(tuple(envelope.rcpt_tos))
        return "250 kept"


def test_a_receipt_the_server_refuses_for_good_fails_once_and_nothing_else(mail_deploy):
    handler = Refusing({"mkowalski@example.edu"})
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        d = mail_deploy(smtp_url=f"smtp://127.0.0.1:{server.port}", staff_email="")
        created, _ = d.pay(d.sign_in_sso("mkowalski"), amount="62.00")
        payment = d.wait_for_state(created["payment"]["id"], "posted")
        [row] = wait_for(lambda: [r for r in outbox(d).rows("receipt") if r.state == "failed"],
                         "the refused receipt to be failed")
        assert row.reason.startswith("refused: 550 5.1.1 no such mailbox") and row.attempts == 1
        assert handler.kept == []
        assert d.ledger.payment(payment.id).state == "posted"
        assert "receipt_sent" not in [e["kind"] for e in d.ledger.events(payment.id)]
    finally:
        server.stop()


def test_a_receipt_the_server_will_not_take_for_three_days_is_given_up(mail_deploy, smtp_server):
    d = mail_deploy(staff_email="")
    smtp_server.stop()
    created, _ = d.pay(d.sign_in_sso("mkowalski"), amount="5.00")
    d.wait_for_state(created["payment"]["id"], "posted")
    wait_for(lambda: [r for r in outbox(d).rows("receipt") if r.attempts >= 1],
             "the receipt to have been tried")
    # Three days and a minute pass on the mail worker's clock, the server still down.
    worker = d.services.mail
    worker.clock = lambda: time.time() + GIVE_UP_SECONDS + 60
    [row] = wait_for(lambda: [r for r in outbox(d).rows("receipt") if r.state == "failed"],
                     "the receipt to be given up")
    assert row.reason.startswith("gave up: ConnectionRefusedError")
    smtp_server.start()  # back: the next receipt goes, the one given up stays given up
    later, _ = d.pay(d.sign_in_sso("mkowalski"), amount="5.00")
    d.wait_for_state(later["payment"]["id"], "posted")
    [received] = wait_for_mail(smtp_server.mailbox, 1)
    first, second = wait_for(lambda: (rows := outbox(d).rows("receipt"))[-1].state == "sent"
                             and rows, "the second receipt recorded as sent")
    assert first.state == "failed"
    assert received.message_id == second.message_id
