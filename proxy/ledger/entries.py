"""Writing what a patron starts: a new payment, and audit notes that change no state."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal

from proxy.ledger.reads import Reads
from proxy.ledger.records import LineRecord, PaymentRecord
from proxy.ledger.store import Store, Transaction
from proxy.money import format_amount, to_cents
from proxy.states import AllocationState, EventKind, PaymentState


class Entries:
    def __init__(self, store: Store, reads: Reads) -> None:
        self.store = store
        self.reads = reads

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
        """A pending payment with its CashNet lines and its allocations, planned until
        CashNet confirms the money."""
        with self.store.transaction() as tx:
            insert_payment(
                tx, payment_id=payment_id, patron_id=patron_id, patron_name=patron_name,
                channel=channel, session_id=session_id, amount=amount, currency=currency,
                custcode=custcode, lines=lines, allocations=allocations, checkout=checkout)
        record = self.reads.payment(payment_id)
        assert record is not None
        return record

    def add_event(self, payment_id: str, kind: str, source: str, detail: dict) -> None:
        """An audit note that changes no state (e.g. what a returning browser claimed)."""
        with self.store.transaction() as tx:
            tx.event(payment_id, kind, source, detail)


def insert_payment(
    tx: Transaction,
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
) -> None:
    """Write a pending payment inside an open transaction (see `Holds.start` for the one
    that first checks the patron's payments in progress)."""
    now = tx.clock()
    tx.execute(
        "INSERT INTO payments (id, patron_id, patron_name, channel, session_id,"
        " amount_cents, currency, state, custcode, checkout, created_at, updated_at,"
        " institution) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (payment_id, patron_id, patron_name, channel, session_id, to_cents(amount),
         currency, PaymentState.PENDING, custcode, json.dumps(checkout), now, now,
         tx.institution))
    tx.executemany(
        "INSERT INTO lines (payment_id, number, item_code, amount_cents, description)"
        " VALUES (?, ?, ?, ?, ?)",
        [(payment_id, line.number, line.item_code, to_cents(line.amount),
          line.description) for line in lines])
    tx.executemany(
        "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label, planned_cents,"
        " amount_cents, state, origin) VALUES (?, ?, ?, ?, ?, ?, ?, 'patron')",
        [(payment_id, fee_id, fee_type, label, to_cents(share), to_cents(share),
          AllocationState.PLANNED) for fee_id, fee_type, label, share in allocations])
    tx.event(payment_id, EventKind.CREATED, "patron",
             {"amount": format_amount(amount), "channel": channel})
