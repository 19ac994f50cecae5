"""The outbox: mail as ledger state, so that nothing is lost to a crash and nothing is sent
twice but in one instant.

Mail is derived from the ledger, never handed over by the code that changed it: `derive()`
reads the event trail from where it last stopped and, in one transaction, turns each `posted`
event into a receipt row (for a kiosk payment, by default, only with the patron's
`receipt_requested`: whichever comes second) and each alerting event (proxy/mail/alerts.py)
into an alert, gathers
waiting alerts into one alert row when the rate bound allows, and moves its mark on. Each row
gets its Message-ID there and keeps it.

A row then goes: `compose` (the message is written: a receipt needs the patron's address from
Alma) -> `pending` -> `sending` (claimed with a lease by one worker) -> `sent`; or `skipped`
(nothing to send: no address) or `failed` (the server refused it for good). Only a crash
between the server's `250` and `sent()` repeats a message, under the same Message-ID.

The mark relies on one writer at a time: an event with a lower id than the mark can never
commit after the mark moved past it. Every event is written inside the ledger's write
transaction (SQLite's BEGIN IMMEDIATE; on PostgreSQL the transaction-wide write lock, held until
commit), so ids are handed out in commit order on both backends. An event written outside that
lock would break this: the trail would then need reading by commit order instead.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from proxy.db import Database
from proxy.mail.alerts import POSTING_LATE, next_mail_at, rule_for
from proxy.states import EventKind, PaymentState

EVENTS_PER_ROUND = 500
# A ledger event older than this when first read is passed over (mail was off, or the
# service down for days): a receipt or an alert about last week would only confuse.
MAX_EVENT_AGE_SECONDS = 86400.0

RECEIPT = "receipt"
ALERT = "alert"


class MailState:
    COMPOSE = "compose"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    key: str
    message_id: str
    payment_id: str | None
    state: str
    reason: str
    recipients: tuple[str, ...]
    message: bytes | None
    attempts: int
    created_at: float
    sent_at: float | None


@dataclass(frozen=True)
class DeriveRules:
    receipts: bool
    alerts: bool
    posting_late_seconds: float
    domain: str  # of the sender, for Message-IDs
    # A kiosk payment's receipt only when the patron asked for it on the kiosk's screen
    # (PATRONPAY_KIOSK_RECEIPT_EMAIL=ask); else it is mailed like a web payment's.
    kiosk_on_request: bool = False


class Outbox:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    # --- deriving mail from the ledger ---

    def derive(self, rules: DeriveRules) -> bool:
        """Turn what happened since the last round into outbox rows; True if anything did."""
        if not self._anything_to_derive(rules):
            return False
        now = self.clock()
        with self.db.write() as conn:
            mark = int(_mark(conn, "events") or 0)
            events = conn.execute(
                "SELECT id, payment_id, at, kind, detail FROM events WHERE id > ? ORDER BY id"
                " LIMIT ?", (mark, EVENTS_PER_ROUND)).fetchall()
            for event in events:
                if event["at"] >= now - MAX_EVENT_AGE_SECONDS:
                    self._derive_one(conn, event, rules, now)
            if events:
                _set_mark(conn, "events", events[-1]["id"])
            if rules.alerts:
                self._check_posting_late(conn, rules, now)
                self._gather_alerts(conn, rules, now)
        return True

    def _anything_to_derive(self, rules: DeriveRules) -> bool:
        """A read first: most rounds find nothing, and need not take the write lock."""
        conn = self.db.connection()
        last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        if last > (_mark(conn, "events") or 0):
            return True
        if not rules.alerts:
            return False
        late = _oldest_late_payment(conn, self.clock() - rules.posting_late_seconds)
        if (late is None) != (_mark(conn, POSTING_LATE) is None):
            return True
        waiting = conn.execute("SELECT 1 FROM mail_alerts WHERE outbox_id IS NULL LIMIT 1")
        return waiting.fetchone() is not None and self._alert_mail_allowed(conn, self.clock())

    def _derive_one(self, conn, event, rules: DeriveRules, now: float) -> None:
        detail = json.loads(event["detail"])
        payment_id = event["payment_id"]
        if event["kind"] in (PaymentState.POSTED, EventKind.RECEIPT_REQUESTED) \
                and rules.receipts and payment_id:
            if _receipt_due(conn, payment_id, event["kind"], rules):
                # One key per payment: the posting and a request both lead here, once.
                _insert_outbox(conn, RECEIPT, f"receipt:{payment_id}", payment_id,
                               rules.domain, now)
            return
        if rules.alerts and rule_for(event["kind"], detail) is not None:
            _insert_alert(conn, f"event:{event['id']}", event["kind"], event["payment_id"],
                          detail, event["at"])

    def _check_posting_late(self, conn, rules: DeriveRules, now: float) -> None:
        """One alert when the oldest paid payment gets late, none more until all are on time
        again (an Alma outage is one alert, not one per payment)."""
        late = _oldest_late_payment(conn, now - rules.posting_late_seconds)
        if late is None:
            conn.execute("DELETE FROM mail_marks WHERE name = ?", (POSTING_LATE,))
            return
        if _mark(conn, POSTING_LATE) is not None:
            return
        waiting = conn.execute("SELECT COUNT(*) FROM payments WHERE state = ?",
                               (PaymentState.PAID,)).fetchone()[0]
        _insert_alert(conn, f"{POSTING_LATE}:{late['id']}:{int(now)}", POSTING_LATE,
                      late["id"], {"paid_at": late["paid_at"], "waiting": waiting,
                                   "minutes": int(rules.posting_late_seconds // 60)}, now)
        _set_mark(conn, POSTING_LATE, now)

    def _gather_alerts(self, conn, rules: DeriveRules, now: float) -> None:
        waiting = conn.execute("SELECT id FROM mail_alerts WHERE outbox_id IS NULL ORDER BY id"
                               ).fetchall()
        if not waiting or not self._alert_mail_allowed(conn, now):
            return
        first, last = waiting[0]["id"], waiting[-1]["id"]
        outbox_id = _insert_outbox(conn, ALERT, f"alerts:{first}-{last}", None, rules.domain,
                                   now)
        conn.execute("UPDATE mail_alerts SET outbox_id = ? WHERE outbox_id IS NULL AND id <= ?",
                     (outbox_id, last))

    def _alert_mail_allowed(self, conn, now: float) -> bool:
        recent = [row[0] for row in conn.execute(
            "SELECT created_at FROM mail_outbox WHERE kind = ? AND created_at > ?",
            (ALERT, now - 3600))]
        return next_mail_at(recent, now) <= now

    def alerts_of(self, outbox_id: int) -> list[dict]:
        rows = self.db.read("SELECT * FROM mail_alerts WHERE outbox_id = ? ORDER BY id",
                            (outbox_id,))
        return [{"kind": r["kind"], "payment_id": r["payment_id"], "at": r["at"],
                 "detail": json.loads(r["detail"])} for r in rows]

    # --- composing ---

    def to_compose(self, limit: int = 50) -> list[OutboxRow]:
        rows = self.db.read(
            "SELECT * FROM mail_outbox WHERE state = ? AND COALESCE(next_attempt_at, 0) <= ?"
            " ORDER BY id LIMIT ?", (MailState.COMPOSE, self.clock(), limit))
        return [_row(r) for r in rows]

    def composed(self, row_id: int, recipients: list[str], message: bytes) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE mail_outbox SET state = ?, recipients = ?, message = ?,"
                " next_attempt_at = ?, reason = '' WHERE id = ? AND state = ?",
                (MailState.PENDING, json.dumps(recipients), message, self.clock(), row_id,
                 MailState.COMPOSE))

    def compose_later(self, row_id: int, when: float, reason: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE mail_outbox SET next_attempt_at = ?, reason = ?,"
                         " attempts = attempts + 1 WHERE id = ? AND state = ?",
                         (when, reason, row_id, MailState.COMPOSE))

    def skip(self, row_id: int, reason: str) -> None:
        """Nothing to send (no address, receipts turned off meanwhile): recorded, not mailed."""
        with self.db.write() as conn:
            row = conn.execute("SELECT kind, payment_id FROM mail_outbox WHERE id = ? AND"
                               " state = ?", (row_id, MailState.COMPOSE)).fetchone()
            if row is None:
                return
            conn.execute("UPDATE mail_outbox SET state = ?, reason = ? WHERE id = ?",
                         (MailState.SKIPPED, reason, row_id))
            if row["kind"] == RECEIPT and row["payment_id"]:
                _trail(conn, row["payment_id"], EventKind.RECEIPT_NOT_SENT, self.clock(),
                       {"reason": reason})

    # --- sending ---

    def claim(self, owner: str, lease_seconds: float,
              owner_is_dead: Callable[[str], bool]) -> OutboxRow | None:
        """The next message due, leased to `owner`; a message whose sender died (or whose
        lease ran out) is due again at once."""
        now = self.clock()
        with self.db.write() as conn:
            candidates = conn.execute(
                "SELECT * FROM mail_outbox WHERE (state = ? AND next_attempt_at <= ?)"
                " OR state = ? ORDER BY next_attempt_at, id LIMIT 20",
                (MailState.PENDING, now, MailState.SENDING)).fetchall()
            for row in candidates:
                if row["state"] == MailState.SENDING and not (
                        row["lease_until"] < now or owner_is_dead(row["owner"])):
                    continue
                conn.execute("UPDATE mail_outbox SET state = ?, owner = ?, lease_until = ?"
                             " WHERE id = ?", (MailState.SENDING, owner, now + lease_seconds,
                                                row["id"]))
                return _row(row)
        return None

    def sent(self, row_id: int, owner: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            row = conn.execute("SELECT kind, payment_id, message_id FROM mail_outbox"
                               " WHERE id = ?", (row_id,)).fetchone()
            changed = conn.execute(
                "UPDATE mail_outbox SET state = ?, sent_at = ?, owner = '', lease_until = NULL,"
                " attempts = attempts + 1, reason = '' WHERE id = ? AND owner = ?",
                (MailState.SENT, now, row_id, owner)).rowcount
            if changed and row["kind"] == RECEIPT and row["payment_id"]:
                _trail(conn, row["payment_id"], EventKind.RECEIPT_SENT, now,
                       {"message_id": row["message_id"]})

    def deferred(self, row_id: int, owner: str, next_attempt_at: float, reason: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE mail_outbox SET state = ?, owner = '', lease_until = NULL,"
                         " attempts = attempts + 1, next_attempt_at = ?, reason = ?"
                         " WHERE id = ? AND owner = ?",
                         (MailState.PENDING, next_attempt_at, reason, row_id, owner))

    def failed(self, row_id: int, owner: str, reason: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE mail_outbox SET state = ?, owner = '', lease_until = NULL,"
                         " attempts = attempts + 1, reason = ? WHERE id = ? AND owner = ?",
                         (MailState.FAILED, reason, row_id, owner))

    def next_due_at(self) -> float | None:
        row = self.db.read_one(
            "SELECT MIN(next_attempt_at) FROM mail_outbox WHERE state IN (?, ?)",
            (MailState.PENDING, MailState.COMPOSE))
        return row[0] if row else None

    # --- reading ---

    def row(self, row_id: int) -> OutboxRow | None:
        row = self.db.read_one("SELECT * FROM mail_outbox WHERE id = ?", (row_id,))
        return _row(row) if row else None

    def rows(self, kind: str | None = None) -> list[OutboxRow]:
        if kind is None:
            return [_row(r) for r in self.db.read("SELECT * FROM mail_outbox ORDER BY id")]
        return [_row(r) for r in self.db.read(
            "SELECT * FROM mail_outbox WHERE kind = ? ORDER BY id", (kind,))]

    def language_of(self, payment_id: str) -> str:
        row = self.db.read_one("SELECT language FROM payments WHERE id = ?", (payment_id,))
        return row["language"] if row else ""



def remember_language(db: Database, payment_id: str, language: str) -> None:
    """The language of the page a payment was started from: its receipt's language."""
    with db.write() as conn:
        conn.execute("UPDATE payments SET language = ? WHERE id = ?", (language, payment_id))


def _mark(conn, name: str) -> float | None:
    row = conn.execute("SELECT value FROM mail_marks WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def _set_mark(conn, name: str, value: float) -> None:
    conn.execute("INSERT INTO mail_marks (name, value) VALUES (?, ?) ON CONFLICT (name)"
                 " DO UPDATE SET value = excluded.value", (name, value))


def _receipt_due(conn, payment_id: str, kind: str, rules: DeriveRules) -> bool:
    """Whether a receipt is due now that the payment is posted or its receipt was asked for.
    A receipt goes once the payment is posted; a kiosk payment's, with the patron's request
    when the kiosk asks them. Whichever of the two comes second makes it due."""
    payment = conn.execute("SELECT state, channel FROM payments WHERE id = ?",
                           (payment_id,)).fetchone()
    if kind != PaymentState.POSTED:
        return payment is not None and payment["state"] == PaymentState.POSTED
    on_request = rules.kiosk_on_request and payment is not None \
        and payment["channel"].startswith("kiosk:")
    return not on_request or conn.execute(
        "SELECT 1 FROM events WHERE payment_id = ? AND kind = ? LIMIT 1",
        (payment_id, EventKind.RECEIPT_REQUESTED)).fetchone() is not None


def _oldest_late_payment(conn, paid_before: float):
    return conn.execute(
        "SELECT id, COALESCE(paid_at, updated_at) AS paid_at FROM payments WHERE state = ?"
        " AND COALESCE(paid_at, updated_at) < ? ORDER BY COALESCE(paid_at, updated_at)"
        " LIMIT 1", (PaymentState.PAID, paid_before)).fetchone()


def _insert_outbox(conn, kind: str, key: str, payment_id: str | None, domain: str,
                   now: float) -> int:
    """A new outbox row (or the one already there under `key`): its Message-ID is made here
    and never changes, so a message sent again is recognisably the same message."""
    message_id = f"<{kind}.{secrets.token_hex(12)}@{domain}>"
    conn.execute(
        "INSERT INTO mail_outbox (kind, key, message_id, payment_id, state,"
        " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (kind, key, message_id, payment_id, MailState.COMPOSE, now, now))
    return conn.execute("SELECT id FROM mail_outbox WHERE key = ?", (key,)).fetchone()[0]


def _insert_alert(conn, key: str, kind: str, payment_id: str | None, detail: dict,
                  at: float) -> None:
    conn.execute("INSERT INTO mail_alerts (key, kind, payment_id, detail, at)"
                 " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                 (key, kind, payment_id, json.dumps(detail, sort_keys=True), at))


def _trail(conn, payment_id: str, kind: str, at: float, detail: dict) -> None:
    conn.execute("INSERT INTO events (payment_id, at, kind, source, detail)"
                 " VALUES (?, ?, ?, 'mail', ?)",
                 (payment_id, at, kind, json.dumps(detail, sort_keys=True)))


def _row(r) -> OutboxRow:
    return OutboxRow(
        id=r["id"], kind=r["kind"], key=r["key"], message_id=r["message_id"],
        payment_id=r["payment_id"], state=r["state"], reason=r["reason"],
        recipients=tuple(json.loads(r["recipients"])) if r["recipients"] else (),
        message=bytes(r["message"]) if r["message"] is not None else None,
        attempts=r["attempts"], created_at=r["created_at"], sent_at=r["sent_at"])
