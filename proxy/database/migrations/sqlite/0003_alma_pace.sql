-- The shared schedule of Alma calls (proxy/alma_budget.py): used on PostgreSQL, where several
-- instances share the ledger; present on SQLite too, so that a schema number means the same
-- tables on both.
CREATE TABLE alma_pace (
    name     TEXT PRIMARY KEY,
    next_at  REAL NOT NULL
);

PRAGMA user_version = 3;
