"""Money taken elsewhere (the campus bursar's payments file), entered as a paid payment for the
posting worker to apply in Alma.

The payment's id is derived from its idempotency key (the bursar's transaction id), and the
payment, its allocations and its trail are written in one transaction that first looks for
that id: a file imported twice, an overlapping file, or a re-run after a crash mid-import finds
the payment already there and creates nothing. The transaction id is also the payment's
`cashnet_tx`, which the worker sends to Alma as `external_transaction_id` and looks for in Alma
before paying (the ledger's unique index on it keeps one payment per transaction id).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from proxy.ledger.reads import Reads
from proxy.ledger.records import PaymentRecord
from proxy.ledger.store import Store
from proxy.money import ZERO, format_amount, to_cents
from proxy.states import AllocationState, EventKind, PaymentState

UNALLOCATED_FEE = "unallocated"


class TransactionTaken(ValueError):
    """The transaction id already belongs to a payment of another channel (e.g. CashNet's own
    notification recorded the same money)."""

    def __init__(self, payment_id: str, channel: str) -> None:
        super().__init__(f"transaction already recorded by payment {payment_id} ({channel})")
        self.payment_id = payment_id
        self.channel = channel


@dataclass(frozen=True)
class ExternalShare:
    fee_id: str
    fee_type: str
    fee_label: str
    amount: Decimal


def external_payment_id(channel: str, key: str) -> str:
    """The payment id of an idempotency key: the same key, the same id."""
    digest = hashlib.sha256(f"{channel}\x1f{key}".encode()).hexdigest()[:32]
    return f"{channel}-{digest}"


class ExternalPayments:
    def __init__(self, store: Store, reads: Reads) -> None:
        self.store = store
        self.reads = reads

    def record(
        self,
        *,
        channel: str,
        transaction_id: str,
        patron_id: str,
        patron_name: str,
        custcode: str,
        amount: Decimal,
        currency: str,
        item_code: str,
        description: str,
        shares: Sequence[ExternalShare],
        unapplied_reason: str,
        source: dict,
    ) -> tuple[PaymentRecord, bool]:
        """(the payment, True) when created now; (the existing payment, False) when this
        transaction id was recorded before. `shares` may cover less than `amount`: the rest
        waits for staff with `unapplied_reason` (attention once the shares are posted)."""
        payment_id = external_payment_id(channel, transaction_id)
        rest = amount - sum((share.amount for share in shares), ZERO)
        if rest < ZERO or any(share.amount <= ZERO for share in shares):
            raise ValueError("shares must be positive and within the amount")
        with self.store.transaction() as tx:
            if tx.execute("SELECT 1 FROM payments WHERE id = ?", (payment_id,)).fetchone():
                created = False
            else:
                other = tx.execute("SELECT id, channel FROM payments WHERE cashnet_tx = ?",
                                   (transaction_id,)).fetchone()
                if other is not None:
                    raise TransactionTaken(other["id"], other["channel"])
                self._insert(tx, payment_id, channel, transaction_id, patron_id, patron_name,
                             custcode, amount, currency, item_code, description, shares, rest,
                             unapplied_reason, source)
                created = True
        record = self.reads.payment(payment_id)
        assert record is not None
        return record, created

    def _insert(self, tx, payment_id: str, channel: str, transaction_id: str, patron_id: str,
                patron_name: str, custcode: str, amount: Decimal, currency: str, item_code: str,
                description: str, shares: Sequence[ExternalShare], rest: Decimal,
                unapplied_reason: str, source: dict) -> None:
        now = self.store.clock()
        tx.execute(
            "INSERT INTO payments (id, patron_id, patron_name, channel, session_id,"
            " amount_cents, currency, state, custcode, checkout, cashnet_tx, created_at,"
            " updated_at, paid_at, institution)"
            " VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (payment_id, patron_id, patron_name, channel, to_cents(amount), currency,
             PaymentState.PAID, custcode, json.dumps(source, sort_keys=True), transaction_id,
             now, now, now, tx.institution))
        tx.execute(
            "INSERT INTO lines (payment_id, number, item_code, amount_cents, description)"
            " VALUES (?, 1, ?, ?, ?)", (payment_id, item_code, to_cents(amount), description))
        tx.executemany(
            "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label, planned_cents,"
            " amount_cents, state, origin, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(payment_id, s.fee_id, s.fee_type, s.fee_label, to_cents(s.amount),
              to_cents(s.amount), AllocationState.QUEUED, channel, now) for s in shares])
        if rest > ZERO:
            # The rest, in a row of its own, already failed: it is what staff must settle.
            tx.execute(
                "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label, planned_cents,"
                " amount_cents, unapplied_cents, state, origin, outcome)"
                " VALUES (?, ?, '', '', ?, 0, ?, ?, ?, ?)",
                (payment_id, UNALLOCATED_FEE, to_cents(rest), to_cents(rest),
                 AllocationState.FAILED, channel, unapplied_reason))
        tx.event(payment_id, EventKind.CREATED, channel,
                 {"amount": format_amount(amount), "channel": channel} | source)
        tx.event(payment_id, EventKind.PAID, channel,
                 {"from": "", "tx": transaction_id})
        if not shares:
            tx.set_state(payment_id, PaymentState.ATTENTION,
                         f"{format_amount(rest)} not applied in Alma: {unapplied_reason}",
                         channel, {"unapplied": format_amount(rest)})
