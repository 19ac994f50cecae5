"""The ledger: payments, their allocations to Alma fees, CashNet notifications and an
append-only event trail (DESIGN.md §5).

Payment states:

    pending --success--> paid --all allocations applied--> posted
    pending --failure--> declined | cancelled (902)
    pending --no notice in N hours--> expired
    paid --cannot apply automatically--> attention --staff--> paid (retry) | resolved

A verified success always wins over declined, cancelled and expired: the money was taken.

Allocation states: planned (payment not paid yet) -> queued -> sending (a payment call may be
in Alma) -> posted | failed | moved (its money went to other fees).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from proxy.db import Database
from proxy.money import format_amount, from_cents, to_cents
from proxy.notification import Message, StoredLine, line_mismatch, payment_ids

UNSETTLED = ("pending", "declined", "cancelled", "expired")
OPEN_ALLOCATIONS = ("queued", "sending")
STATES = ("pending", "paid", "posted", "declined", "cancelled", "expired", "attention",
          "resolved")


@dataclass(frozen=True)
class LineRecord:
    number: int
    item_code: str
    amount: Decimal
    description: str


@dataclass(frozen=True)
class AllocationRecord:
    id: int
    payment_id: str
    fee_id: str
    fee_type: str
    fee_label: str
    planned: Decimal
    amount: Decimal
    unapplied: Decimal
    state: str
    origin: str
    outcome: str
    attempts: int
    last_attempt_at: float | None
    next_attempt_at: float | None

    def to_json(self) -> dict:
        return {"fee_id": self.fee_id, "fee_type": self.fee_type,
                "fee_label": self.fee_label or self.fee_type,
                "amount": format_amount(self.amount), "state": self.state}


@dataclass(frozen=True)
class PaymentRecord:
    id: str
    patron_id: str
    patron_name: str
    channel: str
    session_id: str
    amount: Decimal
    currency: str
    state: str
    reason: str
    review: str
    cashnet_tx: str | None
    batchno: str
    effdate: str
    pmtcode: str
    custcode: str
    checkout: dict
    created_at: float
    updated_at: float
    paid_at: float | None
    posted_at: float | None
    lines: tuple[LineRecord, ...]
    allocations: tuple[AllocationRecord, ...]

    @property
    def applied(self) -> Decimal:
        return sum((a.amount for a in self.allocations if a.state == "posted"), Decimal("0.00"))

    @property
    def unapplied(self) -> Decimal:
        return sum((a.unapplied for a in self.allocations), Decimal("0.00"))


@dataclass(frozen=True)
class NoticeOutcome:
    """What a CashNet notification did: `effect` is one of paid, attention, declined,
    cancelled, recorded, duplicate, double_charge, unmatched."""

    effect: str
    payment_id: str | None
    detail: str = ""


class Ledger:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    # --- creating and reading payments ---

    def create_payment(
        self,
        *,
        payment_id: str,
        patron_id: str,
        patron_name: str,
        channel: str,
        session_id: str,
        amount: Decimal,
        currency: str,
        custcode: str,
        lines: Iterable[LineRecord],
        allocations: Iterable[tuple[str, str, str, Decimal]],
        checkout: dict,
    ) -> PaymentRecord:
        now = self.clock()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO payments (id, patron_id, patron_name, channel, session_id,"
                " amount_cents, currency, state, custcode, checkout, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
                (payment_id, patron_id, patron_name, channel, session_id, to_cents(amount),
                 currency, custcode, json.dumps(checkout), now, now))
            conn.executemany(
                "INSERT INTO lines (payment_id, number, item_code, amount_cents, description)"
                " VALUES (?, ?, ?, ?, ?)",
                [(payment_id, line.number, line.item_code, to_cents(line.amount),
                  line.description) for line in lines])
            conn.executemany(
                "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label, planned_cents,"
                " amount_cents, state, origin) VALUES (?, ?, ?, ?, ?, ?, 'planned', 'patron')",
                [(payment_id, fee_id, fee_type, label, to_cents(share), to_cents(share))
                 for fee_id, fee_type, label, share in allocations])
            self._event(conn, payment_id, "created", "patron",
                        {"amount": format_amount(amount), "channel": channel})
        record = self.payment(payment_id)
        assert record is not None
        return record

    def payment(self, payment_id: str) -> PaymentRecord | None:
        row = self.db.read_one("SELECT * FROM payments WHERE id = ?", (payment_id,))
        return self._payment_from(row) if row else None

    def find_payments(
        self,
        *,
        state: str | None = None,
        patron_id: str | None = None,
        tx: str | None = None,
        since: float | None = None,
        until: float | None = None,
        needs_review: bool = False,
        by: str = "created_at",
        limit: int | None = 1000,
    ) -> list[PaymentRecord]:
        """Payments matching every filter given, oldest first. `since`/`until` bound the time
        named by `by`: `created_at` (the patron started it) or `paid_at` (CashNet took the
        money; payments never paid are then left out). `limit=None` returns all."""
        if by not in ("created_at", "paid_at"):
            raise ValueError(f"cannot order payments by {by!r}")
        clauses, params = [], []
        for column, value in (("state", state), ("patron_id", patron_id), ("cashnet_tx", tx)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append(f"{by} >= ?")
            params.append(since)
        if until is not None:
            clauses.append(f"{by} < ?")
            params.append(until)
        if by == "paid_at":
            clauses.append("paid_at IS NOT NULL")
        if needs_review:
            clauses.append("(state = 'attention' OR review != '')")
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self.db.read(
            f"SELECT * FROM payments{where} ORDER BY {by}, id LIMIT ?",  # noqa: S608
            (*params, -1 if limit is None else limit))
        return [self._payment_from(row) for row in rows]

    def events(self, payment_id: str) -> list[dict]:
        rows = self.db.read(
            "SELECT at, kind, source, detail FROM events WHERE payment_id = ? ORDER BY id",
            (payment_id,))
        return [{"at": r["at"], "kind": r["kind"], "source": r["source"],
                 "detail": json.loads(r["detail"])} for r in rows]

    def notifications(self, payment_id: str | None = None) -> list[dict]:
        sql = "SELECT * FROM notifications"
        params: tuple = ()
        if payment_id is not None:
            sql += " WHERE payment_id = ?"
            params = (payment_id,)
        return [dict(row) | {"fields": json.loads(row["fields"])}
                for row in self.db.read(sql + " ORDER BY id", params)]

    def add_event(self, payment_id: str, kind: str, source: str, detail: dict) -> None:
        """An audit note that changes no state (e.g. what a returning browser claimed)."""
        with self.db.write() as conn:
            self._event(conn, payment_id, kind, source, detail)

    # --- CashNet notifications ---

    def record_notification(
        self, message: Message, *, peer: str, ref_type: str, txn_ref_name: str = ""
    ) -> NoticeOutcome:
        """Record a verified-source notification and apply it, all in one transaction."""
        ids = payment_ids(message, ref_type, txn_ref_name)
        fields = message.recordable()
        with self.db.write() as conn:
            payment = None
            if len(ids) == 1:
                row = conn.execute("SELECT * FROM payments WHERE id = ?",
                                   (next(iter(ids)),)).fetchone()
                payment = self._payment_from(row, conn) if row else None
            if payment is None:
                detail = "two different payment ids" if len(ids) > 1 else "no payment of ours"
                self._notice(conn, None, "unmatched", None, fields, peer, detail)
                return NoticeOutcome("unmatched", None, detail)
            if message.succeeded:
                return self._apply_success(conn, payment, message, fields, peer)
            return self._apply_failure(conn, payment, message, fields, peer)

    def _apply_success(self, conn: sqlite3.Connection, payment: PaymentRecord,
                       message: Message, fields: dict, peer: str) -> NoticeOutcome:
        tx = message.tx
        if not tx and payment.state not in UNSETTLED:
            # Money already settled by an earlier notification: a malformed success must not
            # unsettle it (nor wipe its transaction number). Keep it for staff to look at.
            self._notice(conn, payment.id, "success", None, fields, peer, "no tx")
            self._flag_review(conn, payment.id, "CashNet sent a success without a transaction "
                              f"number for a payment already {payment.state}")
            return NoticeOutcome("recorded", payment.id, "success without tx")
        if not tx:
            return self._to_attention(conn, payment, None, message, peer,
                                      "success without a CashNet transaction number")
        previous = conn.execute("SELECT payment_id, fields FROM notifications "
                                "WHERE dedupe_key = ?", (f"tx:{tx}",)).fetchone()
        if previous is not None:
            differs = json.loads(previous["fields"]) != fields or bool(message.conflicts)
            if differs:
                self._flag_review(conn, payment.id, f"CashNet sent transaction {tx} twice with "
                                  "different contents")
            self._notice(conn, payment.id, "duplicate", None, fields, peer,
                         "differs" if differs else "same")
            return NoticeOutcome("duplicate", payment.id, tx)
        if payment.cashnet_tx is not None or payment.state not in UNSETTLED:
            self._notice(conn, payment.id, "success", f"tx:{tx}", fields, peer,
                         "double charge")
            earlier = payment.cashnet_tx or "an earlier notification"
            self._flag_review(conn, payment.id, f"second CashNet success (transaction {tx}) "
                              f"for a payment already settled by {earlier}: refund")
            return NoticeOutcome("double_charge", payment.id, tx)
        stored = [StoredLine(line.item_code, line.amount) for line in payment.lines]
        try:
            mismatch = line_mismatch(message, stored, payment.custcode)
        except (ValueError, ArithmeticError) as exc:  # an echo we cannot even read: not equal
            mismatch = f"unreadable lines ({type(exc).__name__})"
        if mismatch:
            return self._to_attention(conn, payment, tx, message, peer,
                                      f"amount mismatch: {mismatch}")
        now = self.clock()
        self._notice(conn, payment.id, "success", f"tx:{tx}", fields, peer, "paid")
        self._record_money_taken(conn, payment.id, tx, message)
        conn.execute("UPDATE payments SET state = 'paid', updated_at = ?, reason = '' WHERE id = ?",
                     (now, payment.id))
        conn.execute("UPDATE allocations SET state = 'queued', next_attempt_at = ? "
                     "WHERE payment_id = ? AND state = 'planned'", (now, payment.id))
        self._event(conn, payment.id, "paid", f"cashnet:{peer}",
                    {"from": payment.state, "tx": tx, "batchno": message.get("batchno")})
        return NoticeOutcome("paid", payment.id, tx)

    def _apply_failure(self, conn: sqlite3.Connection, payment: PaymentRecord,
                       message: Message, fields: dict, peer: str) -> NoticeOutcome:
        key = f"failed:{payment.id}:{message.failedtx}" if message.failedtx else None
        if key and conn.execute("SELECT 1 FROM notifications WHERE dedupe_key = ?",
                                (key,)).fetchone():
            self._notice(conn, payment.id, "duplicate", None, fields, peer, "failure")
            return NoticeOutcome("duplicate", payment.id, message.failedtx)
        new_state = "cancelled" if message.cancelled else "declined"
        if payment.state in ("pending", "declined", "cancelled"):
            self._notice(conn, payment.id, "failure", key, fields, peer, new_state)
            self._set_state(conn, payment.id, new_state, f"CashNet result {message.result}",
                            f"cashnet:{peer}", {"from": payment.state, "result": message.result,
                                                "failedtx": message.failedtx})
            return NoticeOutcome(new_state, payment.id, message.result)
        self._notice(conn, payment.id, "failure", key, fields, peer, "recorded only")
        self._event(conn, payment.id, "failure_ignored", f"cashnet:{peer}",
                    {"state": payment.state, "result": message.result})
        return NoticeOutcome("recorded", payment.id, message.result)

    def _record_money_taken(self, conn: sqlite3.Connection, payment_id: str, tx: str | None,
                            message: Message) -> None:
        """What CashNet says about the money it took, however the payment goes on."""
        conn.execute(
            "UPDATE payments SET cashnet_tx = ?, batchno = ?, effdate = ?, pmtcode = ?,"
            " paid_at = ? WHERE id = ?",
            (tx, message.get("batchno"), message.get("effdate"), message.get("pmtcode"),
             self.clock(), payment_id))

    def _to_attention(self, conn: sqlite3.Connection, payment: PaymentRecord, tx: str | None,
                      message: Message, peer: str, reason: str) -> NoticeOutcome:
        self._notice(conn, payment.id, "success", f"tx:{tx}" if tx else None,
                     message.recordable(), peer, "attention")
        self._record_money_taken(conn, payment.id, tx, message)
        self._set_state(conn, payment.id, "attention", reason, f"cashnet:{peer}",
                        {"from": payment.state, "tx": tx})
        return NoticeOutcome("attention", payment.id, reason)

    # --- timers ---

    def expire_pending(self, older_than_seconds: float) -> list[str]:
        """Pending payments with no notification for too long become expired."""
        cutoff = self.clock() - older_than_seconds
        with self.db.write() as conn:
            ids = [row["id"] for row in conn.execute(
                "SELECT id FROM payments WHERE state = 'pending' AND created_at < ?",
                (cutoff,))]
            for payment_id in ids:
                self._set_state(conn, payment_id, "expired", "no CashNet notification",
                                "timer", {"from": "pending"})
        return ids

    # --- posting to Alma (used by the posting worker) ---

    def claim_due_payment(self, owner: str, lease_seconds: float) -> str | None:
        """Take the lease on one paid payment with an allocation due, or return None."""
        now = self.clock()
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT a.payment_id FROM allocations a JOIN payments p ON p.id = a.payment_id"
                " LEFT JOIN leases l ON l.payment_id = a.payment_id"
                " WHERE p.state = 'paid' AND a.state IN ('queued', 'sending')"
                " AND a.next_attempt_at <= ? AND (l.until IS NULL OR l.until < ?)"
                " ORDER BY a.next_attempt_at LIMIT 1", (now, now)).fetchone()
            if row is None:
                return None
            conn.execute("INSERT INTO leases (payment_id, owner, until) VALUES (?, ?, ?)"
                         " ON CONFLICT (payment_id) DO UPDATE SET owner = excluded.owner,"
                         " until = excluded.until",
                         (row["payment_id"], owner, now + lease_seconds))
            return row["payment_id"]

    def break_leases(self, owner_is_dead: Callable[[str], bool]) -> list[str]:
        """Drop live leases whose owner is known to be dead (a process on this host that
        crashed), so its payments are picked up as soon as they are due instead of when the
        lease runs out. An allocation that was being sent stays untouched until its
        `next_attempt_at`, so a payment call still in flight lands before anyone looks."""
        now = self.clock()
        leases = self.db.read("SELECT payment_id, owner FROM leases WHERE until >= ?", (now,))
        dead = [(row["payment_id"], row["owner"]) for row in leases if owner_is_dead(row["owner"])]
        if not dead:
            return []
        broken = []
        with self.db.write() as conn:
            for payment_id, owner in dead:
                gone = conn.execute("DELETE FROM leases WHERE payment_id = ? AND owner = ?",
                                    (payment_id, owner)).rowcount
                if gone:
                    broken.append(payment_id)
                    self._event(conn, payment_id, "lease_broken", "worker", {"owner": owner})
        return broken

    def posting_started_at(self, payment_id: str) -> float | None:
        """When the payment last became `paid` (CashNet's notice, or a staff retry): the start
        of the give-up horizon, so a retry after a long outage gets a horizon of its own."""
        row = self.db.read_one("SELECT MAX(at) AS at FROM events WHERE payment_id = ?"
                               " AND kind = 'paid'", (payment_id,))
        return row["at"] if row else None

    def next_due_at(self) -> float | None:
        row = self.db.read_one(
            "SELECT MIN(a.next_attempt_at) AS due FROM allocations a"
            " JOIN payments p ON p.id = a.payment_id"
            " WHERE p.state = 'paid' AND a.state IN ('queued', 'sending')")
        return row["due"] if row else None

    def release(self, payment_id: str, owner: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM leases WHERE payment_id = ? AND owner = ?",
                         (payment_id, owner))

    def mark_sending(self, allocation_id: int, owner: str, lease_seconds: float,
                     recheck_seconds: float) -> bool:
        """Before a payment call: confirm we still hold the lease and record that the call
        may reach Alma. Returns False (send nothing) if another worker took over."""
        now = self.clock()
        with self.db.write() as conn:
            alloc = conn.execute("SELECT * FROM allocations WHERE id = ?",
                                 (allocation_id,)).fetchone()
            if alloc is None or not self._holds_lease(conn, alloc["payment_id"], owner, now):
                return False
            conn.execute("UPDATE leases SET until = ? WHERE payment_id = ?",
                         (now + lease_seconds, alloc["payment_id"]))
            conn.execute(
                "UPDATE allocations SET state = 'sending',"
                " last_attempt_at = ?, next_attempt_at = ? WHERE id = ?",
                (now, now + recheck_seconds, allocation_id))
            return True

    def mark_posted(self, allocation_id: int, outcome: str) -> None:
        with self.db.write() as conn:
            alloc = self._allocation_row(conn, allocation_id)
            conn.execute("UPDATE allocations SET state = 'posted', outcome = ?,"
                         " next_attempt_at = NULL WHERE id = ?", (outcome, allocation_id))
            self._event(conn, alloc["payment_id"], "allocation_posted", "worker",
                        {"fee_id": alloc["fee_id"],
                         "amount": format_amount(from_cents(alloc["amount_cents"])),
                         "outcome": outcome})

    def mark_retry(self, allocation_id: int, next_attempt_at: float, outcome: str) -> None:
        """A transient failure: try again later. The state is kept: a `sending` allocation
        still needs a look at Alma before any new payment call."""
        with self.db.write() as conn:
            alloc = self._allocation_row(conn, allocation_id)
            conn.execute("UPDATE allocations SET outcome = ?, next_attempt_at = ?,"
                         " attempts = attempts + 1 WHERE id = ?",
                         (outcome, next_attempt_at, allocation_id))
            self._event(conn, alloc["payment_id"], "allocation_retry", "worker",
                        {"fee_id": alloc["fee_id"], "outcome": outcome,
                         "next_attempt_at": next_attempt_at})

    def mark_not_sent(self, allocation_id: int, next_attempt_at: float, outcome: str) -> None:
        """The payment call certainly never reached Alma: back to queued, no look needed."""
        with self.db.write() as conn:
            alloc = self._allocation_row(conn, allocation_id)
            conn.execute("UPDATE allocations SET state = 'queued', outcome = ?,"
                         " next_attempt_at = ?, attempts = attempts + 1 WHERE id = ?",
                         (outcome, next_attempt_at, allocation_id))
            self._event(conn, alloc["payment_id"], "allocation_retry", "worker",
                        {"fee_id": alloc["fee_id"], "outcome": outcome,
                         "next_attempt_at": next_attempt_at})

    def mark_failed(self, allocation_id: int, outcome: str) -> None:
        """Nothing more can be applied automatically; what is left waits for staff."""
        with self.db.write() as conn:
            alloc = self._allocation_row(conn, allocation_id)
            conn.execute(
                "UPDATE allocations SET state = 'failed', outcome = ?, next_attempt_at = NULL,"
                " unapplied_cents = unapplied_cents + amount_cents, amount_cents = 0"
                " WHERE id = ?", (outcome, allocation_id))
            self._event(conn, alloc["payment_id"], "allocation_failed", "worker",
                        {"fee_id": alloc["fee_id"], "outcome": outcome,
                         "unapplied": format_amount(from_cents(alloc["amount_cents"]))})

    def reduce_allocation(self, allocation_id: int, applicable: Decimal, reason: str,
                          moves: list[tuple[str, str, str, Decimal]], *, lease: str) -> bool:
        """The fee holds less than we meant to pay: apply only `applicable` here, send the
        `moves` (fee id, fee type, amount) to other fees, and hold any rest for staff.
        Returns False (changing nothing) when `lease` no longer holds the payment."""
        with self.db.write() as conn:
            alloc = self._allocation_row(conn, allocation_id)
            if not self._holds_lease(conn, alloc["payment_id"], lease, self.clock()):
                return False
            surplus = alloc["amount_cents"] - to_cents(applicable)
            moved = sum(to_cents(amount) for *_, amount in moves)
            if surplus <= 0 or moved > surplus:
                raise ValueError("reduce_allocation needs a smaller applicable amount")
            now = self.clock()
            rest = surplus - moved
            if applicable > 0:
                conn.execute("UPDATE allocations SET amount_cents = ?, state = 'queued',"
                             " outcome = ?, next_attempt_at = ? WHERE id = ?",
                             (to_cents(applicable), reason, now, allocation_id))
                if rest:
                    # The rest waits for staff in a row of its own, so its reason survives
                    # the posting of the part that fits (and `retry` can try it again).
                    conn.execute(
                        "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label,"
                        " planned_cents, amount_cents, unapplied_cents, state, origin, outcome)"
                        " VALUES (?, ?, ?, ?, 0, 0, ?, 'failed', 'rest the fee could not take',"
                        " ?)", (alloc["payment_id"], alloc["fee_id"], alloc["fee_type"],
                                alloc["fee_label"], rest, reason))
            else:
                state = "moved" if moved == surplus else "failed"
                conn.execute(
                    "UPDATE allocations SET amount_cents = 0, unapplied_cents = unapplied_cents"
                    " + ?, state = ?, outcome = ?, next_attempt_at = NULL WHERE id = ?",
                    (rest, state, reason, allocation_id))
            conn.executemany(
                "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label, planned_cents,"
                " amount_cents, state, origin, next_attempt_at)"
                " VALUES (?, ?, ?, ?, 0, ?, 'queued', ?, ?)",
                [(alloc["payment_id"], fee_id, fee_type, label, to_cents(amount),
                  f"moved from fee {alloc['fee_id']}", now)
                 for fee_id, fee_type, label, amount in moves])
            self._event(conn, alloc["payment_id"], "allocation_reduced", "worker", {
                "fee_id": alloc["fee_id"], "reason": reason,
                "applicable": format_amount(applicable),
                "moved": [{"fee_id": f, "amount": format_amount(a)} for f, _, _, a in moves],
                "unapplied": format_amount(from_cents(surplus - moved))})
        return True

    def paid_with_nothing_left(self) -> list[str]:
        """Paid payments none of whose allocations is still to post: they only need settling."""
        return [row["id"] for row in self.db.read(
            "SELECT id FROM payments p WHERE state = 'paid' AND NOT EXISTS (SELECT 1 FROM"
            " allocations a WHERE a.payment_id = p.id AND a.state IN ('queued', 'sending'))")]

    def settle_if_done(self, payment_id: str) -> str:
        """When no allocation is left to post: posted, or attention if money is unapplied."""
        with self.db.write() as conn:
            payment = conn.execute("SELECT state FROM payments WHERE id = ?",
                                   (payment_id,)).fetchone()
            if payment is None or payment["state"] != "paid":
                return payment["state"] if payment else ""
            rows = conn.execute("SELECT state, unapplied_cents, outcome FROM allocations"
                                " WHERE payment_id = ?", (payment_id,)).fetchall()
            if any(row["state"] in OPEN_ALLOCATIONS for row in rows):
                return "paid"
            unapplied = sum(row["unapplied_cents"] for row in rows)
            if unapplied:
                reasons = sorted({row["outcome"] for row in rows if row["unapplied_cents"]})
                reason = f"{format_amount(from_cents(unapplied))} not applied in Alma: " \
                         + "; ".join(reasons)
                self._set_state(conn, payment_id, "attention", reason, "worker",
                                {"unapplied": format_amount(from_cents(unapplied))})
                return "attention"
            conn.execute("UPDATE payments SET posted_at = ? WHERE id = ?",
                         (self.clock(), payment_id))
            self._set_state(conn, payment_id, "posted", "", "worker", {})
            return "posted"

    # --- staff actions ---

    def retry(self, payment_id: str, actor: str) -> PaymentRecord:
        """Send a payment in attention back to the worker: failed allocations are queued
        again (their unapplied money with them). The worker looks at Alma before paying, as
        always, and gets a new give-up horizon."""
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
            if row is None:
                raise LookupError(f"no payment {payment_id}")
            if row["state"] != "attention" or not row["cashnet_tx"]:
                raise ValueError(f"payment {payment_id} is {row['state']}; only a payment in "
                                 "attention with a CashNet transaction can be retried")
            now = self.clock()
            conn.execute(
                "UPDATE allocations SET state = 'queued', next_attempt_at = ?, attempts = 0,"
                " amount_cents = amount_cents + unapplied_cents, unapplied_cents = 0"
                " WHERE payment_id = ? AND state IN ('failed', 'planned')",
                (now, payment_id))
            self._set_state(conn, payment_id, "paid", "", f"staff:{actor}", {"action": "retry"})
        return self.payment(payment_id)  # type: ignore[return-value]

    def resolve(self, payment_id: str, note: str, actor: str) -> PaymentRecord:
        """Staff settled it outside patronpay (refund, manual posting): record and close."""
        if not note.strip():
            raise ValueError("a note saying what was done is required")
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
            if row is None:
                raise LookupError(f"no payment {payment_id}")
            if row["state"] != "attention" and not row["review"]:
                raise ValueError(f"payment {payment_id} is {row['state']} and needs nothing")
            conn.execute("UPDATE payments SET review = '' WHERE id = ?", (payment_id,))
            if row["state"] == "attention":
                self._set_state(conn, payment_id, "resolved", note, f"staff:{actor}",
                                {"note": note})
            else:
                self._event(conn, payment_id, "review_cleared", f"staff:{actor}",
                            {"note": note})
        return self.payment(payment_id)  # type: ignore[return-value]

    # --- plumbing ---

    def _holds_lease(self, conn: sqlite3.Connection, payment_id: str, owner: str,
                     now: float) -> bool:
        lease = conn.execute("SELECT owner, until FROM leases WHERE payment_id = ?",
                             (payment_id,)).fetchone()
        return lease is not None and lease["owner"] == owner and lease["until"] > now

    def _allocation_row(self, conn: sqlite3.Connection, allocation_id: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM allocations WHERE id = ?",
                           (allocation_id,)).fetchone()
        if row is None:
            raise LookupError(f"no allocation {allocation_id}")
        return row

    def _set_state(self, conn: sqlite3.Connection, payment_id: str, state: str, reason: str,
                   source: str, detail: dict) -> None:
        conn.execute("UPDATE payments SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                     (state, reason, self.clock(), payment_id))
        self._event(conn, payment_id, state, source, detail | {"reason": reason})

    def _flag_review(self, conn: sqlite3.Connection, payment_id: str, reason: str) -> None:
        conn.execute("UPDATE payments SET review = ? WHERE id = ?", (reason, payment_id))
        self._event(conn, payment_id, "needs_review", "cashnet", {"reason": reason})

    def _notice(self, conn: sqlite3.Connection, payment_id: str | None, kind: str,
                dedupe_key: str | None, fields: dict, peer: str, outcome: str) -> None:
        conn.execute(
            "INSERT INTO notifications (payment_id, kind, dedupe_key, fields, peer,"
            " received_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (payment_id, kind, dedupe_key, json.dumps(fields, sort_keys=True), peer,
             self.clock(), outcome))
        self._event(conn, payment_id, "notification", f"cashnet:{peer}",
                    {"kind": kind, "outcome": outcome, "fields": fields})

    def _event(self, conn: sqlite3.Connection, payment_id: str | None, kind: str, source: str,
               detail: dict) -> None:
        conn.execute("INSERT INTO events (payment_id, at, kind, source, detail)"
                     " VALUES (?, ?, ?, ?, ?)",
                     (payment_id, self.clock(), kind, source, json.dumps(detail, sort_keys=True)))

    def _payment_from(self, row: sqlite3.Row,
                      conn: sqlite3.Connection | None = None) -> PaymentRecord:
        conn = conn or self.db.connection()
        lines = tuple(
            LineRecord(r["number"], r["item_code"], from_cents(r["amount_cents"]),
                       r["description"])
            for r in conn.execute("SELECT * FROM lines WHERE payment_id = ? ORDER BY number",
                                  (row["id"],)))
        allocations = tuple(
            AllocationRecord(
                id=r["id"], payment_id=r["payment_id"], fee_id=r["fee_id"],
                fee_type=r["fee_type"], fee_label=r["fee_label"],
                planned=from_cents(r["planned_cents"]),
                amount=from_cents(r["amount_cents"]), unapplied=from_cents(r["unapplied_cents"]),
                state=r["state"], origin=r["origin"], outcome=r["outcome"],
                attempts=r["attempts"], last_attempt_at=r["last_attempt_at"],
                next_attempt_at=r["next_attempt_at"])
            for r in conn.execute("SELECT * FROM allocations WHERE payment_id = ? ORDER BY id",
                                  (row["id"],)))
        return PaymentRecord(
            id=row["id"], patron_id=row["patron_id"], patron_name=row["patron_name"],
            channel=row["channel"], session_id=row["session_id"],
            amount=from_cents(row["amount_cents"]), currency=row["currency"],
            state=row["state"], reason=row["reason"], review=row["review"],
            cashnet_tx=row["cashnet_tx"], batchno=row["batchno"], effdate=row["effdate"],
            pmtcode=row["pmtcode"], custcode=row["custcode"],
            checkout=json.loads(row["checkout"]), created_at=row["created_at"],
            updated_at=row["updated_at"], paid_at=row["paid_at"], posted_at=row["posted_at"],
            lines=lines, allocations=allocations)
