"""Moving house: an SQLite ledger copied whole into an empty PostgreSQL database
(`patronpay ledger copy --to postgresql://...`, docs/deploy.md#two-nodes).

Both must be at this patronpay's schema (`patronpay migrate` first); the target must hold no
ledger yet. The copy is one PostgreSQL transaction, read from one SQLite snapshot: it commits
only after the counts of every table and the count and sum of the payments in each state read
back the same from both sides, and it prints them. Stop `serve` before copying: what it writes
to the SQLite file afterwards is not copied.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TextIO

from proxy.database.base import is_postgres_url
from proxy.database.postgres import PostgresDatabase, without_password
from proxy.database.sqlite import SqliteDatabase
from proxy.money import from_cents
from proxy.terminal import table

# In an order the foreign keys accept.
TABLES = (
    "payments", "lines", "allocations", "notifications", "events", "leases", "sessions",
    "auth_failures", "kiosk_nonces", "spent_tokens", "kiosk_reports", "staff_sessions",
    "mail_outbox", "mail_alerts", "mail_marks", "bursar_exports", "bursar_export_lines",
    "bursar_hold_runs", "bursar_holds", "bursar_imports", "bursar_import_rows",
    "ledger_owner",  # a consortium's ledger keeps the institution it belongs to
)
# Not copied: alma_pace and rate_buckets, schedules and buckets of the running instances.
# Tables whose `id` is an identity on PostgreSQL: its sequence continues after the copied ids.
WITH_IDS = ("allocations", "notifications", "events", "auth_failures", "mail_outbox",
            "mail_alerts", "bursar_exports", "bursar_export_lines", "bursar_hold_runs",
            "bursar_imports")
SEEDED = "mail_marks"  # migration 1 writes its 'events' mark: replaced by the source's

BY_STATE = "SELECT state, COUNT(*), COALESCE(SUM(amount_cents), 0) FROM payments GROUP BY state"


class CopyError(Exception):
    """Why the copy was refused or undone; one line."""


def copy_ledger(source: Path | str, target: str, out: TextIO) -> None:
    if is_postgres_url(source):
        raise CopyError("PATRONPAY_DATABASE must name the SQLite ledger to copy from")
    if not is_postgres_url(target):
        raise CopyError("--to must be a postgresql:// URL")
    if not Path(source).is_file():
        raise CopyError(f"no ledger at {source} (PATRONPAY_DATABASE)")
    src = SqliteDatabase(source)
    dst = PostgresDatabase(target)
    try:
        _copy(src, dst, out)
    finally:
        dst.close()
        src.close()


def _copy(src: SqliteDatabase, dst: PostgresDatabase, out: TextIO) -> None:
    where = without_password(dst.path)
    held = {name: n for name in TABLES if name != SEEDED
            and (n := dst.read_one(f"SELECT COUNT(*) FROM {name}")[0])}  # noqa: S608
    if held:
        kinds = ", ".join(f"{n} {name}" for name, n in held.items())
        raise CopyError(f"{where} is not empty ({kinds}): copy only into an empty database")
    conn = src.connection()
    conn.execute("BEGIN")  # one snapshot of the SQLite file for the whole copy
    try:
        with dst.write() as tx:
            tx.execute(f"DELETE FROM {SEEDED}")  # noqa: S608
            counts = {name: _copy_table(conn, tx.raw, name) for name in TABLES}
            for name in WITH_IDS:
                tx.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"  # noqa: S608
                           f" COALESCE(MAX(id), 0) + 1, false) FROM {name}")
            mismatch = _verify(conn, tx, counts)
            if mismatch:
                raise CopyError(f"the copy does not match the ledger ({mismatch}); nothing "
                                "was kept in the target")
            states = sorted(tuple(r) for r in conn.execute(BY_STATE).fetchall())
    finally:
        with contextlib.suppress(Exception):
            conn.execute("ROLLBACK")
    _report(out, src.path, where, counts, states)


def _copy_table(conn, pg, name: str) -> int:  # noqa: ANN001 (sqlite3 / psycopg connections)
    cursor = conn.execute(f"SELECT * FROM {name}")  # noqa: S608
    columns = ", ".join(d[0] for d in cursor.description)
    copied = 0
    with pg.cursor().copy(f"COPY {name} ({columns}) FROM STDIN") as copy:
        for row in cursor:
            copy.write_row(tuple(row))
            copied += 1
    return copied


def _verify(conn, tx, counts: dict[str, int]) -> str:  # noqa: ANN001
    for name, copied in counts.items():
        there = tx.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]  # noqa: S608
        if there != copied:
            return f"{name}: {copied} read, {there} in the target"
    mine = sorted(tuple(r) for r in conn.execute(BY_STATE).fetchall())
    theirs = sorted((r[0], r[1], int(r[2])) for r in tx.execute(BY_STATE).fetchall())
    if mine != theirs:
        return f"payments by state: {mine} against {theirs}"
    return ""


def _report(out: TextIO, source: str, target: str, counts: dict[str, int],
            states: list) -> None:
    print(f"copied {source} into {target}, verified:", file=out)
    rows = [[state, str(n), str(from_cents(cents))] for state, n, cents in states]
    print(table(["state", "payments", "amount"], rows, right=(1, 2)), file=out)
    print(table(["table", "rows"], [[name, str(n)] for name, n in counts.items() if n],
                right=(1,)), file=out)


__all__ = ["CopyError", "copy_ledger"]
