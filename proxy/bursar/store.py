"""The bursar's tables in the ledger: export runs, holds snapshots, imported files and their
rows.

They are only bookkeeping of the bursar commands (part of the schema since migration 1,
proxy/database/migrations/). What makes an import exactly-once is not here but in the ledger
itself (the payment id derived from the row's transaction id; see proxy/ledger/external.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from proxy.db import Database
from proxy.money import from_cents, to_cents


@dataclass(frozen=True)
class Hold:
    primary_id: str
    campus_id: str
    reason: str


@dataclass(frozen=True)
class ExportLine:
    campus_id: str
    primary_id: str
    fee_id: str
    amount: Decimal


class BursarStore:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    # --- exports ---

    def record_export(self, *, day: str, report_path: str, output: str, layout: str,
                      patrons: int, sha256: str, lines: Iterable[ExportLine]) -> int:
        lines = list(lines)
        total = sum(to_cents(line.amount) for line in lines)
        with self.db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO bursar_exports (at, day, report_path, output, layout, rows, patrons,"
                " total_cents, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (self.clock(), day, report_path, output, layout, len(lines), patrons, total,
                 sha256))
            export_id = int(cursor.fetchone()[0])
            conn.executemany(
                "INSERT INTO bursar_export_lines (export_id, campus_id, primary_id, fee_id,"
                " amount_cents) VALUES (?, ?, ?, ?, ?)",
                [(export_id, line.campus_id, line.primary_id, line.fee_id,
                  to_cents(line.amount)) for line in lines])
        return export_id

    def exports(self, limit: int = 20) -> list[dict]:
        rows = self.db.read("SELECT * FROM bursar_exports ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(row) | {"total": from_cents(row["total_cents"])} for row in rows]

    def export_lines(self, export_id: int) -> list[ExportLine]:
        return [ExportLine(r["campus_id"], r["primary_id"], r["fee_id"],
                           from_cents(r["amount_cents"]))
                for r in self.db.read("SELECT * FROM bursar_export_lines WHERE export_id = ?"
                                      " ORDER BY id", (export_id,))]

    # --- holds ---

    def last_holds(self) -> tuple[int | None, list[Hold]]:
        """The previous run's id and the patrons it held (none before the first run)."""
        run = self.db.read_one("SELECT id FROM bursar_hold_runs ORDER BY id DESC LIMIT 1")
        if run is None:
            return None, []
        rows = self.db.read("SELECT * FROM bursar_holds WHERE run_id = ? ORDER BY campus_id,"
                            " primary_id", (run["id"],))
        return run["id"], [Hold(r["primary_id"], r["campus_id"], r["reason"]) for r in rows]

    def record_holds(self, held: Iterable[Hold], placed: int, lifted: int) -> int:
        held = list(held)
        with self.db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO bursar_hold_runs (at, held, placed, lifted) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (self.clock(), len(held), placed, lifted))
            run_id = int(cursor.fetchone()[0])
            conn.executemany(
                "INSERT INTO bursar_holds (run_id, primary_id, campus_id, reason)"
                " VALUES (?, ?, ?, ?)",
                [(run_id, hold.primary_id, hold.campus_id, hold.reason) for hold in held])
        return run_id

    # --- imports ---

    def record_import(self, *, name: str, sha256: str, outcome: str, summary: dict,
                      rows: Iterable[tuple]) -> int:
        """One handled file and what became of each row: rows are (line, patron, amount or
        None, transaction id, payment id, outcome, detail)."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO bursar_imports (at, name, sha256, outcome, summary)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (self.clock(), name, sha256, outcome, json.dumps(summary, sort_keys=True)))
            import_id = int(cursor.fetchone()[0])
            conn.executemany(
                "INSERT INTO bursar_import_rows (import_id, line, patron, amount_cents,"
                " transaction_id, payment_id, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(import_id, line, patron, None if amount is None else to_cents(amount), tx,
                  payment_id, outcome, detail)
                 for line, patron, amount, tx, payment_id, outcome, detail in rows])
        return import_id

    def imports(self, limit: int = 20) -> list[dict]:
        rows = self.db.read("SELECT * FROM bursar_imports ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(row) | {"summary": json.loads(row["summary"])} for row in rows]
