"""CashNet notifications: the state machine that records whether CashNet took the money.

Each notification is stored and applied in the same transaction that reads its payment, so two
notifications for one payment (CashNet retrying, or a success racing a failure) are applied
one after the other, never interleaved. A verified success always wins over declined,
cancelled and expired: the money was taken.
"""

from __future__ import annotations

import json

from proxy.ledger.records import NoticeOutcome, PaymentRecord, payment_from
from proxy.ledger.store import Store, Transaction
from proxy.ledger.unmatched import record_without_reference
from proxy.notification import Message, StoredLine, echo_review, line_mismatch, payment_ids
from proxy.states import (
    FAILURE_APPLIES,
    UNSETTLED,
    AllocationState,
    EventKind,
    NoticeEffect,
    NoticeKind,
    PaymentState,
)


class Notices:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record_notification(
        self, message: Message, *, peer: str, ref_type: str, txn_ref_name: str = ""
    ) -> NoticeOutcome:
        """Record a verified-source notification and apply it, all in one transaction."""
        ids = payment_ids(message, ref_type, txn_ref_name)
        fields = message.recordable()
        with self.store.transaction() as tx:
            payment = None
            if len(ids) == 1:
                row = tx.execute("SELECT * FROM payments WHERE id = ?",
                                 (next(iter(ids)),)).fetchone()
                payment = payment_from(row, tx.conn) if row else None
            if not ids and message.succeeded:
                return record_without_reference(tx, message, fields, peer, self._notice)
            if payment is None:
                detail = "two different payment ids" if len(ids) > 1 else "no payment of ours"
                self._notice(tx, None, NoticeKind.UNMATCHED, None, fields, peer, detail)
                return NoticeOutcome(NoticeEffect.UNMATCHED, None, detail)
            if message.succeeded:
                return self.apply_success(tx, payment, message, fields, peer)
            return self._apply_failure(tx, payment, message, fields, peer)

    def apply_success(self, tx: Transaction, payment: PaymentRecord, message: Message,
                      fields: dict, peer: str, *, source: str = "",
                      notice_id: int | None = None) -> NoticeOutcome:
        """A success for `payment`, inside `tx`. `source` names who applies it in the trail
        (default: CashNet at `peer`); `notice_id` is a notification already stored (one that
        named no payment, attached by staff) to update rather than store again."""
        source = source or f"cashnet:{peer}"
        cashnet_tx = message.tx
        if not cashnet_tx and payment.state not in UNSETTLED:
            # Money already settled by an earlier notification: a malformed success must not
            # unsettle it (nor wipe its transaction number). Keep it for staff to look at.
            self._notice(tx, payment.id, NoticeKind.SUCCESS, None, fields, peer, "no tx")
            self._flag_review(tx, payment.id, "CashNet sent a success without a transaction "
                              f"number for a payment already {payment.state}")
            return NoticeOutcome(NoticeEffect.RECORDED, payment.id, "success without tx")
        if not cashnet_tx:
            return self._to_attention(tx, payment, None, message, peer,
                                      "success without a CashNet transaction number",
                                      source, notice_id)
        previous = tx.execute("SELECT payment_id, fields FROM notifications "
                              "WHERE dedupe_key = ?", (f"tx:{cashnet_tx}",)).fetchone()
        if previous is not None:
            differs = (json.loads(previous["fields"]) != fields
                       or bool(message.decision_conflicts()))
            if differs:
                self._flag_review(tx, payment.id, f"CashNet sent transaction {cashnet_tx} "
                                  "twice with different contents")
            self._notice(tx, payment.id, NoticeKind.DUPLICATE, None, fields, peer,
                         "differs" if differs else "same")
            return NoticeOutcome(NoticeEffect.DUPLICATE, payment.id, cashnet_tx)
        if payment.cashnet_tx is not None or payment.state not in UNSETTLED:
            self._notice(tx, payment.id, NoticeKind.SUCCESS, f"tx:{cashnet_tx}", fields, peer,
                         "double charge")
            earlier = payment.cashnet_tx or "an earlier notification"
            self._flag_review(tx, payment.id, f"second CashNet success (transaction "
                              f"{cashnet_tx}) for a payment already settled by {earlier}: "
                              "refund")
            return NoticeOutcome(NoticeEffect.DOUBLE_CHARGE, payment.id, cashnet_tx)
        stored = [StoredLine(line.item_code, line.amount) for line in payment.lines]
        try:
            mismatch = line_mismatch(message, stored, payment.custcode)
        except (ValueError, ArithmeticError) as exc:  # an echo we cannot even read: not equal
            mismatch = f"unreadable lines ({type(exc).__name__})"
        if mismatch:
            return self._to_attention(tx, payment, cashnet_tx, message, peer,
                                      mismatch, source, notice_id)
        now = self.store.clock()
        self._notice(tx, payment.id, NoticeKind.SUCCESS, f"tx:{cashnet_tx}", fields, peer,
                     PaymentState.PAID, notice_id)
        self._record_money_taken(tx, payment.id, cashnet_tx, message)
        tx.execute("UPDATE payments SET state = ?, updated_at = ?, reason = '' WHERE id = ?",
                   (PaymentState.PAID, now, payment.id))
        tx.execute("UPDATE allocations SET state = ?, next_attempt_at = ? "
                   "WHERE payment_id = ? AND state = ?",
                   (AllocationState.QUEUED, now, payment.id, AllocationState.PLANNED))
        tx.event(payment.id, EventKind.PAID, source,
                 {"from": payment.state, "tx": cashnet_tx, "batchno": message.get("batchno")})
        review = echo_review(message, stored, payment.custcode)
        if review:  # posted all the same: the reference, lines and amounts match
            self._flag_review(tx, payment.id, review)
        return NoticeOutcome(NoticeEffect.PAID, payment.id, cashnet_tx)

    def _apply_failure(self, tx: Transaction, payment: PaymentRecord, message: Message,
                       fields: dict, peer: str) -> NoticeOutcome:
        key = f"failed:{payment.id}:{message.failedtx}" if message.failedtx else None
        if key and tx.execute("SELECT 1 FROM notifications WHERE dedupe_key = ?",
                              (key,)).fetchone():
            self._notice(tx, payment.id, NoticeKind.DUPLICATE, None, fields, peer, "failure")
            return NoticeOutcome(NoticeEffect.DUPLICATE, payment.id, message.failedtx)
        new_state = PaymentState.CANCELLED if message.cancelled else PaymentState.DECLINED
        if payment.state in FAILURE_APPLIES:
            self._notice(tx, payment.id, NoticeKind.FAILURE, key, fields, peer, new_state)
            tx.set_state(payment.id, new_state, f"CashNet result {message.result}",
                         f"cashnet:{peer}", {"from": payment.state, "result": message.result,
                                             "failedtx": message.failedtx})
            return NoticeOutcome(NoticeEffect(new_state), payment.id, message.result)
        self._notice(tx, payment.id, NoticeKind.FAILURE, key, fields, peer, "recorded only")
        tx.event(payment.id, EventKind.FAILURE_IGNORED, f"cashnet:{peer}",
                 {"state": payment.state, "result": message.result})
        return NoticeOutcome(NoticeEffect.RECORDED, payment.id, message.result)

    def _record_money_taken(self, tx: Transaction, payment_id: str, cashnet_tx: str | None,
                            message: Message) -> None:
        """What CashNet says about the money it took, however the payment goes on."""
        tx.execute(
            "UPDATE payments SET cashnet_tx = ?, batchno = ?, effdate = ?, pmtcode = ?,"
            " paid_at = ? WHERE id = ?",
            (cashnet_tx, message.get("batchno"), message.get("effdate"), message.get("pmtcode"),
             self.store.clock(), payment_id))

    def _to_attention(self, tx: Transaction, payment: PaymentRecord, cashnet_tx: str | None,
                      message: Message, peer: str, reason: str, source: str,
                      notice_id: int | None) -> NoticeOutcome:
        self._notice(tx, payment.id, NoticeKind.SUCCESS,
                     f"tx:{cashnet_tx}" if cashnet_tx else None, message.recordable(), peer,
                     PaymentState.ATTENTION, notice_id)
        self._record_money_taken(tx, payment.id, cashnet_tx, message)
        tx.set_state(payment.id, PaymentState.ATTENTION, reason, source,
                     {"from": payment.state, "tx": cashnet_tx})
        return NoticeOutcome(NoticeEffect.ATTENTION, payment.id, reason)

    def _flag_review(self, tx: Transaction, payment_id: str, reason: str) -> None:
        tx.execute("UPDATE payments SET review = ? WHERE id = ?", (reason, payment_id))
        tx.event(payment_id, EventKind.NEEDS_REVIEW, "cashnet", {"reason": reason})

    def _notice(self, tx: Transaction, payment_id: str | None, kind: NoticeKind,
                dedupe_key: str | None, fields: dict, peer: str, outcome: str,
                existing: int | None = None, extra: dict | None = None) -> int:
        """Store a notification (or update `existing`, one stored earlier without a payment)
        and note it in the trail; returns its id."""
        if existing is None:
            notice_id = tx.execute(
                "INSERT INTO notifications (payment_id, kind, dedupe_key, fields, peer,"
                " received_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (payment_id, kind, dedupe_key, json.dumps(fields, sort_keys=True), peer,
                 self.store.clock(), outcome)).lastrowid
        else:
            notice_id = existing
            tx.execute("UPDATE notifications SET payment_id = ?, kind = ?, dedupe_key = ?,"
                       " outcome = ? WHERE id = ?",
                       (payment_id, kind, dedupe_key, outcome, existing))
        tx.event(payment_id, EventKind.NOTIFICATION, f"cashnet:{peer}",
                 {"kind": kind, "outcome": outcome, "fields": fields, "notice_id": notice_id}
                 | (extra or {}))
        return notice_id
