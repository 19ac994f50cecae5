"""The SQLite file behind the ledger and the sessions: connections, durability, schema.

One file, WAL, `synchronous=FULL`: a committed notification survives a power cut. Each thread
gets its own connection; transactions are explicit (`BEGIN IMMEDIATE` takes the write lock up
front, so two processes never interleave a read-then-write).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE payments (
    id            TEXT PRIMARY KEY,
    patron_id     TEXT NOT NULL,
    patron_name   TEXT NOT NULL,
    channel       TEXT NOT NULL,
    session_id    TEXT NOT NULL DEFAULT '',
    amount_cents  INTEGER NOT NULL CHECK (amount_cents > 0),
    currency      TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    review        TEXT NOT NULL DEFAULT '',
    cashnet_tx    TEXT,
    batchno       TEXT NOT NULL DEFAULT '',
    effdate       TEXT NOT NULL DEFAULT '',
    pmtcode       TEXT NOT NULL DEFAULT '',
    custcode      TEXT NOT NULL,
    checkout      TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    paid_at       REAL,
    posted_at     REAL
);
CREATE UNIQUE INDEX payments_by_tx ON payments (cashnet_tx) WHERE cashnet_tx IS NOT NULL;
CREATE INDEX payments_by_patron ON payments (patron_id, created_at);
CREATE INDEX payments_by_state ON payments (state, created_at);

CREATE TABLE lines (
    payment_id    TEXT NOT NULL REFERENCES payments (id),
    number        INTEGER NOT NULL,
    item_code     TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL,
    description   TEXT NOT NULL,
    PRIMARY KEY (payment_id, number)
);

CREATE TABLE allocations (
    id              INTEGER PRIMARY KEY,
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    fee_id          TEXT NOT NULL,
    fee_type        TEXT NOT NULL,
    fee_label       TEXT NOT NULL DEFAULT '',
    planned_cents   INTEGER NOT NULL,
    amount_cents    INTEGER NOT NULL,
    unapplied_cents INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    origin          TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_at REAL,
    next_attempt_at REAL
);
CREATE INDEX allocations_by_payment ON allocations (payment_id);
CREATE INDEX allocations_due ON allocations (state, next_attempt_at);

CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY,
    payment_id   TEXT,
    kind         TEXT NOT NULL,
    dedupe_key   TEXT UNIQUE,
    fields       TEXT NOT NULL,
    peer         TEXT NOT NULL,
    received_at  REAL NOT NULL,
    outcome      TEXT NOT NULL
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    payment_id  TEXT,
    at          REAL NOT NULL,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX events_by_payment ON events (payment_id, id);

CREATE TABLE leases (
    payment_id  TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    until       REAL NOT NULL
);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    patron_id     TEXT NOT NULL,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    email         TEXT NOT NULL,
    account_type  TEXT NOT NULL,
    method        TEXT NOT NULL,
    channel       TEXT NOT NULL,
    csrf_token    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL,
    ended_at      REAL
);

CREATE TABLE auth_failures (
    key  TEXT NOT NULL,
    at   REAL NOT NULL
);
CREATE INDEX auth_failures_by_key ON auth_failures (key, at);

CREATE TABLE kiosk_nonces (
    kiosk_id  TEXT NOT NULL,
    nonce     TEXT NOT NULL,
    at        REAL NOT NULL,
    PRIMARY KEY (kiosk_id, nonce)
);
"""


# Added after schema 1 shipped, on every open and idempotently (columns first, then the tables
# and indexes, which may use them), so a ledger made by an earlier patronpay keeps working. A
# migration tool can turn these into numbered steps.
ADDITIONS = """
CREATE TABLE IF NOT EXISTS spent_tokens (
    token_id    TEXT PRIMARY KEY,
    until       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spent_tokens_by_until ON spent_tokens (until);
CREATE INDEX IF NOT EXISTS sessions_by_cas_ticket ON sessions (cas_ticket_hash)
    WHERE cas_ticket_hash != '';
"""

# (table, column, declaration) added to existing tables by a guarded ALTER TABLE.
ADDED_COLUMNS = (
    ("sessions", "cas_ticket_hash", "TEXT NOT NULL DEFAULT ''"),
)


class Database:
    """Per-thread connections to one SQLite file, created with the schema on first use."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._migrate()

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from its first statement."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def read_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self.connection().execute(sql, params).fetchone()

    def writable(self) -> bool:
        """Readiness: can we take the write lock and commit?"""
        try:
            with self.write() as conn:
                conn.execute("SELECT 1")
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise RuntimeError(
                    f"ledger {self.path} has schema {version}; this patronpay expects "
                    f"{SCHEMA_VERSION}")
            _add_later_additions(conn)


def _add_later_additions(conn: sqlite3.Connection) -> None:
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    for statement in ADDITIONS.split(";"):
        if statement.strip():
            conn.execute(statement)
