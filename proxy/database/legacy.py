"""Schema 1 on SQLite, as patronpay shipped it before numbered migrations: the tables made
on first open (`SCHEMA`), the additions every open applied idempotently since (`ADDED_COLUMNS`,
then `ADDITIONS`), and the bursar's tables that `BursarStore` made on open (`BURSAR`).

Migration 1 on SQLite (migrations/sqlite/0001_schema_1.py) is `create_or_complete`: it makes
schema 1 in an empty file and completes a ledger written by any earlier patronpay, whatever
part of the additions it has. The additions also stay self-repairing on every open of an SQLite
ledger, as before (docs/deploy.md#schema-migrations). Do not change these strings: a change to
the schema is a new numbered migration.
"""

from __future__ import annotations

import sqlite3

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
# and indexes, which may use them), so a ledger made by an earlier patronpay keeps working.
ADDITIONS = """
CREATE TABLE IF NOT EXISTS spent_tokens (
    token_id    TEXT PRIMARY KEY,
    until       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spent_tokens_by_until ON spent_tokens (until);
CREATE INDEX IF NOT EXISTS sessions_by_cas_ticket ON sessions (cas_ticket_hash)
    WHERE cas_ticket_hash != '';

-- The kiosk fleet (proxy/kiosk_fleet.py): each kiosk's latest report, heard by our clock.
CREATE TABLE IF NOT EXISTS kiosk_reports (
    kiosk_id        TEXT PRIMARY KEY,
    heard_at        REAL NOT NULL,
    version         TEXT NOT NULL,
    reader          TEXT NOT NULL,
    printer         TEXT NOT NULL,
    last_scan_at    REAL,
    last_payment_at REAL,
    disk_free_bytes INTEGER,
    offline_since   REAL
);

-- Staff sessions (proxy/staffweb/sessions.py): apart from patrons' sessions, never mixed.
CREATE TABLE IF NOT EXISTS staff_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    method        TEXT NOT NULL,
    granted_by    TEXT NOT NULL,
    csrf_token    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL,
    ended_at      REAL
);

-- E-mail (proxy/mail/): the outbox, the staff alerts waiting for it, and the worker's marks.
CREATE TABLE IF NOT EXISTS mail_outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL UNIQUE,
    message_id      TEXT NOT NULL,
    payment_id      TEXT,
    state           TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    recipients      TEXT NOT NULL DEFAULT '',
    message         BLOB,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    owner           TEXT NOT NULL DEFAULT '',
    lease_until     REAL,
    created_at      REAL NOT NULL,
    sent_at         REAL
);
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS mail_alerts (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    payment_id  TEXT,
    detail      TEXT NOT NULL,
    at          REAL NOT NULL,
    outbox_id   INTEGER REFERENCES mail_outbox (id)
);
CREATE INDEX IF NOT EXISTS mail_alerts_waiting ON mail_alerts (outbox_id, id);
CREATE TABLE IF NOT EXISTS mail_marks (
    name   TEXT PRIMARY KEY,
    value  REAL NOT NULL
);
-- A ledger made before e-mail existed mails nothing of its past: the worker starts reading
-- the event trail where it ends today.
INSERT OR IGNORE INTO mail_marks (name, value) SELECT 'events', COALESCE(MAX(id), 0) FROM events;
"""

# (table, column, declaration) added to existing tables by a guarded ALTER TABLE.
ADDED_COLUMNS = (
    ("sessions", "cas_ticket_hash", "TEXT NOT NULL DEFAULT ''"),
    # The language of the page the payment was started from: its receipt's language.
    ("payments", "language", "TEXT NOT NULL DEFAULT ''"),
)

BURSAR = """
CREATE TABLE IF NOT EXISTS bursar_exports (
    id            INTEGER PRIMARY KEY,
    at            REAL NOT NULL,
    day           TEXT NOT NULL,
    report_path   TEXT NOT NULL,
    output        TEXT NOT NULL,
    layout        TEXT NOT NULL,
    rows          INTEGER NOT NULL,
    patrons       INTEGER NOT NULL,
    total_cents   INTEGER NOT NULL,
    sha256        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bursar_export_lines (
    export_id     INTEGER NOT NULL REFERENCES bursar_exports (id),
    campus_id     TEXT NOT NULL,
    primary_id    TEXT NOT NULL,
    fee_id        TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bursar_export_lines_by_export ON bursar_export_lines (export_id);
CREATE TABLE IF NOT EXISTS bursar_hold_runs (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    held     INTEGER NOT NULL,
    placed   INTEGER NOT NULL,
    lifted   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bursar_holds (
    run_id      INTEGER NOT NULL REFERENCES bursar_hold_runs (id),
    primary_id  TEXT NOT NULL,
    campus_id   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (run_id, primary_id)
);
CREATE TABLE IF NOT EXISTS bursar_imports (
    id        INTEGER PRIMARY KEY,
    at        REAL NOT NULL,
    name      TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    summary   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bursar_import_rows (
    import_id       INTEGER NOT NULL REFERENCES bursar_imports (id),
    line            INTEGER NOT NULL,
    patron          TEXT NOT NULL,
    amount_cents    INTEGER,
    transaction_id  TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    detail          TEXT NOT NULL
);
"""



def create_or_complete(conn: sqlite3.Connection) -> None:
    """Schema 1, whole: made in an empty file, completed in a ledger of an earlier patronpay."""
    made = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'payments'")
    if made.fetchone()[0] == 0:
        _run(conn, SCHEMA)
    complete(conn)
    conn.execute("PRAGMA user_version = 1")


def complete(conn: sqlite3.Connection) -> None:
    """The additions to schema 1 that a ledger lacks (idempotent, as every open did)."""
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    _run(conn, ADDITIONS)
    _run(conn, BURSAR)


def _run(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)
