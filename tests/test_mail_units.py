"""E-mail's parts on their own (docs/staff.md#e-mail): the mail server URL and the settings, the
alert rate bound, the outbox on a real ledger file with a clock we move, what a receipt shows
of untrusted values, and the sandbox mail server's login and page."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from patronpay.serving import ServerThread
from proxy.config import ConfigError, load_settings
from proxy.db import Database
from proxy.ledger import AllocationRecord, PaymentRecord
from proxy.mail import smtp
from proxy.mail.addresses import plain_address
from proxy.mail.alerts import ALERT_MAILS_PER_HOUR, ALERT_WINDOW_SECONDS, next_mail_at
from proxy.mail.compose import Letterhead, compose_receipt, receipt_facts, wire_bytes
from proxy.mail.outbox import DeriveRules, Outbox
from proxy.patrons import patron_from_alma
from proxy.states import AllocationState, PaymentState
from sandbox.mail_page import create_app as create_mail_page
from sandbox.smtp import Mailbox, SmtpServer

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "PATRONPAY_PUBLIC_URL": "https://pay.library.example.edu/",
    "PATRONPAY_SECRET_KEYS": "k" * 32,
    "PATRONPAY_ALMA_API_URL": "https://api-na.hosted.exlibrisgroup.com/almaws/v1",
    "PATRONPAY_ALMA_API_KEY": "l7xx-real-key",
    "PATRONPAY_CASHNET_CHECKOUT_URL": "https://commerce.cashnet.com/LIBFINES",
    "PATRONPAY_CASHNET_ITEM_CODE": "LIB-FINE",
    "PATRONPAY_CASHNET_POSTBACK_TOKEN": "t" * 40,
}


# --- the mail server URL and the settings ---


@pytest.mark.parametrize("url, target", [
    ("smtp+starttls://fines%40lib@mail.example.edu", ("smtp+starttls", "mail.example.edu", 587,
                                                      "fines@lib")),
    ("smtps://fines@mail.example.edu:2465", ("smtps", "mail.example.edu", 2465, "fines")),
    ("smtp://127.0.0.1:8025", ("smtp", "127.0.0.1", 8025, "")),
    ("smtp://localhost", ("smtp", "localhost", 25, "")),
])
def test_smtp_urls(url, target):
    parsed = smtp.parse_smtp_url(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.username) == target


@pytest.mark.parametrize("url, fragment", [
    ("smtp://mail.example.edu", "loopback"),
    ("http://mail.example.edu", "must start with"),
    ("smtps://user:hunter2@mail.example.edu", "PATRONPAY_SMTP_PASSWORD_FILE"),
    ("smtps://mail.example.edu/inbox", "no path"),
    ("smtps://mail.example.edu:99999", "port"),
])
def test_bad_smtp_urls_say_what_is_wrong(url, fragment):
    with pytest.raises(ValueError, match=fragment):
        smtp.parse_smtp_url(url)


def test_mail_settings_and_what_they_refuse(tmp_path):
    password = tmp_path / "smtp-password"
    password.write_text("s3cret\n")
    settings = load_settings(BASE | {
        "PATRONPAY_SMTP_URL": "smtp+starttls://fines@mail.example.edu",
        "PATRONPAY_SMTP_PASSWORD_FILE": str(password),
        "PATRONPAY_MAIL_FROM": "Library fines <fines@library.example.edu>",
        "PATRONPAY_STAFF_EMAIL": "circ@library.example.edu, Bursar <bursar@example.edu>"})
    assert settings.smtp_url == "smtp+starttls://fines@mail.example.edu:587"
    assert settings.smtp_password == "s3cret"
    assert settings.staff_email == ("circ@library.example.edu", "Bursar <bursar@example.edu>")
    assert (settings.receipt_email, settings.alert_posting_minutes) == (True, 30)
    with pytest.raises(ConfigError, match="PATRONPAY_MAIL_FROM is required"):
        load_settings(BASE | {"PATRONPAY_SMTP_URL": "smtp://127.0.0.1:25"})
    with pytest.raises(ConfigError) as refused:
        load_settings(BASE | {"PATRONPAY_SMTP_URL": "smtps://u:hunter2@mail.example.edu"})
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ConfigError, match="PATRONPAY_STAFF_EMAIL is not valid"):
        load_settings(BASE | {"PATRONPAY_STAFF_EMAIL": "circ@library.example.edu\nBcc: x@y.z"})


@pytest.mark.parametrize("text", ["", "nobody", "a b@example.edu", "a@example.edu\r\nBcc: x@y.z",
                                  "<a@example.edu>", "a@example.edu, b@example.edu",
                                  "ana@exámple.edu", "a@localhost"])
def test_odd_addresses_from_alma_are_not_mailed(text):
    assert plain_address(text) is None


def emails(*entries: tuple[str, bool]) -> dict:
    return {"primary_id": "p1", "contact_info": {"email": [
        {"email_address": address, "preferred": preferred} for address, preferred in entries]}}


def test_the_receipt_goes_to_the_address_alma_marks_preferred():
    chosen = patron_from_alma(emails(("old@example.edu", False), ("new@example.edu", True)))
    assert chosen.email == "new@example.edu"
    # None marked preferred (Alma allows it): the first, rather than no receipt at all.
    assert patron_from_alma(emails(("a@example.edu", False), ("b@example.edu", False))).email \
        == "a@example.edu"
    assert patron_from_alma(emails()).email == ""
    assert patron_from_alma({"primary_id": "p1", "contact_info": {}}).email == ""


# --- the alert rate bound ---


def test_alert_mail_goes_at_once_then_at_most_once_a_minute_and_twelve_an_hour():
    assert next_mail_at([], 1000.0) == 1000.0
    assert next_mail_at([990.0], 1000.0) == 990.0 + ALERT_WINDOW_SECONDS
    # A storm: an alert every second for two hours. Mail goes whenever it may.
    sent: list[float] = []
    for second in range(7200):
        if next_mail_at(sent, float(second)) <= second:
            sent.append(float(second))
    for start in range(0, 7200 - 3600, 60):
        assert len([t for t in sent if start <= t < start + 3600]) <= ALERT_MAILS_PER_HOUR
    assert len(sent) == 2 * ALERT_MAILS_PER_HOUR


# --- the outbox on a real ledger file ---


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def add_event(db: Database, at: float, kind: str, payment_id: str | None = None,
              detail: dict | None = None) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO events (payment_id, at, kind, source, detail)"
                     " VALUES (?, ?, ?, 'test', ?)",
                     (payment_id, at, kind, json.dumps(detail or {})))


def add_paid_payment(db: Database, payment_id: str, paid_at: float) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO payments (id, patron_id, patron_name, channel, amount_cents, currency,"
            " state, custcode, checkout, created_at, updated_at, paid_at)"
            " VALUES (?, 'p', 'P', 'web', 100, 'USD', 'paid', 'p', '{}', ?, ?, ?)",
            (payment_id, paid_at, paid_at, paid_at))


RULES = DeriveRules(receipts=True, alerts=True, posting_late_seconds=1800, domain="lib.example")


def test_a_ledger_from_before_mail_mails_nothing_of_its_past(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    db = Database(path)
    clock = Clock()
    add_event(db, clock.now, PaymentState.POSTED, "old")
    add_event(db, clock.now, PaymentState.ATTENTION, "old")
    with db.write() as conn:  # as a ledger made before the mail tables existed
        conn.execute("DROP TABLE mail_marks")
    db.close()
    db = Database(path)  # opened by this patronpay: the mark starts at the end of the trail
    outbox = Outbox(db, clock)
    outbox.derive(RULES)
    assert outbox.rows() == []
    add_event(db, clock.now, PaymentState.POSTED, "new")
    outbox.derive(RULES)
    assert [(r.kind, r.payment_id, r.state) for r in outbox.rows()] == [
        ("receipt", "new", "compose")]
    assert outbox.rows()[0].message_id.endswith("@lib.example>")


def test_old_events_are_passed_over_and_each_event_is_read_once(tmp_path):
    db, clock = Database(tmp_path / "l.sqlite3"), Clock()
    outbox = Outbox(db, clock)
    add_event(db, clock.now - 2 * 86400, PaymentState.POSTED, "last-week")
    add_event(db, clock.now, PaymentState.POSTED, "now")
    outbox.derive(RULES)
    outbox.derive(RULES)
    assert [r.payment_id for r in outbox.rows()] == ["now"]


def test_posting_late_alerts_once_per_spell(tmp_path):
    db, clock = Database(tmp_path / "l.sqlite3"), Clock()
    outbox = Outbox(db, clock)
    for n in range(3):
        add_paid_payment(db, f"p{n}", clock.now + n)
    clock.now += 1799
    outbox.derive(RULES)
    assert db.read("SELECT kind FROM mail_alerts") == []
    clock.now += 10  # the oldest has waited 30 minutes: one alert, not one per payment
    outbox.derive(RULES)
    clock.now += 3600
    outbox.derive(RULES)
    alerts = db.read("SELECT kind, payment_id, detail FROM mail_alerts")
    assert [(a["kind"], a["payment_id"]) for a in alerts] == [("posting_late", "p0")]
    assert json.loads(alerts[0]["detail"])["waiting"] == 3
    with db.write() as conn:  # Alma is back: everything is posted
        conn.execute("UPDATE payments SET state = 'posted'")
    outbox.derive(RULES)
    add_paid_payment(db, "p9", clock.now)
    clock.now += 1801  # a new spell: a new alert
    outbox.derive(RULES)
    assert [a["payment_id"] for a in db.read("SELECT payment_id FROM mail_alerts")] == [
        "p0", "p9"]


def test_alerts_in_a_storm_are_gathered_within_the_hourly_bound(tmp_path):
    db, clock = Database(tmp_path / "l.sqlite3"), Clock()
    outbox = Outbox(db, clock)
    for second in range(0, 3600, 10):  # a new payment in attention every ten seconds
        add_event(db, clock.now, PaymentState.ATTENTION, f"p{second}", {"reason": "x"})
        outbox.derive(RULES)
        clock.now += 10
    mails = outbox.rows("alert")
    assert len(mails) == ALERT_MAILS_PER_HOUR
    gathered = [len(outbox.alerts_of(m.id)) for m in mails]
    assert gathered[0] == 1 and sum(gathered) <= 360
    clock.now += 3600
    outbox.derive(RULES)  # the rest go in the next mail the bound allows
    assert sum(len(outbox.alerts_of(m.id)) for m in outbox.rows("alert")) == 360


# --- what a receipt shows ---


def payment_record(**changes) -> PaymentRecord:
    allocation = AllocationRecord(
        id=1, payment_id="ab" * 16, fee_id="1", fee_type="ODDFEE",
        fee_label="<script>alert(1)</script>Fee\r\nBcc: x@y.z", planned=Decimal("3.50"),
        amount=Decimal("3.50"), unapplied=Decimal("0.00"), state=AllocationState.POSTED,
        origin="patron", outcome="", attempts=1, last_attempt_at=None, next_attempt_at=None)
    values = dict(
        id="ab" * 16, patron_id="p", patron_name="P", channel="web", session_id="",
        amount=Decimal("3.50"), currency="USD", state=PaymentState.POSTED, reason="",
        review="", cashnet_tx="100042", batchno="", effdate="", pmtcode="", custcode="p",
        checkout={}, created_at=1.8e9, updated_at=1.8e9, paid_at=1.8e9, posted_at=1.8e9,
        lines=(), allocations=(allocation,))
    return PaymentRecord(**(values | changes))


def test_values_from_alma_are_escaped_in_html_and_kept_to_one_line_in_text():
    letterhead = Letterhead("fines@lib.example", "Main <Library>", ROOT / "site" / "locales")
    facts = receipt_facts(payment_record(), '<b>Ana</b>', "en", letterhead)
    message = compose_receipt(facts, letterhead, "ana@example.edu", "<r.1@lib.example>", 1.8e9)
    page = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;Fee" in page
    assert "&lt;b&gt;Ana&lt;/b&gt;" in page and "Main &lt;Library&gt;" in page
    assert "  - <script>alert(1)</script>Fee Bcc: x@y.z: $3.50" in text.splitlines()
    wire = wire_bytes(message)
    assert b"\nBcc:" not in wire and b"\r\n" in wire
    assert message["Subject"] == "Your payment to Main <Library>: $3.50"


def test_an_unknown_language_gets_english():
    letterhead = Letterhead("fines@lib.example", "", ROOT / "site" / "locales")
    facts = receipt_facts(payment_record(channel="kiosk:lobby"), "Ana", "xx", letterhead)
    assert (facts.language, facts.library, facts.where) == ("en", "the library", "kiosk lobby")


# --- the sandbox mail server ---


def test_a_login_goes_with_the_password_and_a_refused_one_waits(tmp_path):
    mailbox = Mailbox(logins={"fines": "s3cret"})
    server = SmtpServer(mailbox).start()
    try:
        target = smtp.parse_smtp_url(f"smtp://fines@127.0.0.1:{server.port}")
        with pytest.raises(smtp.MailDeferred):  # a wrong password is not the message's fault
            smtp.send(target, "wrong", "a@lib.example", ["b@lib.example"], b"Subject: x\r\n\r\nx")
        smtp.send(target, "s3cret", "a@lib.example", ["b@lib.example"], b"Subject: x\r\n\r\nx")
        assert [m.rcpt_tos for m in mailbox.messages()] == [("b@lib.example",)]
    finally:
        server.stop()


def test_the_mail_page_shows_messages_escaped():
    mailbox = Mailbox()
    raw = (b"From: <x@evil.example>\r\nSubject: <img src=x onerror=alert(1)>\r\n"
           b"Message-ID: <m1@evil.example>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>\"hi\"</p><script>alert(2)</script>")
    mailbox.keep("127.0.0.1", "x@evil.example", ["y@lib.example"], raw)
    with ServerThread(create_mail_page(mailbox)) as server:
        listing = httpx.get(server.url + "/").text
        shown = httpx.get(server.url + "/1").text
    assert "<img" not in listing and "&lt;img src=x onerror=alert(1)&gt;" in listing
    assert "<script>" not in shown
    assert 'srcdoc="&lt;p&gt;&quot;hi&quot;&lt;/p&gt;&lt;script&gt;' in shown
    assert "<iframe sandbox " in shown
