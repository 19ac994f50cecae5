"""CashNet notifications: the state machine that records whether CashNet took the money.

Each notification is stored and applied in the same transaction that reads its payment, so two
notifications for one payment (CashNet retrying, or a success racing a failure) are applied
one after the other, never interleaved. A verified success always wins over declined,
cancelled and expired: the money was taken.
"""

from __future__ import annotations

import dataclasses
import json

from proxy.cashnet_checks import Echo, judge
from proxy.ledger.records import NoticeOutcome, PaymentRecord, payment_from
from proxy.ledger.store import Store, Transaction
from proxy.ledger.unmatched import record_without_reference, tx_owner
from proxy.notification import Message, StoredLine, payment_ids
from proxy.states import (
    FAILURE_APPLIES,
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
        named no payment, attached by staff) to update rather than store again. What the
        success does is decided by the checks of proxy/cashnet_checks.py."""
        source = source or f"cashnet:{peer}"
        cashnet_tx = message.tx or None
        stored = [StoredLine(line.item_code, line.amount) for line in payment.lines]
        echo = Echo(message, stored, payment.custcode, state=payment.state,
                    settled_by=payment.cashnet_tx, earlier=self._earlier(tx, cashnet_tx))
        verdict = judge(echo)
        if echo.earlier is not None:  # once per transaction: a repeat changes nothing
            if verdict.review:
                self._flag_review(tx, payment.id, verdict.review)
            self._notice(tx, payment.id, NoticeKind.DUPLICATE, None, fields, peer,
                         "differs" if verdict.review else "same")
            return NoticeOutcome(NoticeEffect.DUPLICATE, payment.id, cashnet_tx)
        if cashnet_tx and payment.cashnet_tx == cashnet_tx:
            return self._confirm_recorded(tx, payment, echo, fields, peer)
        other = tx_owner(tx.conn, cashnet_tx) if cashnet_tx else None
        if other and other != payment.id:
            # One payment per transaction: kept beside this payment for staff, never a 500
            # that CashNet would retry for ever.
            reason = (f"CashNet transaction {cashnet_tx} for this payment is already recorded "
                      f"for payment {other}: check both in CashNet")
            self._notice(tx, payment.id, NoticeKind.SUCCESS, f"tx:{cashnet_tx}", fields, peer,
                         "tx of another payment", notice_id)
            self._flag_review(tx, payment.id, reason)
            return NoticeOutcome(NoticeEffect.RECORDED, payment.id, reason)
        if verdict.stop is not None and verdict.stop.kept is not None:
            # The payment is settled already: keep the success beside it for staff.
            kept = verdict.stop.kept
            self._notice(tx, payment.id, NoticeKind.SUCCESS,
                         f"tx:{cashnet_tx}" if cashnet_tx else None, fields, peer, kept.note)
            self._flag_review(tx, payment.id, verdict.reason)
            return NoticeOutcome(kept.effect, payment.id, cashnet_tx or "success without tx")
        if verdict.stop is not None:
            return self._to_attention(tx, payment, cashnet_tx, message, peer,
                                      verdict.reason, source, notice_id)
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
        if verdict.review:  # posted all the same: the reference, lines and amounts match
            self._flag_review(tx, payment.id, verdict.review)
        return NoticeOutcome(NoticeEffect.PAID, payment.id, cashnet_tx)

    def _confirm_recorded(self, tx: Transaction, payment: PaymentRecord, echo: Echo,
                          fields: dict, peer: str) -> NoticeOutcome:
        """CashNet's own notification of the transaction staff recorded by hand (record-paid):
        the same money, not a second charge. Stored, so later repeats are known; staff look
        only if it does not match what was handed off."""
        first = judge(dataclasses.replace(echo, state=PaymentState.PENDING, settled_by=None))
        if first.reason or first.review:
            self._flag_review(tx, payment.id, "CashNet's notification of the transaction "
                              f"recorded by staff: {first.reason or first.review}")
        self._notice(tx, payment.id, NoticeKind.DUPLICATE, f"tx:{echo.message.tx}", fields,
                     peer, "recorded by staff")
        return NoticeOutcome(NoticeEffect.DUPLICATE, payment.id, echo.message.tx)

    @staticmethod
    def _earlier(tx: Transaction, cashnet_tx: str | None) -> dict | None:
        """The fields of the notification stored for this CashNet transaction, if any."""
        if not cashnet_tx:
            return None
        row = tx.execute("SELECT fields FROM notifications WHERE dedupe_key = ?",
                         (f"tx:{cashnet_tx}",)).fetchone()
        return None if row is None else json.loads(row["fields"])

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
                " received_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (payment_id, kind, dedupe_key, json.dumps(fields, sort_keys=True), peer,
                 self.store.clock(), outcome)).fetchone()[0]
        else:
            notice_id = existing
            tx.execute("UPDATE notifications SET payment_id = ?, kind = ?, dedupe_key = ?,"
                       " outcome = ? WHERE id = ?",
                       (payment_id, kind, dedupe_key, outcome, existing))
        tx.event(payment_id, EventKind.NOTIFICATION, f"cashnet:{peer}",
                 {"kind": kind, "outcome": outcome, "fields": fields, "notice_id": notice_id}
                 | (extra or {}))
        return notice_id
