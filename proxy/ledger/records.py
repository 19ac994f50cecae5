"""What the ledger hands out: frozen snapshots of a payment, its lines and its allocations,
built from their rows (amounts are stored as integer cents)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from proxy.database.base import Connection, Row
from proxy.money import format_amount, from_cents
from proxy.states import AllocationState, NoticeEffect, PaymentState


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
    state: AllocationState
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
    state: PaymentState
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
    # The consortium institution it was made for, by code ('' outside a consortium, and for a
    # payment older than schema 6 in a ledger no institution has claimed yet).
    institution: str = ""

    @property
    def applied(self) -> Decimal:
        return sum((a.amount for a in self.allocations if a.state == AllocationState.POSTED),
                   Decimal("0.00"))

    @property
    def unapplied(self) -> Decimal:
        return sum((a.unapplied for a in self.allocations), Decimal("0.00"))


@dataclass(frozen=True)
class NoticeOutcome:
    """What a CashNet notification did to its payment (`effect`), and to which one."""

    effect: NoticeEffect
    payment_id: str | None
    detail: str = ""


def payment_from(row: Row, conn: Connection) -> PaymentRecord:
    """The payment of a `payments` row, with its lines and allocations read through `conn`
    (inside a transaction, the transaction's own view)."""
    lines = tuple(
        LineRecord(r["number"], r["item_code"], from_cents(r["amount_cents"]), r["description"])
        for r in conn.execute("SELECT * FROM lines WHERE payment_id = ? ORDER BY number",
                              (row["id"],)))
    allocations = tuple(
        _allocation_from(r)
        for r in conn.execute("SELECT * FROM allocations WHERE payment_id = ? ORDER BY id",
                              (row["id"],)))
    return PaymentRecord(
        id=row["id"], patron_id=row["patron_id"], patron_name=row["patron_name"],
        channel=row["channel"], session_id=row["session_id"],
        amount=from_cents(row["amount_cents"]), currency=row["currency"],
        state=PaymentState(row["state"]), reason=row["reason"], review=row["review"],
        cashnet_tx=row["cashnet_tx"], batchno=row["batchno"], effdate=row["effdate"],
        pmtcode=row["pmtcode"], custcode=row["custcode"],
        checkout=json.loads(row["checkout"]), created_at=row["created_at"],
        updated_at=row["updated_at"], paid_at=row["paid_at"], posted_at=row["posted_at"],
        lines=lines, allocations=allocations, institution=row["institution"])


def _allocation_from(r: Row) -> AllocationRecord:
    return AllocationRecord(
        id=r["id"], payment_id=r["payment_id"], fee_id=r["fee_id"], fee_type=r["fee_type"],
        fee_label=r["fee_label"], planned=from_cents(r["planned_cents"]),
        amount=from_cents(r["amount_cents"]), unapplied=from_cents(r["unapplied_cents"]),
        state=AllocationState(r["state"]), origin=r["origin"], outcome=r["outcome"],
        attempts=r["attempts"], last_attempt_at=r["last_attempt_at"],
        next_attempt_at=r["next_attempt_at"])
