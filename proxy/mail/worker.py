"""The mail worker: runs inside `patronpay serve` beside the posting worker. Each round it
derives new mail from the ledger (proxy/mail/outbox.py), writes the messages that are due, and
hands pending ones to the mail server, one at a time.

A mail server that is down or slow only delays mail: sending happens here, after the payment
is long committed, and a failed try waits (capped exponential backoff) without touching any
payment. A patron's address is read from Alma when the receipt is written; Alma being down
delays the receipt the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from proxy.alma import AlmaClient, AlmaError, AlmaUserNotFound
from proxy.config import Settings
from proxy.ledger import Ledger
from proxy.mail import smtp
from proxy.mail.addresses import address_of, domain_of, plain_address
from proxy.mail.compose import (
    Letterhead,
    compose_alerts,
    compose_receipt,
    receipt_facts,
    wire_bytes,
)
from proxy.mail.outbox import ALERT, RECEIPT, DeriveRules, Outbox, OutboxRow
from proxy.patrons import patron_from_alma
from proxy.posting import owner_is_dead, owner_name

log = logging.getLogger("patronpay.mail")

FIRST_RETRY_SECONDS = 5.0
GIVE_UP_SECONDS = 3 * 86400.0  # a message the server would not take for three days
LEASE_SECONDS = 120.0  # longer than one SMTP conversation (its timeouts are 30 s a step)


@dataclass(frozen=True)
class MailPolicy:
    target: smtp.SmtpTarget
    password: str
    letterhead: Letterhead
    staff: tuple[str, ...]
    receipts: bool
    posting_late_seconds: float
    backoff_cap_seconds: float
    domain: str
    kiosk_on_request: bool = False  # PATRONPAY_KIOSK_RECEIPT_EMAIL=ask

    def derive_rules(self) -> DeriveRules:
        return DeriveRules(receipts=self.receipts, alerts=bool(self.staff),
                           posting_late_seconds=self.posting_late_seconds, domain=self.domain,
                           kiosk_on_request=self.kiosk_on_request)


class MailWorker:
    def __init__(self, ledger: Ledger, alma: AlmaClient, policy: MailPolicy, *,
                 idle_poll_seconds: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self.alma = alma
        self.policy = policy
        self.outbox = Outbox(ledger.db, clock)
        self.idle_poll_seconds = idle_poll_seconds
        self.clock = clock
        self.owner = owner_name()
        self._stopping = False
        self._wake = asyncio.Event()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.round()
            except Exception:  # one bad round must not stop the mail
                log.exception("mail round failed", extra={"event": "mail_error"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll_seconds)

    async def round(self) -> None:
        """Derive, compose and send whatever is due now."""
        self.outbox.derive(self.policy.derive_rules())
        for row in self.outbox.to_compose():
            if self._stopping:
                return
            await self._compose(row)
        while not self._stopping:
            row = self.outbox.claim(self.owner, LEASE_SECONDS, owner_is_dead)
            if row is None:
                return
            await self._send(row)

    # --- writing the messages ---

    async def _compose(self, row: OutboxRow) -> None:
        if row.kind == RECEIPT:
            await self._compose_receipt(row)
        elif row.kind == ALERT:
            self._compose_alert(row)

    async def _compose_receipt(self, row: OutboxRow) -> None:
        payment = self.ledger.payment(row.payment_id or "")
        if payment is None:
            self.outbox.skip(row.id, "no such payment")
            return
        if not self.policy.receipts:
            self.outbox.skip(row.id, "e-mail receipts are turned off")
            return
        try:
            patron = patron_from_alma(await self.alma.get_user(payment.patron_id))
        except AlmaUserNotFound:
            self.outbox.skip(row.id, "the patron is no longer in Alma")
            return
        except AlmaError as exc:
            self.outbox.compose_later(row.id, self._retry_at(row.attempts),
                                      f"Alma: {type(exc).__name__}")
            return
        address = plain_address(patron.email)
        if address is None:
            reason = "no e-mail address in Alma" if not patron.email.strip() \
                else "the e-mail address in Alma is not usable"
            self.outbox.skip(row.id, reason)
            log.info("no receipt mailed", extra={"event": "receipt_not_sent",
                                                 "payment_id": payment.id, "reason": reason})
            return
        facts = receipt_facts(payment, patron.first_name, self.outbox.language_of(payment.id),
                              self.policy.letterhead)
        message = compose_receipt(facts, self.policy.letterhead, address, row.message_id,
                                  self.clock())
        self.outbox.composed(row.id, [address], wire_bytes(message))

    def _compose_alert(self, row: OutboxRow) -> None:
        alerts = self.outbox.alerts_of(row.id)
        if not alerts or not self.policy.staff:
            self.outbox.skip(row.id, "no alerts" if not alerts else "no staff address")
            return
        recipients = [address_of(mailbox) for mailbox in self.policy.staff]
        message = compose_alerts(alerts, self.policy.letterhead, list(self.policy.staff),
                                 row.message_id, self.clock())
        self.outbox.composed(row.id, recipients, wire_bytes(message))

    # --- sending ---

    async def _send(self, row: OutboxRow) -> None:
        sender = address_of(self.policy.letterhead.sender)
        try:
            await asyncio.to_thread(smtp.send, self.policy.target, self.policy.password,
                                    sender, list(row.recipients), row.message or b"")
        except smtp.MailRefused as exc:
            self.outbox.failed(row.id, self.owner, f"refused: {exc}")
            log.error("mail refused", extra={"event": "mail_refused", "mail": row.key,
                                             "reason": str(exc)})
            return
        except smtp.MailDeferred as exc:
            if self.clock() - row.created_at > GIVE_UP_SECONDS:
                self.outbox.failed(row.id, self.owner, f"gave up: {exc}")
                log.error("mail given up", extra={"event": "mail_failed", "mail": row.key})
                return
            self.outbox.deferred(row.id, self.owner, self._retry_at(row.attempts), str(exc))
            log.warning("mail server unavailable, will retry",
                        extra={"event": "mail_deferred", "mail": row.key,
                               "server": self.policy.target.url, "reason": str(exc)})
            return
        # The instant between the server's acceptance and this record is the only one in
        # which a crash sends the message again (with the same Message-ID).
        self.outbox.sent(row.id, self.owner)
        log.info("mail sent", extra={"event": "mail_sent", "mail": row.key,
                                     "payment_id": row.payment_id})

    def _retry_at(self, attempts: int) -> float:
        delay = min(self.policy.backoff_cap_seconds, FIRST_RETRY_SECONDS * 2 ** min(attempts, 20))
        return self.clock() + delay * random.uniform(0.8, 1.0)


def mail_policy(settings: Settings) -> MailPolicy | None:
    """The worker's policy from the settings, or None when no mail server is configured."""
    if not settings.smtp_url:
        return None
    return MailPolicy(
        target=smtp.parse_smtp_url(settings.smtp_url, settings.smtp_ca_file),
        password=settings.smtp_password,
        letterhead=Letterhead(sender=settings.mail_from, library=settings.library_name,
                              site_locales=settings.site_dir / "locales"),
        staff=settings.staff_email,
        receipts=settings.receipt_email,
        posting_late_seconds=settings.alert_posting_minutes * 60.0,
        backoff_cap_seconds=float(settings.mail_backoff_cap_seconds),
        domain=domain_of(settings.mail_from),
        kiosk_on_request=settings.kiosk_receipt_email == "ask",
    )
