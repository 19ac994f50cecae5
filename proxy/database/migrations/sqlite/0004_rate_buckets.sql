-- The request buckets shared by several instances (proxy/shared_buckets.py): used on
-- PostgreSQL; on SQLite (one machine) the buckets stay in the process's memory. Present here
-- too, so that a schema number means the same tables on both.
CREATE TABLE rate_buckets (
    name    TEXT PRIMARY KEY,
    tokens  REAL NOT NULL,
    at      REAL NOT NULL
);

PRAGMA user_version = 4;
