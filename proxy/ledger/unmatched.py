"""Successes that named no payment of ours, and staff attaching them to the right one
(docs/staff.md#a-success-with-no-reference).

CashNet sometimes sends a success without the reference that names our payment. It is stored
as unmatched, with the candidates: pending payments issued with the same custcode and the same
total. Nothing is posted on a guess; staff look in CashNet and attach it to one payment, which
then takes the success exactly as if it had carried the reference (the line checks included)
and is posted once. A transaction number already in the ledger is never attached again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from proxy.database.base import Connection
from proxy.ledger.reads import Reads
from proxy.ledger.records import NoticeOutcome, PaymentRecord, payment_from
from proxy.ledger.store import Store, Transaction
from proxy.money import to_cents
from proxy.notification import Message
from proxy.states import UNSETTLED, EventKind, NoticeEffect, NoticeKind, PaymentState

if TYPE_CHECKING:
    from proxy.ledger.notices import Notices

NO_REFERENCE = "no reference"
ALREADY_IN_LEDGER = "no reference; transaction already in the ledger"


@dataclass(frozen=True)
class UnmatchedSuccess:
    """A stored success that names no payment, with the candidates found when it came."""

    notice_id: int
    received_at: float
    peer: str
    fields: dict
    candidates: tuple[str, ...]

    @property
    def tx(self) -> str:
        return str(self.fields.get("tx", "")).strip()


def echoed_total(message: Message) -> Decimal | None:
    """The sum of the echoed lines, or None when a line has no readable amount."""
    try:
        amounts = [amount for _, amount in message.lines()]
    except (ValueError, ArithmeticError):
        return None
    if not amounts or any(amount is None for amount in amounts):
        return None
    return sum(amounts, Decimal("0.00"))  # type: ignore[arg-type]


def candidates(conn: Connection, message: Message) -> list[str]:
    """Pending payments issued with the echoed custcode (trimmed, any case) and total."""
    custcode, total = message.get("custcode").lower(), echoed_total(message)
    if not custcode or total is None:
        return []
    rows = conn.execute(
        "SELECT id FROM payments WHERE state = ? AND lower(trim(custcode)) = ?"
        " AND amount_cents = ? ORDER BY created_at, id",
        (PaymentState.PENDING, custcode, to_cents(total))).fetchall()
    return [row["id"] for row in rows]


def tx_owner(conn: Connection, cashnet_tx: str) -> str | None:
    """The payment already holding this CashNet transaction, or "" when only a stored
    notification does; None when the ledger has never seen it."""
    row = conn.execute("SELECT id FROM payments WHERE cashnet_tx = ?", (cashnet_tx,)).fetchone()
    if row is not None:
        return row["id"]
    seen = conn.execute("SELECT payment_id FROM notifications WHERE dedupe_key = ?",
                        (f"tx:{cashnet_tx}",)).fetchone()
    return None if seen is None else (seen["payment_id"] or "")


def record_without_reference(tx: Transaction, message: Message, fields: dict, peer: str,
                             notice: Callable[..., int]) -> NoticeOutcome:
    """Store a success that names no payment, with its candidates noted on it and on each
    candidate's trail. `notice` is Notices._notice (stores the row and its event)."""
    if message.tx and tx_owner(tx.conn, message.tx) is not None:
        notice(tx, None, NoticeKind.UNMATCHED, None, fields, peer, ALREADY_IN_LEDGER)
        return NoticeOutcome(NoticeEffect.UNMATCHED, None, ALREADY_IN_LEDGER)
    found = candidates(tx.conn, message)
    notice_id = notice(tx, None, NoticeKind.UNMATCHED, None, fields, peer, NO_REFERENCE,
                       extra={"candidates": found})
    for payment_id in found:
        tx.event(payment_id, EventKind.UNMATCHED_CANDIDATE, f"cashnet:{peer}",
                 {"notice": notice_id, "tx": message.tx})
    return NoticeOutcome(NoticeEffect.UNMATCHED, None,
                         f"{NO_REFERENCE}; {len(found)} candidate(s)")


class Unmatched:
    def __init__(self, store: Store, reads: Reads, notices: Notices) -> None:
        self.store = store
        self.reads = reads
        self.notices = notices

    def waiting(self) -> list[UnmatchedSuccess]:
        """Successes with no reference that no payment holds yet, oldest first. CashNet may
        send one several times: each transaction is listed once."""
        db = self.store.db
        rows = db.read("SELECT * FROM notifications WHERE kind = ? AND payment_id IS NULL"
                       " AND outcome = ? ORDER BY id", (NoticeKind.UNMATCHED, NO_REFERENCE))
        found, seen = [], set()
        noted = _candidates_noted(db) if rows else {}
        for row in rows:
            fields = json.loads(row["fields"])
            cashnet_tx = str(fields.get("tx", "")).strip()
            if cashnet_tx in seen or (cashnet_tx and tx_owner(db.connection(), cashnet_tx)):
                continue
            seen.add(cashnet_tx)
            found.append(UnmatchedSuccess(row["id"], row["received_at"], row["peer"], fields,
                                          tuple(noted.get(row["id"], ()))))
        return found

    def attach(self, notice_id: int, payment_id: str, actor: str) -> PaymentRecord:
        """Apply a stored success with no reference to `payment_id`, as staff decided after
        looking in CashNet. Raises LookupError or ValueError (with the reason) and changes
        nothing when it cannot be attached."""
        with self.store.transaction() as tx:
            row = tx.execute("SELECT * FROM notifications WHERE id = ?",
                             (notice_id,)).fetchone()
            if row is None or row["kind"] != NoticeKind.UNMATCHED or row["payment_id"]:
                raise LookupError(f"no unmatched notification {notice_id}")
            message = Message(json.loads(row["fields"]))
            if not message.succeeded or not message.tx:
                raise ValueError(f"notification {notice_id} is not a success with a CashNet "
                                 "transaction number")
            owner = tx_owner(tx.conn, message.tx)
            if owner is not None:
                raise ValueError(f"CashNet transaction {message.tx} is already in the ledger"
                                 + (f" (payment {owner})" if owner else ""))
            payment_row = tx.execute("SELECT * FROM payments WHERE id = ?",
                                     (payment_id,)).fetchone()
            if payment_row is None:
                raise LookupError(f"no payment {payment_id}")
            payment = payment_from(payment_row, tx.conn)
            if payment.state not in UNSETTLED or payment.cashnet_tx:
                raise ValueError(f"payment {payment_id} is {payment.state}; only a payment "
                                 "CashNet has not confirmed can take this success")
            tx.event(payment_id, EventKind.ATTACHED, f"staff:{actor}",
                     {"notice": notice_id, "tx": message.tx})
            self.notices.apply_success(tx, payment, message, message.recordable(),
                                       row["peer"], source=f"staff:{actor}",
                                       notice_id=notice_id)
        return self.reads.payment(payment_id)  # type: ignore[return-value]


def _candidates_noted(db) -> dict[int, list[str]]:
    """The payments each notification naming none of ours might belong to, by notice id.
    Read in Python: json_extract is SQLite's alone, and these events are few (one per
    notification that named no payment of ours)."""
    rows = db.read("SELECT detail FROM events WHERE payment_id IS NULL AND kind = ?"
                   " ORDER BY id", (EventKind.NOTIFICATION,))
    noted: dict[int, list[str]] = {}
    for row in rows:
        detail = json.loads(row["detail"])
        if isinstance(detail.get("notice_id"), int):
            noted.setdefault(detail["notice_id"], list(detail.get("candidates", [])))
    return noted
