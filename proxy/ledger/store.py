"""What every job of the ledger shares: the database, the clock, and the one way to write.

Every change goes through `Store.transaction()`: one `BEGIN IMMEDIATE` transaction (see
proxy/db.py) in which state changes and their audit events commit together or not at all.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from proxy.database.base import Connection
from proxy.db import Database
from proxy.states import PaymentState


class Transaction:
    """An open write transaction: statements, and the audit trail written alongside them."""

    def __init__(self, conn: Connection, clock: Callable[[], float],
                 institution: str = "") -> None:
        self.conn = conn
        self.clock = clock
        self.institution = institution

    def execute(self, sql: str, params: tuple = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[tuple]) -> Any:
        return self.conn.executemany(sql, rows)

    def event(self, payment_id: str | None, kind: str, source: str, detail: dict) -> None:
        """One entry in the trail: `kind` is an `EventKind`, a `PaymentState` (see `set_state`),
        or what a caller of `Ledger.add_event` names."""
        self.conn.execute(
            "INSERT INTO events (payment_id, at, kind, source, detail) VALUES (?, ?, ?, ?, ?)",
            (payment_id, self.clock(), kind, source, json.dumps(detail, sort_keys=True)))

    def set_state(self, payment_id: str, state: PaymentState, reason: str, source: str,
                  detail: dict) -> None:
        """Move a payment to `state`; the trail records it under the state's name."""
        self.conn.execute(
            "UPDATE payments SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
            (state, reason, self.clock(), payment_id))
        self.event(payment_id, state, source, detail | {"reason": reason})


class Store:
    """`institution`: the code a new payment records as the institution it was made for (a
    consortium's, docs/consortium.md; '' outside one)."""

    def __init__(self, db: Database, clock: Callable[[], float], institution: str = "") -> None:
        self.db = db
        self.clock = clock
        self.institution = institution

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self.db.write() as conn:
            yield Transaction(conn, self.clock, self.institution)
