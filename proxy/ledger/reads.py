"""Reading the ledger: payments, their event trails and the notifications CashNet sent."""

from __future__ import annotations

import json
from collections.abc import Iterable

from proxy.ledger.records import PaymentRecord, payment_from
from proxy.ledger.store import Store
from proxy.states import PaymentState

ORDERS = ("created_at", "paid_at")


class Reads:
    def __init__(self, store: Store) -> None:
        self.store = store

    def payment(self, payment_id: str) -> PaymentRecord | None:
        db = self.store.db
        row = db.read_one("SELECT * FROM payments WHERE id = ?", (payment_id,))
        return payment_from(row, db.connection()) if row else None

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
        if by not in ORDERS:
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
            clauses.append("(state = ? OR review != '')")
            params.append(PaymentState.ATTENTION)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        db = self.store.db
        bounded = "" if limit is None else " LIMIT ?"
        rows = db.read(
            f"SELECT * FROM payments{where} ORDER BY {by}, id{bounded}",  # noqa: S608
            (*params, *(() if limit is None else (limit,))))
        return [payment_from(row, db.connection()) for row in rows]

    def recent_payments(self, patron_id: str, *, since: float, states: Iterable[str],
                        limit: int) -> list[PaymentRecord]:
        """The patron's payments in `states` started since `since`, newest first."""
        wanted = tuple(states)
        marks = ", ".join("?" * len(wanted))
        db = self.store.db
        rows = db.read(
            f"SELECT * FROM payments WHERE patron_id = ? AND created_at >= ?"  # noqa: S608
            f" AND state IN ({marks}) ORDER BY created_at DESC, id DESC LIMIT ?",
            (patron_id, since, *wanted, limit))
        return [payment_from(row, db.connection()) for row in rows]

    def events(self, payment_id: str) -> list[dict]:
        rows = self.store.db.read(
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
                for row in self.store.db.read(sql + " ORDER BY id", params)]
